import AWS
import AsyncHTTPClient
import Delivery
import Foundation
import JSON
import Kafka
import Logging
import Settings
import StreamReader

/// `fanout checkpoints list|reset`: the application's checkpoint topic, resolved by the rule the sidecar
/// resumes by (`CheckpointRecords.resolve`), so the list shows exactly the checkpoint a start would use.
public enum CheckpointCommands {
    /// The checkpoint topic and what it resolves to.
    public static func read(_ settings: ResolvedSettings, logger: Logger) async throws -> (topic: String, resolution: CheckpointRecords.Resolution) {
        let topic = try settings.checkpointTopic()
        return (topic, try await CheckpointRecords.read(topic: topic, configuration: try settings.kafkaConfiguration(), logger: logger))
    }

    /// `list`: a table, one line per shard; unreadable and stale-epoch records as warnings.
    public static func list(_ settings: ResolvedSettings, logger: Logger) async throws -> (lines: [String], warnings: [String]) {
        let (topic, resolution) = try await read(settings, logger: logger)
        let warnings = resolution.unreadable.map { "\(topic): \($0) (ignored)" }
            + resolution.staleEpochs.map { "\(topic): \($0) (ignored: a fenced writer's)" }
        return (resolution.entries.isEmpty ? ["no checkpoints in \(topic)"] : lines(resolution.entries), warnings)
    }

    /// `list --format json`: `{"topic", "checkpoints": [{"streamArn", "shardId", "sequenceNumber", "finished", "epoch",
    /// "writtenAt"}], "ignored": [...]}`; the unknown as null.
    public static func json(_ settings: ResolvedSettings, logger: Logger) async throws -> String {
        let (topic, resolution) = try await read(settings, logger: logger)
        let checkpoints = resolution.entries.map { entry in
            JSONValue.object(JSONObject([
                "streamArn": .string(entry.streamARN),
                "shardId": .string(entry.shardID),
                "sequenceNumber": entry.checkpoint.sequenceNumber.map(JSONValue.string) ?? .null,
                "finished": .bool(entry.checkpoint.isFinished),
                "epoch": entry.checkpoint.epoch.map { .number($0) } ?? .null,
                "writtenAt": entry.writtenAt.map(JSONValue.string) ?? .null,
            ]))
        }
        let ignored = resolution.unreadable.map { JSONValue.string("\($0)") } + resolution.staleEpochs.map { JSONValue.string("\($0) (a fenced writer's)") }
        return JSONWriter.string(.object(JSONObject(["topic": .string(topic), "checkpoints": .array(checkpoints), "ignored": .array(ignored)])))
    }

