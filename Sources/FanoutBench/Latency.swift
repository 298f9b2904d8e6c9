import AWS
import AsyncHTTPClient
import CQRSCore
import Foundation
import JSON
import Kafka
import Logging
import NIOCore
import Subscribers
import Synchronization

/// Latency (3d): PutItem on moto_server → DynamoDB Stream → `fanout run` (default
/// polling) → broker → a subscriber group's handler, at a fixed rate.
struct LatencyBench {
    var fanoutPath: String
    var brokers: String
    var awsEndpoint: String
    var rate: Int
    var seconds: Int
    var workDirectory: URL
    /// Where to write every handler call's stages as CSV, if anywhere.
    var stagesCSVPath: String?
    let logger: Logger = {
        var logger = Logger(label: "fanout-bench")
        logger.logLevel = .error
        return logger
    }()

    /// messageID → when its PutItem was sent and returned; and the latencies of the handler calls seen.
    final class Tracker: Sendable {
        struct Sent {
            var at: ContinuousClock.Instant
            /// The same instant on the wall clock, which Kafka's record timestamps use.
            var wall: Date
            /// When the PutItem response arrived (wall clock); nil while it is in flight.
            var returned: Date?
        }
        struct State {
            var sent: [String: Sent] = [:]
            var latencies: [Duration] = []
            /// Per handler call, in milliseconds: PutItem returned → record produced by fanout (its Kafka
            /// create time), and produced → handler called.
            var toProduced: [Double] = []
            var producedToHandler: [Double] = []
            /// Handler calls whose record had no timestamp, or that ran before their PutItem returned.
            var unstaged = 0
            /// One CSV line per split handler call: when its PutItem started (epoch ms), the topic, then the three stages (ms).
            var lines: [String] = []
            /// Per PutItem: its round trip, and how late it started against its schedule.
            var putRoundTrips: [Duration] = []
            var lateStarts = 0
            /// messageID/topic of every handler call seen: at-least-once delivery may repeat one; the first counts.
            var seen: Set<String> = []
            var duplicates = 0
            /// The topics a warm-up event reached.
            var warmUpTopics: Set<String> = []
            var largestRSS = 0
        }
        let state = Mutex(State())
    }

