import CQRSCore
import Foundation

/// Settings of one Kafka topic that Fanout writes to, as declared in routes.json.
public struct TopicSettings: Sendable, Hashable {
    public var partitions: Int32
    public var replicationFactor: Int32
    /// Topic configs as Kafka names them (`retention.ms`, `cleanup.policy`, …).
    public var configs: [String: String]

    public var retentionMs: Int64? { configs["retention.ms"].flatMap { Int64($0) } }
}

/// Where the key of a routed record comes from.
public enum KeySource: Sendable, Hashable, CustomStringConvertible {
    case aggregateID
    case messageID
    case eventName
    case aggregateType
    /// A string or number inside the payload, by dotted path.
    case payload([String])
    /// A string or number inside the metadata, by dotted path.
    case metadata([String])

    public var description: String {
        switch self {
        case .aggregateID: "aggregateId"
        case .messageID: "messageId"
        case .eventName: "eventName"
        case .aggregateType: "aggregateType"
        case .payload(let path): (["payload"] + path).joined(separator: ".")
        case .metadata(let path): (["metadata"] + path).joined(separator: ".")
        }
    }

    init?(_ text: String) {
        switch text {
        case "aggregateId": self = .aggregateID
        case "messageId": self = .messageID
        case "eventName": self = .eventName
        case "aggregateType": self = .aggregateType
        default:
            let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2, parts.dropFirst().allSatisfy({ !$0.isEmpty }) else { return nil }
            switch parts[0] {
            case "payload": self = .payload(Array(parts.dropFirst()))
            case "metadata": self = .metadata(Array(parts.dropFirst()))
            default: return nil
            }
        }
    }
}

/// One route: events whose name matches one of `events` go to every topic in `to`.
public struct Route: Sendable, Hashable {
    public var name: String
    public var events: [EventNamePattern]
    public var topics: [String]
    public var key: KeySource
    /// The compiled `where` pattern; nil routes by name alone.
    public var condition: ContentPattern?
}

/// What to do with an event that no route matches.
public enum UnroutedPolicy: Sendable, Hashable {
    /// Count it (per event name) and move on.
    case count
    /// Count it and also send it to this topic.
    case topic(String)
}

/// A parsed and validated routes file (version 1).
public struct RoutesFile: Sendable, Hashable {
    public static let supportedVersion = 1
    public static let defaultRetentionMs: Int64 = 604_800_000
    public static let defaultDeadLetterTopic = "fanout.dead-letter"

    /// Bounds of a routes file, so that loading it and matching any event stay bounded
    /// (docs/routes.md and docs/security.md). A file past one is refused with the reason.
    public enum Limits {
        /// The file's size: a larger file is refused before it is read.
        public static let maximumFileBytes = 8 * 1024 * 1024
        /// Routes in one file.
        public static let maximumRoutes = 10_000
        /// Declared topics in one file.
        public static let maximumTopics = 10_000
        /// Length of one event-name pattern (no event name this long is routed; see FanOutPlanner).
        public static let maximumEventNamePatternBytes = 1024
        /// `*`s in one event-name pattern.
        public static let maximumEventNameWildcards = 5
    }

    public var version: Int
    public var defaults: TopicSettings
    /// Declared topics in file order, with their defaults applied.
    public var topics: [(name: String, settings: TopicSettings)]
    public var routes: [Route]
    public var unrouted: UnroutedPolicy
    public var deadLetterTopic: String
    /// SHA-256 of the file's bytes, hex: what an operator compares to confirm which file is live.
    public var contentHash: String

    public static func == (lhs: RoutesFile, rhs: RoutesFile) -> Bool { lhs.contentHash == rhs.contentHash }
    public func hash(into hasher: inout Hasher) { hasher.combine(contentHash) }

    /// Every topic Fanout may write to: declared topics, the dead-letter topic, the unrouted topic.
    public var allTopics: [(name: String, settings: TopicSettings)] {
        var result = topics
        var seen = Set(topics.map(\.name))
        for extra in [deadLetterTopic, unroutedTopic].compactMap({ $0 }) where seen.insert(extra).inserted {
            result.append((extra, defaults))
        }
        return result
    }

    public var unroutedTopic: String? {
        if case .topic(let name) = unrouted { return name }
        return nil
    }
}
