import Contracts
import Foundation
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
    /// (cooperatively when the protocol is COOPERATIVE); `rebalanceListener` hears of it, and may
    /// finish and commit the work on partitions before they are revoked. An unknown property or
    /// bad value throws a ``KafkaError`` naming it.
    public init(configuration: KafkaConfiguration, topics: [String], rebalanceListener: KafkaRebalanceListener? = nil, logger: Logger) throws {
        self.core = try RDKafkaConsumer(configuration: configuration, topics: topics, rebalanceListener: rebalanceListener, logger: logger)
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

    /// Synchronously commits `offset` (the next offset to read) for a partition, off the cooperative pool.
    public func commit(topic: String, partition: Int32, offset: Int64) async throws {
        try await core.commit(topic: topic, partition: partition, offset: offset)
    }

    /// Moves the read position of an assigned partition: the next message of that
    /// partition in ``messages`` is the one at `offset` (`rd_kafka_seek_partitions`, run on
    /// the poll thread; messages of the partition already buffered are dropped).
    /// - Throws: ``KafkaError``, e.g. `_STATE` / `_UNKNOWN_PARTITION` when the partition is not assigned.
    public func seek(topic: String, partition: Int32, offset: Int64, timeout: Duration = .seconds(10)) async throws {
        try await core.seek(topic: topic, partition: partition, offset: offset, timeout: timeout)
    }

    /// Replays every assigned partition from the first message whose timestamp is at or
    /// after `timestamp` (`rd_kafka_offsets_for_times`, then seek); a partition with no such
    /// message continues at its end. Only partitions assigned now move: with a consumer
    /// group, wait for the assignment (e.g. read a first message) before calling it.
    /// - Returns: the new position of each assigned partition (`offset` -1 means its end).
    @discardableResult
    public func seek(toTimestamp timestamp: Date, timeout: Duration = .seconds(10)) async throws -> [KafkaAcknowledgement] {
        let ms = Int64((timestamp.timeIntervalSince1970 * 1_000).rounded(.down))
        return try await core.seek(toTimestamp: ms, timeout: timeout)
    }

    /// Stops fetching an assigned partition (`rd_kafka_pause_partitions`); messages of it
    /// already buffered are still delivered.
    public func pause(topic: String, partition: Int32) async throws {
        try await core.setPaused(true, topic: topic, partition: partition)
    }

    /// Resumes fetching a paused partition (`rd_kafka_resume_partitions`).
    public func resume(topic: String, partition: Int32) async throws {
        try await core.setPaused(false, topic: topic, partition: partition)
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
