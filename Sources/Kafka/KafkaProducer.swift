import Logging

/// An idempotent Kafka producer.
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

    /// Waits (off the cooperative pool) until every enqueued record has been delivered
    /// or has failed; throws `timedOut` when records are still outstanding after `timeout`.
    public func flush(timeout: Duration) async throws {
        try await core.flush(timeout: timeout)
    }

    /// Flushes (at most 10 seconds), stops the poll loop, fails what is still
    /// outstanding with `destroyed` and destroys the handle. Idempotent.
    public func shutdown() async {
        await core.shutdown(flushTimeout: .seconds(10))
    }
}
