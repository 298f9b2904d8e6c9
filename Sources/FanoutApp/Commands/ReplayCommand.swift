import Contracts
import Foundation
import Kafka
import Logging
import Settings

/// `fanout replay`: moves one consumer group's committed offsets on one topic.
public enum ReplayCommand {
    /// Moves the group's offsets to `from` (earliest, latest, an offset or an ISO-8601 time); one line per partition.
    public static func run(group: String, topic: String, from: String, settings: ResolvedSettings, logger: Logger) async throws -> [String] {
        let offsets = try await KafkaGroupOffsets.reset(
            group: group, topic: topic, to: try position(from), configuration: try settings.kafkaConfiguration(), logger: logger
        )
        return offsets.sorted { $0.partition < $1.partition }.map { "\(group) \(topic)[\($0.partition)] -> \($0.offset)" }
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