    func run() async throws {
        let run = UUID().uuidString.prefix(8).lowercased()
        let table = "bench-latency-\(run)"
        var environment = ProcessInfo.processInfo.environment
        environment.merge(["AWS_ENDPOINT_URL": awsEndpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"]) { $1 }
        environment["AWS_PROFILE"] = nil
        let httpClient = HTTPClient.shared
        let aws = try AWSConfiguration.fromEnvironment(environment, httpClient: httpClient)
        let dynamoDB = DynamoDB(configuration: aws, httpClient: httpClient, logger: logger)
        _ = try await DynamoDBEventStore(dynamoDB: dynamoDB, tableName: table).createTableIfMissing()

        let routesPath = workDirectory.appendingPathComponent("latency-routes.json").path
        // Topics of this run's own: the broker may hold the pipeline benchmark's records in the plain names.
        let topicSuffix = ".latency-\(run)"
        try PipelineEvents.routesJSON(topicSuffix: topicSuffix).write(toFile: routesPath, atomically: true, encoding: .utf8)
        let statusPort = try PipelineBench.freePort()
        let logPath = workDirectory.appendingPathComponent("fanout-latency.log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fanoutPath)
        process.arguments = ["run"]
        environment.merge([
            "FANOUT_BROKERS": brokers, "FANOUT_ROUTES": routesPath, "FANOUT_TABLE": table, "FANOUT_APPLICATION": "bench-latency-\(run)",
            "FANOUT_HTTP_PORT": String(statusPort), "FANOUT_LOG_LEVEL": "warning",
        ]) { $1 }
        process.environment = environment
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }

        let tracker = Tracker()
        let subscriptions = PipelineEvents.topics.map { topic in
            Subscription(topic: topic + topicSuffix) { event, context in
                let now = ContinuousClock.now
                let wall = Date()
                tracker.state.withLock { state in
                    if event.aggregateID.hasPrefix("warm-up") {
                        state.warmUpTopics.insert(context.topic)
                    } else if let sent = state.sent[event.messageID] {
                        if state.seen.insert("\(event.messageID)/\(context.topic)").inserted {
                            state.latencies.append(now - sent.at)
                            if let produced = context.timestamp, let returned = sent.returned {
                                let stages = (returned.timeIntervalSince(sent.wall) * 1000, produced.timeIntervalSince(returned) * 1000, wall.timeIntervalSince(produced) * 1000)
                                state.toProduced.append(stages.1)
                                state.producedToHandler.append(stages.2)
                                state.lines.append("\(Int(sent.wall.timeIntervalSince1970 * 1000)),\(context.topic)," + String(format: "%.1f,%.1f,%.1f", stages.0, stages.1, stages.2))
                            } else {
                                state.unstaged += 1
                            }
                        } else {
                            state.duplicates += 1
                        }
                    }
                }
            }
        }
        let group = SubscriberGroup(
            name: "bench-latency-\(run)", configuration: KafkaConfiguration(bootstrapServers: brokers), subscriptions: subscriptions, logger: logger
        )
        let subscriber = Task { try await group.run() }
        defer { subscriber.cancel() }

        // Warm-up: an event of each name through the whole path, until every topic delivered one (fanout started,
        // topics created, the consumer assigned, and each topic produced to and fetched once: without it the first
        // seconds of the measured run paid the first produce to three of the four topics, ~1.5 s).
        let warmUpDeadline = ContinuousClock.now + .seconds(60)
        var attempt = 0
        while tracker.state.withLock({ $0.warmUpTopics.count }) < PipelineEvents.topics.count {
            guard process.isRunning else { throw failure(logPath, "fanout exited with status \(process.terminationStatus)") }
            guard ContinuousClock.now < warmUpDeadline else { throw failure(logPath, "warm-up events reached only \(tracker.state.withLock { $0.warmUpTopics.sorted() }) within 60 s") }
            if attempt % 20 == 0 {
                for name in PipelineEvents.names {
                    let event = GenericDomainEventMessage(eventName: name, aggregateID: "warm-up-\(name)", aggregateType: "Warm-up", sequenceNumber: Int64(attempt + 1), payload: [:])
                    try await dynamoDB.putItem(table: table, item: event.item)
                }
            }
            attempt += 1
            try await Task.sleep(for: .milliseconds(100))
        }

        // The measured run: `rate` events a second, each PutItem started on its own schedule (16 senders).
        let total = rate * seconds
        let interval = Duration.seconds(1) / rate
        let start = ContinuousClock.now + .milliseconds(100)
        var expected = 0
        for index in 0..<total { expected += PipelineEvents.targets(index).count }
        let pid = process.processIdentifier
        try await withThrowingTaskGroup(of: Void.self) { senders in
            for sender in 0..<16 {
                senders.addTask {
                    for index in stride(from: sender, to: total, by: 16) {
                        let event = PipelineEvents.event(index)
                        let message = GenericDomainEventMessage(
                            eventName: event.name, aggregateID: "lat-\(event.aggregateID)", aggregateType: event.type,
                            sequenceNumber: Int64(event.sequence), payload: PipelineEvents.payload(index % 64),
                            metadata: MessageMetadata(correlationID: "c-\(index)"), messageID: "\(run)-\(index)"
                        )
                        let item = message.item
                        let scheduled = start + interval * index
                        try await Task.sleep(until: scheduled, clock: .continuous)
                        let sentAt = ContinuousClock.now
                        tracker.state.withLock { state in
                            state.sent[message.messageID] = Tracker.Sent(at: sentAt, wall: Date())
                            if sentAt - scheduled > .milliseconds(50) { state.lateStarts += 1 }
                        }
                        try await dynamoDB.putItem(table: table, item: item)
                        let returnedAt = ContinuousClock.now
                        tracker.state.withLock { state in
                            state.sent[message.messageID]?.returned = Date()
                            state.putRoundTrips.append(returnedAt - sentAt)
                        }
                        if index % 500 == 0 {
                            let current = PipelineBench.rss(pid: pid).current
                            tracker.state.withLock { $0.largestRSS = max($0.largestRSS, current) }
                        }
                    }
                }
            }
            try await senders.waitForAll()
        }
        let sendSeconds = (ContinuousClock.now - start) / .seconds(1)
        let drainDeadline = ContinuousClock.now + .seconds(30)
        while tracker.state.withLock({ $0.latencies.count }) < expected, ContinuousClock.now < drainDeadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let peak = PipelineBench.rss(pid: process.processIdentifier).peak
        let latencies = tracker.state.withLock { $0.latencies }.sorted()
        let duplicates = tracker.state.withLock { $0.duplicates }
        guard latencies.count == expected else {
            throw failure(logPath, "\(latencies.count) of \(expected) handler calls arrived within 30 s of the last PutItem")
        }
        let snapshot = tracker.state.withLock { $0 }
        // Every split handler call, for a closer look: PutItem start (epoch ms), topic, and the three stages in ms.
        if let csvPath = stagesCSVPath {
            try ("sent_epoch_ms,topic,put_round_trip_ms,returned_to_produced_ms,produced_to_handler_ms\n" + snapshot.lines.joined(separator: "\n") + "\n")
                .write(toFile: csvPath, atomically: true, encoding: .utf8)
        }
        let notes = "\(total) PutItems over \(String(format: "%.1f", sendSeconds)) s (\(Int(Double(total) / sendSeconds))/s of \(rate)/s asked; "
            + "\(snapshot.lateStarts) started > 50 ms behind schedule), \(expected) handler calls (+\(duplicates) repeated deliveries, not counted)"
        let milliseconds = latencies.map { $0 / .milliseconds(1) }
        Bench.row("latency PutItem → handler, p50", Self.percentile(milliseconds, 0.50), "ms", notes)
        Bench.row("latency PutItem → handler, p99", Self.percentile(milliseconds, 0.99), "ms", "same run")
        Bench.row("latency PutItem → handler, max", milliseconds.last!, "ms", "same run")
        // Where it goes: each handler call's latency split at the PutItem response and at the record's Kafka create time.
        let roundTrips = snapshot.putRoundTrips.map { $0 / .milliseconds(1) }.sorted()
        let toProduced = snapshot.toProduced.sorted()
        let producedToHandler = snapshot.producedToHandler.sorted()
        let stages: [(String, [Double], String)] = [
            ("PutItem round trip on moto", roundTrips, "per PutItem: request sent → response read"),
            ("PutItem returned → fanout produced", toProduced, "moto's stream, fanout's poll wait, GetRecords, decode and route; to the record's Kafka create time"),
            ("fanout produced → handler", producedToHandler, "linger, broker append and ack, consumer fetch, dispatch; from the record's Kafka create time"),
        ]
        for (name, values, what) in stages where !values.isEmpty {
            Bench.row("of which: \(name), p50", Self.percentile(values, 0.50), "ms", what)
            Bench.row("of which: \(name), p99", Self.percentile(values, 0.99), "ms", snapshot.unstaged > 0 && name != stages[0].0 ? "same run; \(snapshot.unstaged) handler calls without a timestamp not split" : "same run")
        }
        if let getRecords = await Self.requestDurations(statusPort: statusPort, operation: "DynamoDBStreams.GetRecords") {
            let what = "fanout's fanout_aws_request_duration_seconds over the run: \(Int(getRecords.count)) calls, mean "
                + String(format: "%.1f", getRecords.meanMilliseconds) + " ms; the upper bound of the bucket holding the percentile"
            Bench.row("of which: GetRecords round trip on moto, p50 at most", getRecords.percentile(0.50), "ms", what)
            Bench.row("of which: GetRecords round trip on moto, p99 at most", getRecords.percentile(0.99), "ms", "same run")
        }
        Bench.row("peak RSS of fanout, latency run", Double(max(peak, tracker.state.withLock { $0.largestRSS })) / 1024, "MB", "VmHWM over the latency run (at the achieved rate above)")
        process.terminate()
        process.waitUntilExit()
        subscriber.cancel()
        _ = try? await subscriber.value
    }

    /// One operation's histogram of AWS call durations, as fanout's `/metrics` serves it.
    struct RequestDurations {
        /// (upper bound in ms, cumulative count), ascending; the last bound is +infinity.
        var buckets: [(bound: Double, count: Double)]
        var count: Double
        var sumSeconds: Double
        var meanMilliseconds: Double { count > 0 ? sumSeconds / count * 1000 : 0 }

        /// The upper bound of the bucket that holds the fraction `p` of the calls.
        func percentile(_ p: Double) -> Double {
            buckets.first { $0.count >= p * count }?.bound ?? .infinity
        }
    }

    /// `operation`'s `fanout_aws_request_duration_seconds` histogram from fanout's `/metrics` (nil if it has none).
    static func requestDurations(statusPort: Int, operation: String) async -> RequestDurations? {
        guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(statusPort)/metrics"), timeout: .seconds(5)),
            let body = try? await response.body.collect(upTo: 16 << 20)
        else { return nil }
        let name = "fanout_aws_request_duration_seconds"
        let labels = "operation=\"\(operation)\""
        var result = RequestDurations(buckets: [], count: 0, sumSeconds: 0)
        for line in String(buffer: body).split(separator: "\n") where line.hasPrefix(name) && line.contains(labels) {
            guard let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
            if line.hasPrefix(name + "_bucket"), let start = line.range(of: "le=\"")?.upperBound,
                let end = line[start...].firstIndex(of: "\"")
            {
                let bound = line[start..<end] == "+Inf" ? Double.infinity : (Double(line[start..<end]) ?? .infinity) * 1000
                result.buckets.append((bound, value))
            } else if line.hasPrefix(name + "_count") {
                result.count = value
            } else if line.hasPrefix(name + "_sum") {
                result.sumSeconds = value
            }
        }
        result.buckets.sort { $0.bound < $1.bound }
        return result.count > 0 ? result : nil
    }

    /// The value at or above the fraction `p` of sorted `values` (nearest rank).
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        values[max(0, min(values.count - 1, Int((Double(values.count) * p).rounded(.up)) - 1))]
    }

    func failure(_ logPath: String, _ what: String) -> BenchError {
        let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
        return BenchError("latency: \(what); the fanout log \(logPath) ends:\n\(tail)")
    }
}
