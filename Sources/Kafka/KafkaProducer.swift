import Contracts
import Foundation
import Logging
import Metrics
import Synchronization

/// An idempotent Kafka producer; a transactional one when the configuration sets
/// `transactional.id` (see ``initTransactions(timeout:)``).
///
/// Records are copied into librdkafka; a dedicated thread drains librdkafka's
/// event queue (delivery reports, logs, errors) and resumes the waiting `send`
/// calls. Call ``shutdown()`` before dropping the last reference.
///
/// **Fatal errors.** librdkafka raises a fatal error when an idempotent or transactional producer can no
/// longer keep its guarantees (for example a broker that restarted without the producer's state answers
/// with an out-of-order sequence number): from then on that handle refuses every record. This producer
/// then replaces the handle with a new one built from the same configuration (a new producer id; a
/// transactional producer initialises its transactions again, which bumps its epoch), so the caller only
/// has to send again what failed. The records that were in flight on the old handle fail with the fatal
/// error. A fenced transactional producer (a newer instance took over its `transactional.id`) is never
/// replaced: it stays fenced. ``health`` says whether the producer can produce now, and why not;
/// `fanout_kafka_producer_rebuilds_total` counts the replacements.
public final class KafkaProducer: Sendable {
    private struct Generation: Sendable {
        let core: RDKafkaProducer
        let number: Int
    }

    private struct State: Sendable {
        var current: Generation
        /// ``initTransactions(timeout:)`` succeeded once: a replacement handle initialises its transactions too.
        var usesTransactions = false
        /// A replacement whose `initTransactions` has not succeeded yet.
        var needsTransactionsInit = false
        var health = KafkaProducerHealth()
        var lastRebuild: ContinuousClock.Instant?
        var isShutDown = false
        var connectionLosses: UInt64 = 0
    }

    private let configuration: KafkaConfiguration
    private let logger: Logger
    private let state: Mutex<State>
    /// One replacement at a time.
    private let rebuilding = SerialAsyncLock()
    private let rebuildsCounter = Counter(label: "fanout_kafka_producer_rebuilds_total")
    private let statisticsContinuation: AsyncStream<KafkaStatistics>.Continuation

    /// librdkafka's statistics reports, when the configuration sets `statistics.interval.ms`
    /// (default 0: none). One sequence per producer (across replacements of its handle), meant for one
    /// reader; it keeps only the 8 newest reports when unread and ends at ``shutdown()``.
    public let statistics: AsyncStream<KafkaStatistics>

    /// The shortest time between two replacements of the handle.
    static let minimumRebuildInterval: Duration = .seconds(1)

    /// Defaults (overridable by configuration): `enable.idempotence=true`, `acks=all`,
    /// `partitioner=murmur2_random` (the JVM client's placement), `max.in.flight.requests.per.connection=5`,
    /// `linger.ms=5`. An unknown property or bad value throws a ``KafkaError`` naming the property.
    public init(configuration: KafkaConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        // Bounded: an unread statistics sequence keeps only the newest few.
        let (statistics, continuation) = AsyncStream.makeStream(of: KafkaStatistics.self, bufferingPolicy: .bufferingNewest(8))
        self.statistics = statistics
        self.statisticsContinuation = continuation
        // The first handle's fatal-error callback needs `self`; it is wired through a box set right after.
        let owner = WeakProducer()
        let core = try Self.makeCore(configuration: configuration, logger: logger, generation: 0, owner: owner, statistics: continuation)
        self.state = Mutex(State(current: Generation(core: core, number: 0)))
        owner.producer.withLock { $0 = WeakReference(self) }
    }

    deinit {
        state.withLock { $0.current.core }.requestStop()
        statisticsContinuation.finish()
    }

    /// Records handed to librdkafka and not yet delivered (and its requests in flight): `rd_kafka_outq_len`.
    public var outstandingRecords: Int { state.withLock { $0.current.core }.outstanding }

    /// Whether the producer can produce now, and how often its handle was replaced.
    public var health: KafkaProducerHealth { state.withLock { $0.health } }

