import Logging

/// An idempotent Kafka producer; a transactional one when the configuration sets
/// `transactional.id` (see ``initTransactions(timeout:)``).
///
/// Records are copied into librdkafka; a dedicated thread drains librdkafka's
/// event queue (delivery reports, logs, errors) and resumes the waiting `send`
/// calls. Call ``shutdown()`` before dropping the last reference.
public final class KafkaProducer: Sendable {
    private let core: RDKafkaProducer

    /// Defaults (overridable by configuration): `enable.idempotence=true`, `acks=all`,
    /// `partitioner=murmur2_random` (the JVM client's placement), `max.in.flight.requests.per.connection=5`,
    /// `linger.ms=5`. An unknown property or bad value throws a ``KafkaError`` naming the property.
    public init(configuration: KafkaConfiguration, logger: Logger) throws {
        self.core = try RDKafkaProducer(configuration: configuration, logger: logger)
    }

    deinit {
        core.requestStop()
    }

    /// Produces the records in the given order and returns when every one has been
    /// acknowledged, acknowledgements in input order.
    ///
    /// librdkafka's `_QUEUE_FULL` is backpressure: the call waits for deliveries and
    /// retries the enqueue. If any record fails permanently, this throws a
    /// ``KafkaError`` naming the topic, after every enqueued record of the batch has
    /// settled; records after a record that could not be enqueued are not sent.
    public func send(_ records: [KafkaProducerRecord]) async throws -> [KafkaAcknowledgement] {
        try await core.send(records)
    }

    /// Like ``send(_:)``, but returns each record's own outcome instead of throwing the first failure
    /// (a record after one that could not be enqueued fails without having been sent).
    public func sendEach(_ records: [KafkaProducerRecord]) async -> [Result<KafkaAcknowledgement, KafkaError>] {
        await core.sendEach(records)
    }

    /// Waits (off the cooperative pool) until every enqueued record has been delivered
    /// or has failed; throws `timedOut` when records are still outstanding after `timeout`.
    public func flush(timeout: Duration) async throws {
        try await core.flush(timeout: timeout)
    }

    /// librdkafka's statistics reports, when the configuration sets `statistics.interval.ms`
    /// (default 0: none). One sequence per producer, meant for one reader; it keeps only
    /// the 8 newest reports when unread and ends at ``shutdown()``.
    public var statistics: AsyncStream<KafkaStatistics> {
        core.statistics
    }

    // MARK: transactions

    /// Registers the producer's `transactional.id` with the transaction coordinator and
    /// fences older producers with the same id (`rd_kafka_init_transactions`). Call once,
    /// before the first ``beginTransaction()``. Runs off the cooperative pool.
    ///
    /// - Throws: ``KafkaError``; `state` when the configuration has no `transactional.id`.
    ///   A retriable error (e.g. `timedOut`) may be retried by calling this again.
    public func initTransactions(timeout: Duration = .seconds(30)) async throws {
        try await core.initTransactions(timeout: timeout)
    }

    /// Starts a transaction: every record sent until ``commitTransaction(timeout:)`` or
    /// ``abortTransaction(timeout:)`` belongs to it (`rd_kafka_begin_transaction`, non-blocking).
    public func beginTransaction() throws {
        try core.beginTransaction()
    }

    /// Flushes the transaction's records and commits it (`rd_kafka_commit_transaction`),
    /// off the cooperative pool.
    ///
    /// - Throws: ``KafkaError``. `isRetriable`: call commit again. `requiresAbort`: call
    ///   ``abortTransaction(timeout:)``, then start over. `isFatal` (e.g. ``KafkaError/isFenced``):
    ///   the producer is unusable; shut it down.
    public func commitTransaction(timeout: Duration = .seconds(30)) async throws {
        try await core.commitTransaction(timeout: timeout)
    }

    /// Aborts the transaction: its records are never seen by `read_committed` consumers
    /// (`rd_kafka_abort_transaction`, off the cooperative pool). Records of the transaction
    /// not yet delivered fail their `send` with a purge error.
    public func abortTransaction(timeout: Duration = .seconds(30)) async throws {
        try await core.abortTransaction(timeout: timeout)
    }

    /// Flushes (at most 10 seconds), stops the poll loop, fails what is still
    /// outstanding with `destroyed` and destroys the handle. Idempotent.
    public func shutdown() async {
        await core.shutdown(flushTimeout: .seconds(10))
    }
}
