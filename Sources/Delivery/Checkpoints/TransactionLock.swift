import Kafka

/// Serialises transactions on one transactional producer (librdkafka allows one open transaction at a time),
/// across the shards that route concurrently.
public final class TransactionLock: Sendable {
    private let lock = SerialAsyncLock()

    public init() {}

    /// Runs `body` inside one transaction: begin, body, commit; abort when anything fails.
    public func withTransaction<T: Sendable>(producer: KafkaProducer, _ body: () async throws -> T) async throws -> T {
        try await lock.withLock {
            try await producer.beginTransaction()
            do {
                let result = try await body()
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