    /// How many times librdkafka reported a broker connection lost or refused (`_TRANSPORT`, `_ALL_BROKERS_DOWN`
    /// error events), across replacements of the handle. A transaction during which this changed may have met a
    /// broker restart: see ``TransactionLock``.
    public var connectionLosses: UInt64 { state.withLock { $0.connectionLosses } }

    /// Produces the records in the given order and returns when every one has been
    /// acknowledged, acknowledgements in input order.
    ///
    /// librdkafka's `_QUEUE_FULL` is backpressure: the call waits for deliveries and
    /// retries the enqueue. If any record fails permanently, this throws a
    /// ``KafkaError`` naming the topic, after every enqueued record of the batch has
    /// settled; records after a record that could not be enqueued are not sent.
    public func send(_ records: [KafkaProducerRecord]) async throws -> [KafkaAcknowledgement] {
        var acknowledgements: [KafkaAcknowledgement] = []
        acknowledgements.reserveCapacity(records.count)
        for outcome in await sendEach(records) {
            acknowledgements.append(try outcome.get())
        }
        return acknowledgements
    }

    /// Like ``send(_:)``, but returns each record's own outcome instead of throwing the first failure
    /// (a record after one that could not be enqueued fails without having been sent).
    ///
    /// A handle that hit a fatal error is replaced before the records are sent; records that fail with a
    /// fatal error (they were in flight when it struck) make the producer replace the handle before this
    /// returns, so sending them again goes to the new one.
    public func sendEach(_ records: [KafkaProducerRecord]) async -> [Result<KafkaAcknowledgement, KafkaError>] {
        guard !records.isEmpty else { return [] }
        let generation = await usableGeneration()
        let outcomes = await generation.core.sendEach(records)
        if let fatal = outcomes.lazy.compactMap({ if case .failure(let error) = $0, error.isFatal { error } else { nil } }).first {
            await replace(generation, after: fatal)
        }
        return outcomes
    }

    /// Waits (off the cooperative pool) until every enqueued record has been delivered
    /// or has failed; throws `timedOut` when records are still outstanding after `timeout`.
    public func flush(timeout: Duration) async throws {
        try await state.withLock { $0.current.core }.flush(timeout: timeout)
    }

    // MARK: transactions

    /// Registers the producer's `transactional.id` with the transaction coordinator and
    /// fences older producers with the same id (`rd_kafka_init_transactions`). Call once,
    /// before the first ``beginTransaction()``. Runs off the cooperative pool.
    ///
    /// - Throws: ``KafkaError``; `state` when the configuration has no `transactional.id`.
    ///   A retriable error (e.g. `timedOut`) may be retried by calling this again.
    public func initTransactions(timeout: Duration = .seconds(30)) async throws {
        let generation = state.withLock { $0.current }
        try await checkingFatal(generation) { try await generation.core.initTransactions(timeout: timeout) }
        state.withLock { state in
            state.usesTransactions = true
            if state.current.number == generation.number { state.needsTransactionsInit = false }
        }
    }

    /// Starts a transaction: every record sent until ``commitTransaction(timeout:)`` or
    /// ``abortTransaction(timeout:)`` belongs to it (`rd_kafka_begin_transaction`). A handle that hit a
    /// fatal error is replaced first (and its transactions initialised).
    public func beginTransaction() async throws {
        let generation = await usableGeneration()
        if state.withLock({ $0.needsTransactionsInit && $0.current.number == generation.number }) {
            throw KafkaError(
                code: .state, message: "could not begin a transaction: the replacement producer's transactions are not initialised yet",
                isRetriable: true, isFatal: false
            )
        }
        try await checkingFatal(generation) { try generation.core.beginTransaction() }
    }

    /// Flushes the transaction's records and commits it (`rd_kafka_commit_transaction`),
    /// off the cooperative pool.
    ///
    /// - Throws: ``KafkaError``. `isRetriable`: call commit again. `requiresAbort`: call
    ///   ``abortTransaction(timeout:)``, then start over. `isFatal`: the handle was replaced (unless
    ///   ``KafkaError/isFenced``, when the producer is unusable: shut it down); start the transaction over.
    public func commitTransaction(timeout: Duration = .seconds(30)) async throws {
        let generation = state.withLock { $0.current }
        try await checkingFatal(generation) { try await generation.core.commitTransaction(timeout: timeout) }
    }

