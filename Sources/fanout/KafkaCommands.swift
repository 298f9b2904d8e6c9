import ArgumentParser
import CQRSCore
import Configuration
import FanoutApp
import Foundation
import Kafka
import Logging
import Router
import StreamReader
import Synchronization

/// A logger for the short-lived commands: warnings and errors only, to standard error.
func commandLogger() -> Logger {
    var logger = Logger(label: "fanout") { label in StreamLogHandler.standardError(label: label) }
    logger.logLevel = .warning
    return logger
}

/// Writes to standard output at once (unbuffered), for output read while the command runs.
func printNow(_ text: String, terminator: String = "\n") {
    StandardStreams.writeOutput(text + terminator)
}

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the Kafka topics of a routes file.",
        subcommands: [Ensure.self]
    )

    struct Ensure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the topics of routes.json and of Fanout itself, and report every existing topic that differs from the file.",
            discussion: """
                One line per topic: `created`, `missing` (with --dry-run), `ok`, `fixed` (with --fix) or `drift` with \
                each difference (partitions, and every config the file sets, e.g. retention.ms). Also checks the \
                checkpoint topic fanout.checkpoints.<application> (one partition, cleanup.policy=compact).

                Exit status: 0 when every topic matches, 2 when some drift remains, 1 on an error.

                Configs are reported, never altered: change them with your Kafka tooling (librdkafka 2.0.2 has only \
                the non-incremental AlterConfigs, which would reset every other config of the topic).
                """
        )

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var application: ApplicationOption

        @Option(name: .long, help: .setting(.routes, valueName: "file"))
        var routes: String?

        @Flag(name: .long, help: "Add partitions to topics that have fewer than the file asks for.")
        var fix = false

        @Flag(name: .customLong("dry-run"), help: "Create and change nothing; report what would be done.")
        var dryRun = false

        func run() async throws {
            let report = try await reportingErrors {
                var flags = application.flags
                flags[.routes] = routes.map(ConfigContent.string)
                let settings = try kafka.resolve(adding: flags, settings: [.routes, .application])
                let path = settings.string(.routes) ?? "routes.json"
                let file: RoutesFile
                do {
                    file = try RoutesFile.load(path: path)
                } catch let error as RoutesFileError {
                    throw SettingsError(error.issues.map(\.description).joined(separator: "\n"))
                }
                let admin = try KafkaAdmin(configuration: try settings.kafkaConfiguration(), logger: commandLogger())
                defer { admin.close() }
                let checkpointTopic = "fanout.checkpoints.\(settings.string(.application) ?? "fanout")"
                return try await TopicsEnsure.run(
                    TopicsEnsure.specifications(routes: file, checkpointTopic: checkpointTopic),
                    admin: admin, fix: fix, dryRun: dryRun
                )
            }
            report.lines.forEach { print($0) }
            if report.driftCount > 0 { throw ExitCode(2) }
        }
    }
}

struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the records of a topic, decoded as Fanout records (event, aggregate, route, source, value).",
        discussion: """
            Reads without a consumer group's commits (a throwaway group id): other consumers are not affected. \
            --from end (the default) waits for new records; --from beginning starts at the oldest; an ISO-8601 time \
            starts at the first record written at or after it. Stops after --count records, or after --idle seconds \
            without a record, or on SIGINT.

            Example: fanout tail orders.events --from beginning --count 10 --brokers 127.0.0.1:9092
            """
    )

    @OptionGroup var kafka: KafkaOptions

    @Argument(help: "The topic to read.")
    var topic: String

    @Option(name: .long, help: "beginning, end, or an ISO-8601 time such as 2026-11-01T00:00:00Z (default: end).")
    var from: String = "end"

    @Option(name: .long, help: "Stop after this many records.")
    var count: Int?

    @Option(name: .long, help: "Stop after this many seconds without a record.")
    var idle: Double?

    @Option(name: .long, help: "text (one readable line a record) or json (one JSON object a line) (default: text).")
    var format: String = "text"

    func run() async throws {
        try await reportingErrors {
            guard let format = RecordFormatter.Format(rawValue: format.lowercased()) else {
                throw SettingsError("--format: \"\(format)\" is not text or json")
            }
            if let count, count < 1 { throw SettingsError("--count: \(count) is not a positive number") }
            var timestamp: Date?
            var reset = "latest"
            switch from.lowercased() {
            case "end", "latest": reset = "latest"
            case "beginning", "earliest": reset = "earliest"
            default:
                guard let date = GenericDomainEventMessage.parseTimestamp(from) else {
                    throw SettingsError("--from: \"\(from)\" is not beginning, end or an ISO-8601 time such as 2026-11-01T00:00:00Z")
                }
                timestamp = date
                reset = "earliest"
            }
            let settings = try kafka.resolve()
            var configuration = try settings.kafkaConfiguration()
            configuration["group.id"] = "fanout-tail-\(UUID().uuidString)"
            configuration["auto.offset.reset"] = reset
            configuration["enable.auto.commit"] = "false"
            configuration["allow.auto.create.topics"] = "false"
            let logger = commandLogger()
            let admin = try KafkaAdmin(configuration: try settings.kafkaConfiguration(), logger: logger)
            let topics = try await admin.listTopics()
            admin.close()
            guard topics[topic] != nil else { throw SettingsError("topic \"\(topic)\" does not exist") }
            let consumer = try KafkaConsumer(configuration: configuration, topics: [topic], logger: logger)
            let idleLimit = idle.map { Duration.milliseconds(Int64($0 * 1000)) }
            let start = timestamp
            let limit = count
            let lastRecord = LastActivity()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var printed = 0
                    var sought = start == nil
                    for try await message in consumer.messages {
                        lastRecord.touch()
                        if !sought, let start {
                            sought = true
                            // The first record proves the partitions are assigned; move them all to the time.
                            try await consumer.seek(toTimestamp: start)
                            continue
                        }
                        printNow(RecordFormatter.format(message, as: format))
                        printed += 1
                        if let limit, printed >= limit { break }
                    }
                }
                if let idleLimit {
                    group.addTask {
                        while true {
                            let waited = ContinuousClock.now - lastRecord.instant
                            if waited >= idleLimit { return }
                            try await Task.sleep(for: min(idleLimit - waited, .milliseconds(200)))
                        }
                    }
                }
                _ = try await group.next()
                await consumer.close()
                group.cancelAll()
            }
        }
    }
}

