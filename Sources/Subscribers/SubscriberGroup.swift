import CQRSCore
import Kafka
import Logging

/// Where an event came from, for a handler that needs more than the event.
public struct EventContext: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: String?
    public var headers: [KafkaHeader]

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

/// A handler failed on every attempt; the group stopped without committing the event.
public struct HandlerFailedError: Error, Sendable, CustomStringConvertible {
    public var group: String
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var eventName: String
    public var attempts: Int
    public var underlying: String

    public var description: String {
        "subscriber group \(group): handler for \(eventName) at \(topic)[\(partition)]@\(offset) failed \(attempts) times: \(underlying)"
    }
}

/// A group of handlers that share one Kafka consumer group.
///
/// Events arrive in order per partition; every matching handler of an event runs
/// before the next event of that partition, and the event's offset is committed
/// only after all of them succeeded.
public final class SubscriberGroup: Sendable {
    public let name: String
    public let subscriptions: [Subscription]
    private let configuration: KafkaConfiguration
    private let logger: Logger
    /// Attempts per event before the group gives up (and stops, committing nothing past it).
    public let maximumAttempts: Int

    /// - Parameters:
    ///   - name: the consumer group id.
    ///   - configuration: the Kafka client settings (bootstrap servers and any librdkafka property).
    public init(name: String, configuration: KafkaConfiguration, subscriptions: [Subscription], maximumAttempts: Int = 5, logger: Logger) {
        self.name = name
        self.subscriptions = subscriptions
        var configuration = configuration
        configuration["group.id"] = name
        self.configuration = configuration
        self.maximumAttempts = maximumAttempts
        var logger = logger
        logger[metadataKey: "fanout.group"] = "\(name)"
        self.logger = logger
    }

    /// The topics the group subscribes to.
    public var topics: [String] {
        var seen = Set<String>()
        return subscriptions.map(\.topic).filter { seen.insert($0).inserted }
    }

    /// Consumes until the task is cancelled; throws `HandlerFailedError` when a handler keeps failing.
    public func run() async throws {
        let consumer = try KafkaConsumer(configuration: configuration, topics: topics, logger: logger)
        logger.info("subscriber group started", metadata: ["kafka.topics": "\(topics.joined(separator: ","))"])
        do {
            try await withTaskCancellationHandler {
                for try await message in consumer.messages {
                    try await handle(message)
                    try await consumer.commit(message)
                }
            } onCancel: {
                Task { await consumer.close() }
            }
        } catch {
            await consumer.close()
            if Task.isCancelled { return }
            throw error
        }
        await consumer.close()
    }

    private func handle(_ message: KafkaConsumerMessage) async throws {
        let event: GenericDomainEventMessage
        do {
            event = try GenericDomainEventMessage(jsonBytes: message.value)
        } catch {
            logger.error("record is not a Fanout event; skipping it", metadata: [
                "kafka.topic": "\(message.topic)", "kafka.partition": "\(message.partition)", "kafka.offset": "\(message.offset)",
                "error": "\(error)",
            ])
            return
        }
        let context = EventContext(
            topic: message.topic,
            partition: message.partition,
            offset: message.offset,
            key: message.key.map { String(decoding: $0, as: UTF8.self) },
            headers: message.headers
        )
        for subscription in subscriptions where subscription.topic == message.topic && subscription.accepts(event.eventName) {
            var attempt = 1
            var backoff = Duration.milliseconds(100)
            while true {
                do {
                    try await subscription.handler(event, context)
                    break
                } catch {
                    guard attempt < maximumAttempts, !Task.isCancelled else {
                        throw HandlerFailedError(
                            group: name, topic: message.topic, partition: message.partition, offset: message.offset,
                            eventName: event.eventName, attempts: attempt, underlying: "\(error)"
                        )
                    }
                    logger.warning("handler failed; retrying", metadata: ["fanout.event": "\(event.eventName)", "fanout.attempt": "\(attempt)", "error": "\(error)"])
                    try await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(5))
                    attempt += 1
                }
            }
        }
    }
}
