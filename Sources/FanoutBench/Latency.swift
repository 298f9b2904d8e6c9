import AWS
import AsyncHTTPClient
import CQRSCore
import Foundation
import Kafka
import Logging
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
    let logger: Logger = {
        var logger = Logger(label: "fanout-bench")
        logger.logLevel = .error
        return logger
    }()

    /// messageID → when its PutItem was sent; and the latencies of the handler calls seen.
    final class Tracker: Sendable {
        struct State {
            var sent: [String: ContinuousClock.Instant] = [:]
            var latencies: [Duration] = []
            /// messageID/topic of every handler call seen: at-least-once delivery may repeat one; the first counts.
            var seen: Set<String> = []
            var duplicates = 0
            var warmUpSeen = false
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
        try PipelineEvents.routesJSON.write(toFile: routesPath, atomically: true, encoding: .utf8)
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
        let log = FileHandle(forWritingAtPath: logPath)!
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
            Subscription(topic: topic) { event, context in
                let now = ContinuousClock.now
                tracker.state.withLock { state in
                    if event.aggregateID == "warm-up" {
                        state.warmUpSeen = true
                    } else if let sent = state.sent[event.messageID] {
                        if state.seen.insert("\(event.messageID)/\(context.topic)").inserted {
                            state.latencies.append(now - sent)
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

        // Warm-up: one event through the whole path (fanout started, topics created, consumer assigned).
        let warmUpDeadline = ContinuousClock.now + .seconds(60)
        var attempt = 0
        while !tracker.state.withLock({ $0.warmUpSeen }) {
            guard process.isRunning else { throw failure(logPath, "fanout exited with status \(process.terminationStatus)") }
            guard ContinuousClock.now < warmUpDeadline else { throw failure(logPath, "no warm-up event reached the subscriber within 60 s") }
            if attempt % 20 == 0 {
                let event = GenericDomainEventMessage(eventName: "OrderShipped", aggregateID: "warm-up", aggregateType: "Order", sequenceNumber: Int64(attempt + 1), payload: [:])
                try await dynamoDB.putItem(table: table, item: event.item)
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
                        try await Task.sleep(until: start + interval * index, clock: .continuous)
                        tracker.state.withLock { $0.sent[message.messageID] = ContinuousClock.now }
                        try await dynamoDB.putItem(table: table, item: item)
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
        func percentile(_ p: Double) -> Double {
            let value = latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)]
            return value / .milliseconds(1)
        }
        let notes = "\(total) PutItems over \(String(format: "%.1f", sendSeconds)) s (\(Int(Double(total) / sendSeconds))/s), \(expected) handler calls (+\(duplicates) repeated deliveries, not counted)"
        Bench.row("latency PutItem → handler, p50", percentile(0.50), "ms", notes)
        Bench.row("latency PutItem → handler, p99", percentile(0.99), "ms", "same run")
        Bench.row("latency PutItem → handler, max", latencies.last! / .milliseconds(1), "ms", "same run")
        Bench.row("peak RSS of fanout, latency run", Double(max(peak, tracker.state.withLock { $0.largestRSS })) / 1024, "MB", "VmHWM over the latency run (at the achieved rate above)")
        process.terminate()
        process.waitUntilExit()
        subscriber.cancel()
        _ = try? await subscriber.value
    }

    func failure(_ logPath: String, _ what: String) -> BenchError {
        let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
        return BenchError("latency: \(what); the fanout log \(logPath) ends:\n\(tail)")
    }
}
