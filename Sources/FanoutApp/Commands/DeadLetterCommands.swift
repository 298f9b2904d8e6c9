import CQRSCore
import Contracts
import JSON
import Kafka
import Logging
import Settings
import Subscribers

/// `fanout dead-letters`: the bodies of its subcommands.
public enum DeadLetterCommands {
    /// Whether `topic` exists.
    static func exists(_ topic: String, configuration: KafkaConfiguration, logger: Logger) async throws -> Bool {
        let admin = try KafkaAdmin(configuration: configuration, logger: logger)
        let topics = try await admin.listTopics()
        admin.close()
        return topics[topic] != nil
    }

    /// `list`: every record of a dead-letter topic, then the unresolved aggregates; as text lines, or as one JSON
    /// document (`json`).
    public static func list(topic: String, json: Bool = false, configuration: KafkaConfiguration, logger: Logger) async throws -> [String] {
        guard try await exists(topic, configuration: configuration, logger: logger) else {
            throw SettingsError("topic '\(topic)' does not exist (a subscriber group creates <group>.dead-letter when it starts)")
        }
        let entries = try await DeadLetterTopic.read(topic: topic, configuration: configuration, logger: logger)
        return json ? [JSONWriter.string(document(entries, topic: topic))] : lines(entries, topic: topic)
    }

    /// The failed and parked entries of each aggregate (record key) that no `resolved` or `retry-failed` marker
    /// answered yet, by offset, keys in the order of their first entry.
    public static func unresolved(_ entries: [DeadLetterEntry]) -> [(key: String, offsets: [Int64])] {
        var unresolved: [String: [Int64]] = [:]
        var order: [String] = []
        for entry in entries {
            guard let key = entry.key else { continue }
            if entry.isEvent {
                if unresolved[key] == nil { order.append(key) }
                unresolved[key, default: []].append(entry.offset)
            } else if entry.kind == .resolved || entry.kind == .retryFailed {
                let done = Set(entry.resolves)
                unresolved[key]?.removeAll { done.contains($0) }
            }
        }
        return order.compactMap { key in unresolved[key].flatMap { $0.isEmpty ? nil : (key, $0) } }
    }

    /// `list --format json`: `{"topic", "records": [...], "unresolved": [{"key", "offsets"}]}`.
    public static func document(_ entries: [DeadLetterEntry], topic: String) -> JSONValue {
        func optional<T>(_ value: T?, _ make: (T) -> JSONValue) -> JSONValue { value.map(make) ?? .null }
        let records = entries.map { entry -> JSONValue in
            let event = try? GenericDomainEventMessage(jsonBytes: entry.value)
            return .object(JSONObject([
                "partition": .number(Int(entry.partition)),
                "offset": .number(entry.offset),
                "kind": optional(entry.kind) { .string($0.rawValue) },
                "key": optional(entry.key, JSONValue.string),
                "originTopic": optional(entry.originTopic, JSONValue.string),
                "originPartition": optional(entry.originPartition) { .number(Int($0)) },
                "originOffset": optional(entry.originOffset) { .number($0) },
                "eventName": optional(event?.eventName, JSONValue.string),
                "sequenceNumber": optional(event?.sequenceNumber) { .number($0) },
                "attempts": optional(entry.attempts) { .number($0) },
                "parkedBehind": optional(entry.parkedBehind) { .number($0) },
                "resolves": .array(entry.resolves.map { .number($0) }),
                "time": optional(entry.time, JSONValue.string),
                "reason": optional(entry.reason, JSONValue.string),
                "value": (try? JSONParser.parse(entry.value, maximumDepth: 64)) ?? .string(String(decoding: entry.value, as: UTF8.self)),
            ]))
        }
        let open = unresolved(entries).map { JSONValue.object(JSONObject(["key": .string($0.key), "offsets": .array($0.offsets.map { .number($0) })])) }
        return .object(JSONObject(["topic": .string(topic), "records": .array(records), "unresolved": .array(open)]))
    }

    /// The text of `list`.
    public static func lines(_ entries: [DeadLetterEntry], topic: String) -> [String] {
        var lines = ["\(topic): \(entries.count) record(s)"]
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
        }
        let open = unresolved(entries)
        if open.isEmpty {
            lines.append("unresolved: none")
        } else {
            for (key, offsets) in open {
                lines.append("unresolved: \(key): \(offsets.map(String.init).joined(separator: ",")) (retry with: fanout dead-letters retry --group G --key \(key) --execute)")
            }
        }
        return lines
    }

    /// `fanout dead-letters list`: the topic is the group's dead-letter topic (`--group`) or the one named (`--topic`).
    public static func list(group: String?, topic: String?, json: Bool = false, settings: ResolvedSettings, logger: Logger) async throws -> [String] {
        let name: String
        switch (group, topic) {
        case (let group?, nil): name = DeadLetterTopic.name(forGroup: group)
        case (nil, let topic?): name = topic
        default: throw SettingsError("give either --group or --topic")
        }
        return try await list(topic: name, json: json, configuration: try settings.kafkaConfiguration(), logger: logger)
    }

    /// `fanout dead-letters retry`: looks up the group's dead-letter topic and the aggregate's unresolved entries,
    /// and writes the retry request for `key` only when `execute`. Refuses a group without a dead-letter topic
    /// (it never started, or the name is wrong) unless `create`, and a key with nothing unresolved. The lines to
    /// print: what would be retried, the topic's end offset before -> after, what was done.
    public static func requestRetry(
        group: String, key: String, execute: Bool, create: Bool, settings: ResolvedSettings, logger: Logger
    ) async throws -> [String] {
        let configuration = try settings.kafkaConfiguration()
        let topic = DeadLetterTopic.name(forGroup: group)
        var lines: [String] = []
        var end: Int64 = 0
        let isMissing = try await !exists(topic, configuration: configuration, logger: logger)
        if !isMissing {
            let entries = try await DeadLetterTopic.read(topic: topic, configuration: configuration, logger: logger)
            guard let offsets = unresolved(entries).first(where: { $0.key == key })?.offsets else {
                throw SettingsError("\(topic) has no unresolved dead letters of key '\(key)'; nothing to retry (`fanout dead-letters list --group \(group)` shows them)")
            }
            end = (entries.filter { $0.partition == 0 }.map(\.offset).max() ?? -1) + 1
            lines.append("\(key): \(offsets.count) unresolved dead letter(s) in \(topic) at offset(s) \(offsets.map(String.init).joined(separator: ","))")
        } else if create {
            lines.append("\(topic) does not exist; --create: \(execute ? "creating it" : "it would be created"), with the request for the group's first start")
        } else {
            throw SettingsError(
                "subscriber group '\(group)' has no dead-letter topic \(topic) (a group creates it when it starts); check --group, or add --create to leave the request for its first start"
            )
        }
        guard execute else {
            lines.append("\(topic)[0]: \(end) -> \(end + 1) (a retry request for \(key))")
            lines.append("dry run: nothing written; add --execute to request the retry")
            return lines
        }
        if isMissing {
            let admin = try KafkaAdmin(configuration: configuration, logger: logger)
            defer { admin.close() }
            try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 1)])
        }
        let offset = try await DeadLetterTopic.requestRetry(group: group, key: key, configuration: configuration, logger: logger)
        lines.append("\(topic)[0]: \(offset) -> \(offset + 1) (a retry request for \(key))")
        lines.append("retry of \(key) requested at \(topic)@\(offset); `fanout dead-letters list --group \(group)` shows the outcome")
        return lines
    }
}
