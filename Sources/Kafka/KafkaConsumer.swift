import Logging

/// A consumer-group member reading the given topics.
///
/// A dedicated thread calls `rd_kafka_consumer_poll` and hands copied messages to
/// ``messages`` through a bounded buffer: while the reader of the sequence is slow
/// and the buffer is full, the thread stops polling. Call ``close()`` to leave the
/// group cleanly.
public final class KafkaConsumer: Sendable {
    let core: RDKafkaConsumer

    /// `configuration` must hold `group.id`. Defaults (overridable): `enable.auto.commit=false`,
    /// `enable.auto.offset.store=false`, `auto.offset.reset=earliest`,
    /// `partition.assignment.strategy=cooperative-sticky`. librdkafka assigns partitions itself
    /// (no rebalance callback). An unknown property or bad value throws a ``KafkaError`` naming it.
    public init(configuration: KafkaConfiguration, topics: [String], logger: Logger) throws {
        self.core = try RDKafkaConsumer(configuration: configuration, topics: topics, logger: logger)
    }

    deinit {
        core.requestClose()
    }

    /// The messages, in order per partition. The sequence ends when ``close()`` is called
    /// (messages still buffered then are dropped: they were not committed) and throws on a
    /// fatal consumer error. Partition EOF and transient errors are logged, not thrown.
    /// Task cancellation does not end a pending `next()`; call ``close()``.
    public var messages: KafkaConsumerMessages {
        KafkaConsumerMessages(consumer: self)
    }

    /// Synchronously commits offset `message.offset + 1` for the message's partition,
    /// on a thread of its own (off the cooperative pool).
    public func commit(_ message: KafkaConsumerMessage) async throws {
        try await core.commit(topic: message.topic, partition: message.partition, offset: message.offset + 1)
    }

    /// Stops polling, leaves the group (`rd_kafka_consumer_close`) and destroys the handle. Idempotent.
    public func close() async {
        await core.close()
    }
}

/// The messages of a ``KafkaConsumer``.
public struct KafkaConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = KafkaConsumerMessage

    let consumer: KafkaConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer

        public mutating func next() async throws -> KafkaConsumerMessage? {
            try await consumer.core.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(consumer: consumer)
    }
}