    /// Aborts the transaction: its records are never seen by `read_committed` consumers
    /// (`rd_kafka_abort_transaction`, off the cooperative pool). Records of the transaction
    /// not yet delivered fail their `send` with a purge error.
    public func abortTransaction(timeout: Duration = .seconds(30)) async throws {
        let generation = state.withLock { $0.current }
        try await checkingFatal(generation) { try await generation.core.abortTransaction(timeout: timeout) }
    }

    /// Gives up on every record queued or in flight: each fails its send with a purge error (`_PURGE_QUEUE`,
    /// `_PURGE_INFLIGHT`), and whether the broker stored it is unknown. For a shutdown that cannot wait for an
    /// unreachable broker. Returns how many records and requests were outstanding.
    @discardableResult
    public func abandonOutstanding() -> Int {
        state.withLock { $0.current.core }.purgeOutstanding()
    }

    /// Flushes (at most `flushTimeout`), stops the poll loop, fails what is still
    /// outstanding with `destroyed` and destroys the handle. Idempotent.
    public func shutdown(flushTimeout: Duration = .seconds(10)) async {
        await rebuilding.withLock {
            let core = state.withLock { state in
                state.isShutDown = true
                return state.current.core
            }
            await core.shutdown(flushTimeout: flushTimeout)
        }
        statisticsContinuation.finish()
    }

    // MARK: testing

    /// Raises a fatal error on the current handle, as librdkafka does when a broker breaks the idempotent
    /// producer's sequence (`rd_kafka_test_fatal_error`). For tests of recovery only.
    public func injectFatalErrorForTesting(_ code: KafkaError.Code = .outOfOrderSequenceNumber, reason: String = "injected by a test") {
        state.withLock { $0.current.core }.injectFatalError(code, reason: reason)
    }

    // MARK: replacing a failed handle

    /// The current generation, after replacing it when its handle hit a fatal error, and initialising a
    /// replacement's transactions when that is still due.
    private func usableGeneration() async -> Generation {
        let generation = state.withLock { $0.current }
        if let fatal = generation.core.fatalError {
            await replace(generation, after: fatal)
        }
        if state.withLock({ $0.needsTransactionsInit }) {
            await rebuilding.withLock { await initialiseReplacementTransactions() }
        }
        return state.withLock { $0.current }
    }

    /// Runs a call on `generation`; a fatal error it throws replaces the handle before it is rethrown.
    private func checkingFatal<T>(_ generation: Generation, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as KafkaError where error.isFatal {
            await replace(generation, after: error)
            throw error
        }
    }

    /// Called on a handle's poll thread when librdkafka raises a fatal error.
    fileprivate func fatalErrorRaised(_ error: KafkaError, generation number: Int) {
        let generation = state.withLock { state -> Generation? in
            guard state.current.number == number, !state.isShutDown else { return nil }
            state.health.markFailed(error.description)
            return state.current
        }
        guard let generation else { return }
        Task { await self.replace(generation, after: error) }
    }

    /// Replaces `generation`'s handle with a new one, unless it was replaced already, the producer is
    /// shut down, or the error is a fencing (a fenced transactional producer must stay fenced).
    private func replace(_ generation: Generation, after error: KafkaError) async {
        guard !error.isFenced else {
            state.withLock { $0.health.markFailed("fenced: \(error)") }
            return
        }
        await rebuilding.withLock {
            let (isCurrent, lastRebuild) = state.withLock { state in
                (state.current.number == generation.number && !state.isShutDown, state.lastRebuild)
            }
            guard isCurrent else { return }
            state.withLock { $0.health.markFailed(error.description) }
            if let lastRebuild, lastRebuild + Self.minimumRebuildInterval > .now {
                try? await Task.sleep(until: lastRebuild + Self.minimumRebuildInterval, clock: .continuous)
            }
            let number = generation.number + 1
            let core: RDKafkaProducer
            do {
                core = try Self.makeCore(
                    configuration: configuration, logger: logger, generation: number, owner: WeakProducer(self), statistics: statisticsContinuation
                )
            } catch let making {
                // The configuration made the first handle; this is not expected. The next send tries again.
                logger.error("could not replace the Kafka producer after a fatal error", metadata: [LogKey.error: "\(making)"])
                state.withLock { $0.health.markFailed("\(error.description); replacing the producer failed: \(making)") }
                return
            }
            let usesTransactions = state.withLock { state in
                state.current = Generation(core: core, number: number)
                state.lastRebuild = .now
                state.health.rebuilds += 1
                state.health.lastRebuildAt = Date()
                state.needsTransactionsInit = state.usesTransactions
                return state.usesTransactions
            }
            rebuildsCounter.increment()
            logger.warning(
                "the Kafka producer hit a fatal error; replaced it with a new one (a new producer id): records not acknowledged are sent again",
                metadata: [LogKey.error: "\(error)", LogKey.producerRebuilds: "\(health.rebuilds)"]
            )
            // The old handle: fail what is left on it (those sends see the fatal error) and destroy it.
            generation.core.requestStop()
            if usesTransactions {
                await initialiseReplacementTransactions()
            } else {
                state.withLock { $0.health.markRecovered() }
            }
        }
    }

