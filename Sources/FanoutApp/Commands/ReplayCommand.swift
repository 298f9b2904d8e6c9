import Contracts
import Foundation
import Kafka
import Logging
import Settings

/// `fanout replay`: moves one consumer group's committed offsets on one topic.
public enum ReplayCommand {
    /// Looks up the group's offsets in `topic` and where `from` (earliest, latest, an offset or an ISO-8601 time)
    /// would move them; commits them only when `execute`. Refuses a topic that does not exist, and a group the
    /// broker does not know unless `create`. One line per partition (`before -> after`), then what was done.
    public static func run(
        group: String, topic: String, from: String, execute: Bool, create: Bool, settings: ResolvedSettings, logger: Logger
    ) async throws -> [String] {
        let position = try position(from)
        let configuration = try settings.kafkaConfiguration()
        let admin = try KafkaAdmin(configuration: configuration, logger: logger)
        let topics = try await admin.listTopics()
        admin.close()
        guard topics[topic] != nil else {
            throw SettingsError("topic '\(topic)' does not exist; check --topic (`fanout routes check routes.json` lists the routed topics)")
        }
        let plan = try await KafkaGroupOffsets.plan(group: group, topic: topic, to: position, configuration: configuration, logger: logger)
        guard plan.groupExists || create else {
            throw SettingsError(
                "consumer group '\(group)' does not exist (no member has joined it and it has no offsets in \(topic)); check --group, or add --create to start a new group at these offsets"
            )
        }
        var lines = plan.moves.map { "\(group) \(topic)[\($0.partition)]: \($0.current.map(String.init) ?? "none") -> \($0.target)" }
        if execute {
            try await KafkaGroupOffsets.commit(group: group, topic: topic, moves: plan.moves, configuration: configuration, logger: logger)
            lines.append("committed: the group's next run starts from these offsets")
        } else {
            lines.append("dry run: nothing changed; add --execute to commit these offsets")
        }
        return lines
    }

    /// `--from`'s value as a position.
    public static func position(_ text: String) throws -> KafkaGroupOffsets.Position {
        switch text.lowercased() {
        case "earliest", "beginning": return .earliest
        case "latest", "end": return .latest
        default:
            if let offset = Int64(text), offset >= 0 { return .offset(offset) }
            if let date = try? Date(text, strategy: .iso8601) { return .timestamp(date) }
            throw SettingsError("--from: \"\(text)\" is not earliest, latest, an offset or an ISO-8601 time (2026-11-01T00:00:00Z)")
        }
    }
}
