import CQRSCore
import Contracts
import Foundation
import Kafka
import Logging

/// Where an event came from, for a handler that needs more than the event.
public struct EventContext: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: String?
    public var headers: [KafkaHeader]
    /// The record's Kafka timestamp: by default its create time, which Fanout's producer sets
    /// when it produces the record (a topic with `message.timestamp.type=LogAppendTime` gives the
    /// broker's append time instead); nil when the record has none.
    public var timestamp: Date?

    public init(topic: String, partition: Int32, offset: Int64, key: String?, headers: [KafkaHeader], timestamp: Date? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.headers = headers
        self.timestamp = timestamp
    }

    /// The first header with this name, as text.
    public func header(_ name: String) -> String? {
        headers.first { $0.key == name }.map { String(decoding: $0.value, as: UTF8.self) }
    }
}

public typealias EventHandler = @Sendable (GenericDomainEventMessage, EventContext) async throws -> Void

/// A handler for the events of one topic: all of them, or only some event names.
public struct Subscription: Sendable {
    public var topic: String
    /// Event names this handler receives; nil for every event of the topic.
    public var eventNames: Set<String>?
    public var handler: EventHandler

    public init(topic: String, eventNames: Set<String>? = nil, handler: @escaping EventHandler) {
        self.topic = topic
        self.eventNames = eventNames
        self.handler = handler
    }

    /// A handler for one typed event of a topic: it receives the decoded payload.
    public static func on<E: EventPayload>(
        _ type: E.Type,
        in topic: String,
        handler: @escaping @Sendable (E, GenericDomainEventMessage) async throws -> Void
    ) -> Subscription {
        Subscription(topic: topic, eventNames: [E.eventName]) { message, _ in
            try await handler(try message.payload(as: E.self), message)
        }
    }

    func accepts(_ eventName: String) -> Bool {
        eventNames.map { $0.contains(eventName) } ?? true
    }
}

/// A group of handlers that share one Kafka consumer group.
///
/// - Order: events of one key (the aggregate id) run one after the other, in partition
///   order; events of different keys run concurrently, at most ``maximumConcurrency`` at
///   once. Records without a key run in partition order.
/// - Commits: a partition's offset is committed up to the first event not finished yet
///   (every event below it was handled or dead-lettered), every 200 ms and before a
///   partition is given up in a rebalance or at shutdown.
/// - Failures: a handler is retried with exponential backoff (``retryBackoff``, doubling, at
///   most 5 s) up to ``maximumAttempts`` times; then the event goes to the group's
///   dead-letter topic (``deadLetterTopic``) and the group moves on. Records that are not
///   events go there too. With ``isSequencedParkingEnabled``, later events of the same key
///   are parked there behind it until it is resolved (`fanout dead-letters retry`).
public final class SubscriberGroup: Sendable {
    public let name: String
    public let subscriptions: [Subscription]
    let configuration: KafkaConfiguration
    let logger: Logger
    /// Attempts per event before it is dead-lettered.
    public let maximumAttempts: Int
    /// Events (of different keys) handled at once.
    public let maximumConcurrency: Int
    /// Whether later events of a key wait (parked in the dead-letter topic) behind a failed one.
    public let isSequencedParkingEnabled: Bool
    /// The wait before the second attempt; it doubles for each further attempt, up to 5 s.
    public let retryBackoff: Duration
    /// Called after each successful commit with the committed offset (the next to read).
    public let onCommit: (@Sendable (KafkaAcknowledgement) -> Void)?
    /// `<name>.dead-letter`, created with one partition when missing.
    public var deadLetterTopic: String { DeadLetterTopic.name(forGroup: name) }

    /// - Parameters:
    ///   - name: the consumer group id.
    ///   - configuration: the Kafka client settings (bootstrap servers and any librdkafka property).
    public init(
        name: String,
        configuration: KafkaConfiguration,
        subscriptions: [Subscription],
        maximumAttempts: Int = 5,
        maximumConcurrency: Int = 16,
        sequencedParking: Bool = false,
        retryBackoff: Duration = .milliseconds(100),
        onCommit: (@Sendable (KafkaAcknowledgement) -> Void)? = nil,
        logger: Logger
    ) {
        precondition(maximumAttempts >= 1 && maximumConcurrency >= 1)
        self.name = name
        self.subscriptions = subscriptions
        var configuration = configuration
        configuration["group.id"] = name
        self.configuration = configuration
        self.maximumAttempts = maximumAttempts
        self.maximumConcurrency = maximumConcurrency
        self.isSequencedParkingEnabled = sequencedParking
        self.retryBackoff = retryBackoff
        self.onCommit = onCommit
        var logger = logger
        logger[metadataKey: LogKey.groupName] = "\(name)"
        self.logger = logger
    }

    /// The topics the group subscribes to.
    public var topics: [String] {
        var seen = Set<String>()
        return subscriptions.map(\.topic).filter { seen.insert($0).inserted }
    }

    /// Consumes until the task is cancelled, then finishes the events being handled,
    /// commits them and leaves the group. Throws only when the group cannot run (Kafka
    /// setup, a fatal consumer error); a failing handler never stops it.
    public func run() async throws {
        try await GroupRun(group: self).run()
    }

    /// Moves the group's committed offsets in `topic` to `position` (earliest, latest, an
    /// offset, or a timestamp), so that its next run replays from there. Other groups are
    /// untouched. The group must be stopped (in every process).
    @discardableResult
    public func replay(topic: String, from position: KafkaGroupOffsets.Position) async throws -> [KafkaAcknowledgement] {
        try await KafkaGroupOffsets.reset(group: name, topic: topic, to: position, configuration: configuration, logger: logger)
    }

    func subscriptions(for topic: String, eventName: String) -> [Subscription] {
        subscriptions.filter { $0.topic == topic && $0.accepts(eventName) }
    }
}
