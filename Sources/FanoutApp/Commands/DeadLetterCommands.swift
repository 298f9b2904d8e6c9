import CQRSCore
import Kafka
import Logging
import Settings
import Subscribers

/// `fanout dead-letters`: the bodies of its subcommands.
public enum DeadLetterCommands {
    /// `list`: every record of a dead-letter topic, then the unresolved aggregates.
    public static func list(topic: String, configuration: KafkaConfiguration, logger: Logger) async throws -> [String] {
        let admin = try KafkaAdmin(configuration: configuration, logger: logger)
        let topics = try await admin.listTopics()
        admin.close()
        guard topics[topic] != nil else {
            throw SettingsError("topic '\(topic)' does not exist (a subscriber group creates <group>.dead-letter when it starts)")
        }
        return lines(try await DeadLetterTopic.read(topic: topic, configuration: configuration, logger: logger), topic: topic)
    }

    /// The text of `list`.
    public static func lines(_ entries: [DeadLetterEntry], topic: String) -> [String] {
        var lines = ["\(topic): \(entries.count) record(s)"]
        var unresolved: [String: [Int64]] = [:]
        var order: [String] = []
        for entry in entries {
            var fields = ["\(entry.offset)", entry.kind?.rawValue ?? "unknown", "key=\(entry.key ?? "-")"]
            if let originTopic = entry.originTopic {
                fields.append("origin=\(originTopic)" + (entry.originPartition.map { "[\($0)]" } ?? "") + (entry.originOffset.map { "@\($0)" } ?? ""))
            }
            if let event = try? GenericDomainEventMessage(jsonBytes: entry.value) {
                fields.append("event=\(event.eventName)#\(event.sequenceNumber)")
            }
            if let attempts = entry.attempts, attempts > 0 { fields.append("attempts=\(attempts)") }
            if let behind = entry.parkedBehind { fields.append("parked-behind=\(behind)") }
            if entry.kind == .resolved || entry.kind == .retryFailed { fields.append("resolves=\(entry.resolves.map(String.init).joined(separator: ","))") }
            if let time = entry.time { fields.append("at=\(time)") }
            if let reason = entry.reason { fields.append("reason=\(reason)") }
            lines.append(fields.joined(separator: "  "))
            if let key = entry.key {
                if entry.isEvent {
                    if unresolved[key] == nil { order.append(key) }
                    unresolved[key, default: []].append(entry.offset)
                } else if entry.kind == .resolved || entry.kind == .retryFailed {
                    let done = Set(entry.resolves)
                    unresolved[key]?.removeAll { done.contains($0) }
                }
            }
        }
        let open = order.filter { unresolved[$0]?.isEmpty == false }
        if open.isEmpty {
            lines.append("unresolved: none")
        } else {
            for key in open {
                lines.append("unresolved: \(key): \(unresolved[key]!.map(String.init).joined(separator: ",")) (retry with: fanout dead-letters retry --group G --key \(key))")
            }
        }
        return lines
    }

    /// `fanout dead-letters list`: the topic is the group's dead-letter topic (`--group`) or the one named (`--topic`).
    public static func list(group: String?, topic: String?, settings: ResolvedSettings, logger: Logger) async throws -> [String] {
        let name: String
        switch (group, topic) {
        case (let group?, nil): name = DeadLetterTopic.name(forGroup: group)
        case (nil, let topic?): name = topic
        default: throw SettingsError("give either --group or --topic")
        }
        return try await list(topic: name, configuration: try settings.kafkaConfiguration(), logger: logger)
    }

    /// `fanout dead-letters retry`: writes the retry request for the aggregate `key`; the line to print.
    public static func requestRetry(group: String, key: String, settings: ResolvedSettings, logger: Logger) async throws -> String {
        let offset = try await DeadLetterTopic.requestRetry(group: group, key: key, configuration: try settings.kafkaConfiguration(), logger: logger)
        return "retry of \(key) requested at \(DeadLetterTopic.name(forGroup: group))@\(offset)"
    }
}
