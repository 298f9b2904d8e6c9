import Kafka

/// Serialises transactions on one transactional producer (librdkafka allows one open transaction at a time),
/// across the shards that route concurrently.
public final class TransactionLock: Sendable {
    private let lock = SerialAsyncLock()

    public init() {}

    /// Runs `body` inside one transaction: begin, body, commit; abort when anything fails.
    ///
    /// A transaction during which the producer lost a broker connection is aborted instead of committed (and the
    /// error thrown is retriable: the caller sends it again). A broker that restarted while the transaction was
    /// open may have lost the transaction's state: noida-db 0.2.3 then accepts the commit but never makes the
    /// records sent before its restart visible to read_committed readers (measured; `BrokerRestartTests`). An
    /// abort is correct on every broker and costs one resend per outage.
    public func withTransaction<T: Sendable>(producer: KafkaProducer, _ body: () async throws -> T) async throws -> T {
        try await lock.withLock {
            let losses = producer.connectionLosses
            try await producer.beginTransaction()
            do {
                let result = try await body()
                if producer.connectionLosses != losses {
                    throw KafkaError(
                        code: .transport,
                        message: "a Kafka broker connection dropped while the transaction was open; aborted it so that a broker "
                            + "that restarted cannot keep its records from read_committed readers (it is sent again)",
                        isRetriable: true, isFatal: false
                    )
                }
                try await producer.commitTransaction()
                return result
            } catch {
                if let kafka = error as? KafkaError, kafka.isFatal { throw error }
                try? await producer.abortTransaction()
                throw error
            }
        }
    }
}
