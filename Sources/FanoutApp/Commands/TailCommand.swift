import CQRSCore
import Contracts
import Foundation
import Kafka
import Logging
import Settings
import Synchronization

/// `fanout tail`: a topic's records, decoded, on standard output as they come.
public enum TailCommand {
    /// - Parameters:
    ///   - from: `beginning`, `end`, or an ISO-8601 time.
    ///   - format: `text` or `json`.
    public static func run(
        topic: String, from: String, count: Int?, idle: Double?, format: String, settings: ResolvedSettings, logger: Logger
    ) async throws {
        let requestedFormat = format
        guard let format = RecordFormatter.Format(rawValue: requestedFormat.lowercased()) else {
            throw SettingsError("--format: \"\(requestedFormat)\" is not text or json")
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
        var configuration = try settings.kafkaConfiguration()
        configuration["group.id"] = "fanout-tail-\(UUID().uuidString)"
        configuration["auto.offset.reset"] = reset
        configuration["enable.auto.commit"] = "false"
        configuration["allow.auto.create.topics"] = "false"
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
                    StandardStreams.writeOutput(RecordFormatter.format(message, as: format) + "\n")
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

/// When the last record arrived, shared by the reading task and the idle watchdog.
final class LastActivity: Sendable {
    private let value = Mutex(ContinuousClock.now)
    var instant: ContinuousClock.Instant { value.withLock { $0 } }
    func touch() { value.withLock { $0 = .now } }
}