    /// A table: one line per shard.
    public static func lines(_ entries: [CheckpointRecords.Entry]) -> [String] {
        let rows = entries.map { entry in
            [
                entry.streamARN, entry.shardID, entry.checkpoint.sequenceNumber ?? "-", entry.checkpoint.isFinished ? "finished" : "open",
                entry.checkpoint.epoch.map(String.init) ?? "-", entry.writtenAt ?? "-",
            ]
        }
        let header = ["STREAM", "SHARD", "SEQUENCE", "STATE", "EPOCH", "WRITTEN"]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.indices.map { column in
                column == row.count - 1 ? row[column] : row[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }

    /// The one shard `reset` acts on: by id, and by stream when the topic holds more than one.
    public static func entry(
        _ resolution: CheckpointRecords.Resolution, topic: String, shard: String, streamARN: String?
    ) throws -> CheckpointRecords.Entry {
        let matching = resolution.entries.filter { $0.shardID == shard && (streamARN == nil || $0.streamARN == streamARN) }
        guard !matching.isEmpty else {
            throw SettingsError("\(topic) has no checkpoint for shard \"\(shard)\"\(streamARN.map { " of \($0)" } ?? ""); `fanout checkpoints list` shows them")
        }
        guard matching.count == 1, let entry = matching.first else {
            throw SettingsError("shard \"\(shard)\" is in several streams (\(matching.map(\.streamARN).joined(separator: ", "))): add --stream-arn")
        }
        return entry
    }

    /// `reset`: a new checkpoint record for the shard, of its epoch (so that it wins), at `to` or at no position.
    public static func reset(_ entry: CheckpointRecords.Entry, to: String?, topic: String, settings: ResolvedSettings, logger: Logger) async throws {
        let configuration = try settings.kafkaConfiguration()
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        let store = KafkaCheckpointStore(topic: topic, configuration: configuration, producer: producer, logger: logger)
        do {
            try await store.save(
                streamARN: entry.streamARN, shardID: entry.shardID,
                checkpoint: Checkpoint(sequenceNumber: to, isFinished: false, epoch: entry.checkpoint.epoch)
            )
            try await producer.flush(timeout: .seconds(10))
        } catch {
            await producer.shutdown()
            throw error
        }
        await producer.shutdown()
    }

    /// The newest sequence number in the shard now, read from the checkpoint on (or from the oldest record when
    /// there is none) to the shard's end: the end of a closed shard, a page that is not behind (Kinesis), or three
    /// empty pages in a row (DynamoDB Streams, which does not say). Nil when the shard holds no record after the
    /// checkpoint and the checkpoint has no position. AWS settings come from the environment, as for `fanout run`.
    static func latestSequenceNumber(of entry: CheckpointRecords.Entry, environment: [String: String], logger: Logger) async throws -> String? {
        let aws: AWSConfiguration
        do {
            aws = try AWSConfiguration.fromEnvironment(environment)
        } catch {
            throw SettingsError("--to latest reads the shard: AWS settings: \(error)")
        }
        let httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .forAWS())
        do {
            let latest = try await latestSequenceNumber(of: entry, aws: aws, httpClient: httpClient, logger: logger)
            try? await httpClient.shutdown()
            return latest
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
    }

    private static func latestSequenceNumber(
        of entry: CheckpointRecords.Entry, aws: AWSConfiguration, httpClient: HTTPClient, logger: Logger
    ) async throws -> String? {
        let source: any StreamSource
        if entry.streamARN.hasPrefix("arn:aws:kinesis:") || entry.streamARN.contains(":kinesis:") {
            guard let name = KinesisSource.streamName(fromARN: entry.streamARN) else {
                throw SettingsError("\(entry.streamARN) is not a Kinesis stream ARN")
            }
            source = KinesisSource(kinesis: Kinesis(configuration: aws, httpClient: httpClient, logger: logger), streamName: name)
        } else {
            source = DynamoDBStreamsSource(streams: DynamoDBStreams(configuration: aws, httpClient: httpClient, logger: logger), streamARN: entry.streamARN)
        }
        var latest = entry.checkpoint.sequenceNumber
        var iterator: String? = try await source.shardIterator(
            shardID: entry.shardID, position: latest.map(ShardPosition.afterSequenceNumber) ?? .trimHorizon
        )
        var emptyPages = 0
        while let current = iterator {
            let page = try await source.records(iterator: current, limit: 1000)
            if let last = page.records.last {
                latest = last.sequenceNumber
                emptyPages = 0
            } else {
                emptyPages += 1
                if page.millisBehindLatest == 0 || emptyPages >= 3 { break }
            }
            iterator = page.nextIterator
        }
        return latest
    }

    /// `fanout checkpoints reset`: checks `--to` (a sequence number, or `latest`: the shard's newest record now, so
    /// that the next start reads only what is written after it), finds the shard's checkpoint, prints it and what
    /// it becomes, asks for the shard id to be typed back unless `yes` (refusing when standard input is not a
    /// terminal), then writes the reset. `output` prints one line.
    public static func reset(
        settings: ResolvedSettings, shard: String, streamARN: String?, to: String?, yes: Bool,
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger, output: (String) -> Void
    ) async throws {
        var to = to
        let isLatest = to?.lowercased() == "latest"
        if !isLatest, let to, to.isEmpty || !to.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
            throw SettingsError("--to: \"\(to)\" is not a sequence number (decimal digits) or latest")
        }
        let (topic, resolution) = try await read(settings, logger: logger)
        let entry = try entry(resolution, topic: topic, shard: shard, streamARN: streamARN)
        if isLatest {
            to = try await latestSequenceNumber(of: entry, environment: environment, logger: logger)
            output("shard \(entry.shardID) of \(entry.streamARN): its newest record now is \(to ?? "none (the shard is empty)")")
        }
        output("shard \(entry.shardID) of \(entry.streamARN): now \(entry.checkpoint.sequenceNumber ?? "no position")\(entry.checkpoint.isFinished ? ", finished" : ""); reset to \(to ?? "the start position")")
        if !yes {
            guard isatty(STDIN_FILENO) == 1 else {
                throw SettingsError("refusing to reset without --yes: standard input is not a terminal")
            }
            StandardStreams.writeOutput("Type the shard id to confirm: ")
            guard readLine()?.trimmingCharacters(in: .whitespaces) == entry.shardID else {
                throw SettingsError("not confirmed; nothing changed")
            }
        }
        try await reset(entry, to: to, topic: topic, settings: settings, logger: logger)
        output("reset shard \(entry.shardID) of \(entry.streamARN)")
    }
}
