import Contracts
import Kafka
import Logging
import StreamReader
import Synchronization

/// The transactional producers of exactly-once mode, and the transactions on them.
///
/// - Without leases: one producer for the application (`transactional.id = fanout.<application>`), whose
///   transactions the shards take in turn (``TransactionLock``).
/// - With leases: one producer per leased shard (`transactional.id = fanout.<application>.<shard id>`, the
///   Kafka Streams approach). A new owner opens the shard's producer when it starts the shard, before it
///   reads the shard's checkpoint: `initTransactions` fences the previous owner's producer (a zombie can no
///   longer commit) and aborts its open transaction. A fenced producer stops its shard only
///   (``ShardFencedError``). The producer is closed when the shard stops (lease lost, handed over, released).
public final class ExactlyOnceTransactions: ShardLifecycle, Sendable {
    private enum Mode {
        case shared(KafkaProducer, TransactionLock)
        case perShard(configuration: KafkaConfiguration, application: String)
    }

    private struct Open {
        var epoch: Int64
        var producer: KafkaProducer
        var lock: TransactionLock
    }

    private let mode: Mode
    private let logger: Logger
    private let open = Mutex<[String: Open]>([:])

    /// One transactional producer for the whole application; `initTransactions` is the caller's.
    public init(sharedProducer producer: KafkaProducer, logger: Logger) {
        mode = .shared(producer, TransactionLock())
        self.logger = logger
    }

    /// A producer per leased shard, made from `configuration` with `transactional.id` set per shard.
    public init(perShardConfiguration configuration: KafkaConfiguration, application: String, logger: Logger) {
        var configuration = configuration
        configuration["transactional.id"] = nil
        mode = .perShard(configuration: configuration, application: application)
        self.logger = logger
    }

    /// `fanout.<application>.<shard id>`.
    public static func transactionalID(application: String, shardID: String) -> String {
        "fanout.\(application).\(shardID)"
    }

    /// How many per-shard producers are open now.
    public var openProducers: Int { open.withLock { $0.count } }

    /// The health of every transactional producer open now (the shared one, or each leased shard's).
    /// The per-shard transactional producers open now (none in the shared mode, whose producer is the caller's).
    public var perShardProducers: [KafkaProducer] {
        switch mode {
        case .shared: []
        case .perShard: open.withLock { $0.values.map(\.producer) }
        }
    }

    public var producersHealth: [KafkaProducerHealth] {
        switch mode {
        case .shared(let producer, _): [producer.health]
        case .perShard: open.withLock { $0.values.map(\.producer.health) }
        }
    }

    public func shardStarting(_ shardID: String, epoch: Int64) async throws {
        guard case .perShard(let base, let application) = mode else { return }
        if let stale = open.withLock({ $0.removeValue(forKey: shardID) }) { await stale.producer.shutdown() }
        var configuration = base
        let id = Self.transactionalID(application: application, shardID: shardID)
        configuration["transactional.id"] = id
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        do {
            // Fences the shard's previous owner and aborts (or completes) its open transaction.
            try await producer.initTransactions()
        } catch {
            await producer.shutdown()
            throw error
        }
        open.withLock { $0[shardID] = Open(epoch: epoch, producer: producer, lock: TransactionLock()) }
        logger.info("transactional producer of the shard ready", metadata: [
            LogKey.shard: "\(shardID)", LogKey.epoch: "\(epoch)", LogKey.transactionalID: "\(id)",
        ])
    }

    public func shardStopped(_ shardID: String, epoch: Int64) async {
        let closing = open.withLock { open -> Open? in
            guard open[shardID]?.epoch == epoch else { return nil }
            return open.removeValue(forKey: shardID)
        }
        await closing?.producer.shutdown()
    }

    /// Runs `body` in one transaction on the shard's producer: begin, body, commit; abort when it fails.
    /// A fenced producer (a newer owner took over its `transactional.id`) throws ``ShardFencedError`` with
    /// per-shard producers (the shard stops, its producer is closed) and ``UnrecoverableProcessingError`` with
    /// the shared one (the reader stops: another instance of the application runs). Any other fatal producer
    /// error is thrown as it is: the ``KafkaProducer`` replaced its handle (initialising its transactions again,
    /// which bumps its epoch), and the reader retries the page on the new one.
    public func withTransaction<T: Sendable>(
        shardID: String, epoch: Int64?, _ body: (KafkaProducer) async throws -> T
    ) async throws -> T {
        switch mode {
        case .shared(let producer, let lock):
            do {
                return try await lock.withTransaction(producer: producer) { try await body(producer) }
            } catch let error as KafkaError where error.isFenced {
                throw UnrecoverableProcessingError(
                    "another instance with the same application name took over the transactional id (this one is fenced): \(error)"
                )
            }
        case .perShard:
            guard let current = open.withLock({ $0[shardID] }), current.epoch == epoch else {
                throw ShardFencedError(shardID: shardID, reason: "no transactional producer is open for lease epoch \(epoch.map(String.init) ?? "none")")
            }
            do {
                return try await current.lock.withTransaction(producer: current.producer) { try await body(current.producer) }
            } catch let error as KafkaError where error.isFenced {
                await shardStopped(shardID, epoch: current.epoch)
                throw ShardFencedError(shardID: shardID, reason: "a newer owner of the shard took over its transactional id: \(error)")
            }
        }
    }

    /// Closes every per-shard producer still open.
    public func shutdown() async {
        let all = open.withLock { open in
            defer { open.removeAll() }
            return Array(open.values)
        }
        for entry in all { await entry.producer.shutdown() }
    }
}