    /// `initTransactions` on a replacement handle (under `rebuilding`); on failure the producer stays
    /// unable to produce, with the reason, and the next use tries again.
    private func initialiseReplacementTransactions() async {
        let generation = state.withLock { $0.needsTransactionsInit ? $0.current : nil }
        guard let generation else { return }
        do {
            try await generation.core.initTransactions(timeout: .seconds(30))
            state.withLock { state in
                if state.current.number == generation.number { state.needsTransactionsInit = false }
                state.health.markRecovered()
            }
            logger.info("the replacement Kafka producer's transactions are initialised")
        } catch {
            logger.warning("initialising the replacement Kafka producer's transactions failed; trying again at the next use", metadata: [LogKey.error: "\(error)"])
            state.withLock { $0.health.markFailed("the replacement producer cannot start transactions: \(error)") }
        }
    }

    private func connectionLost() {
        state.withLock { $0.connectionLosses &+= 1 }
    }

    private static func makeCore(
        configuration: KafkaConfiguration, logger: Logger, generation: Int, owner: WeakProducer,
        statistics: AsyncStream<KafkaStatistics>.Continuation
    ) throws -> RDKafkaProducer {
        try RDKafkaProducer(
            configuration: configuration, logger: logger,
            onStatistics: { statistics.yield($0) },
            onFatalError: { error in owner.producer.withLock { $0.value }?.fatalErrorRaised(error, generation: generation) },
            onConnectionLost: { owner.producer.withLock { $0.value }?.connectionLost() }
        )
    }
}

/// Whether a ``KafkaProducer`` can produce now, and how often its handle was replaced after a fatal error.
public struct KafkaProducerHealth: Sendable, Hashable {
    /// Nil while the producer can produce; otherwise why not (the fatal error, or why its replacement is not
    /// ready yet).
    public var failure: String?
    /// Since when it cannot produce.
    public var failedSince: Date?
    /// Handles replaced after a fatal error since start.
    public var rebuilds = 0
    public var lastRebuildAt: Date?

    public init() {}

    public var canProduce: Bool { failure == nil }

    mutating func markFailed(_ reason: String) {
        if failure == nil { failedSince = Date() }
        failure = reason
    }

    mutating func markRecovered() {
        failure = nil
        failedSince = nil
    }
}

/// A weak reference to the producer, for the callbacks of its handles (which the producer owns).
private final class WeakProducer: Sendable {
    let producer: Mutex<WeakReference>

    init(_ producer: KafkaProducer? = nil) {
        self.producer = Mutex(WeakReference(producer))
    }
}

private struct WeakReference: @unchecked Sendable {
    weak var value: KafkaProducer?
    init(_ value: KafkaProducer?) { self.value = value }
}

/// Runs bodies one at a time, in arrival order (an async mutex that may be held across `await`).
public final class SerialAsyncLock: Sendable {
    private let state = Mutex<(locked: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    public func withLock<T>(_ body: () async throws -> T) async rethrows -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state -> Bool in
                if state.locked {
                    state.waiters.append(continuation)
                    return false
                }
                state.locked = true
                return true
            }
            if acquired { continuation.resume() }
        }
        defer {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiters.isEmpty {
                    state.locked = false
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}