/// When the last record arrived, shared by the reading task and the idle watchdog.
final class LastActivity: Sendable {
    private let value = Mutex(ContinuousClock.now)
    var instant: ContinuousClock.Instant { value.withLock { $0 } }
    func touch() { value.withLock { $0 = .now } }
}

struct Checkpoints: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or reset the shard checkpoints of one application (topic fanout.checkpoints.<application>).",
        subcommands: [List.self, Reset.self],
        defaultSubcommand: List.self
    )

    static func read(_ settings: ResolvedSettings) async throws -> (topic: String, entries: [CheckpointListing.Entry], problems: [String]) {
        let topic = "fanout.checkpoints.\(settings.string(.application) ?? "fanout")"
        var configuration = try settings.kafkaConfiguration()
        configuration["isolation.level"] = "read_committed"
        let messages = try await KafkaTopicReader.readToEnd(topic: topic, configuration: configuration, logger: commandLogger())
        let (entries, problems) = CheckpointListing.decode(messages)
        return (topic, entries, problems)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the latest checkpoint of every shard: stream, shard, sequence number, open or finished, epoch, when written."
        )

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var application: ApplicationOption

        func run() async throws {
            try await reportingErrors {
                let settings = try kafka.resolve(adding: application.flags, settings: [.application])
                let (topic, entries, problems) = try await Checkpoints.read(settings)
                problems.forEach { printError("fanout: warning: \(topic): \($0)") }
                if entries.isEmpty {
                    print("no checkpoints in \(topic)")
                } else {
                    CheckpointListing.lines(entries).forEach { print($0) }
                }
            }
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reset one shard's checkpoint, so that the next start reads it again from its start position (or from --to).",
            discussion: """
                Stop every `fanout run` of the application first: a running one would overwrite the checkpoint with its \
                next page. Asks for the shard id to be typed back unless --yes is given; refuses without --yes when \
                standard input is not a terminal. The reset is a new checkpoint record (sequenceNumber null, or --to), so \
                the topic keeps the history until compaction.
                """
        )

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var application: ApplicationOption

        @Option(name: .long, help: "The shard to reset.")
        var shard: String

        @Option(name: .customLong("stream-arn"), help: "The stream of the shard; needed only when the topic holds more than one stream.")
        var streamARN: String?

        @Option(name: .long, help: "Resume after this sequence number instead of at the start position.")
        var to: String?

        @Flag(name: .long, help: "Do not ask for confirmation.")
        var yes = false

        func run() async throws {
            try await reportingErrors {
                if let to, to.isEmpty || !to.allSatisfy(\.isNumber) {
                    throw SettingsError("--to: \"\(to)\" is not a sequence number (decimal digits)")
                }
                let settings = try kafka.resolve(adding: application.flags, settings: [.application])
                let (topic, entries, _) = try await Checkpoints.read(settings)
                let matching = entries.filter { $0.shardID == shard && (streamARN == nil || $0.streamARN == streamARN) }
                guard !matching.isEmpty else {
                    throw SettingsError("\(topic) has no checkpoint for shard \"\(shard)\"\(streamARN.map { " of \($0)" } ?? ""); `fanout checkpoints list` shows them")
                }
                guard matching.count == 1, let entry = matching.first else {
                    throw SettingsError("shard \"\(shard)\" is in several streams (\(matching.map(\.streamARN).joined(separator: ", "))): add --stream-arn")
                }
                print("shard \(entry.shardID) of \(entry.streamARN): now \(entry.sequenceNumber ?? "no position")\(entry.isFinished ? ", finished" : ""); reset to \(to ?? "the start position")")
                if !yes {
                    guard isatty(STDIN_FILENO) == 1 else {
                        throw SettingsError("refusing to reset without --yes: standard input is not a terminal")
                    }
                    printNow("Type the shard id to confirm: ", terminator: "")
                    guard readLine()?.trimmingCharacters(in: .whitespaces) == entry.shardID else {
                        throw SettingsError("not confirmed; nothing changed")
                    }
                }
                let configuration = try settings.kafkaConfiguration()
                let producer = try KafkaProducer(configuration: configuration, logger: commandLogger())
                let store = KafkaCheckpointStore(topic: topic, configuration: configuration, producer: producer, logger: commandLogger())
                try await store.save(streamARN: entry.streamARN, shardID: entry.shardID, checkpoint: Checkpoint(sequenceNumber: to, isFinished: false, epoch: entry.epoch))
                try await producer.flush(timeout: .seconds(10))
                print("reset shard \(entry.shardID) of \(entry.streamARN)")
            }
        }
    }
}
