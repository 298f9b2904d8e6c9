import AWS
import Contracts
import Foundation
import Logging
import Synchronization

/// Reads every shard of a stream (DynamoDB Streams or Kinesis, through a ``StreamSource``),
/// parents before children, each shard strictly in order, and hands each page to `process`. A shard's
/// checkpoint moves only after `process` returned for the page, so a page
/// whose records were not all acknowledged is read again after a restart.
///
/// Errors of one shard stay with that shard: an expired iterator is renewed
/// after the last processed record, trimmed data restarts the shard at
/// TRIM_HORIZON (an error log line and a gap in ``status``), throttling and
/// server errors back that shard off. Only errors that retrying cannot fix
/// (a missing stream, refused credentials, a failing checkpoint load) end `run`.
///
/// The parts, one file each: this supervisor (`run`: discovery on schedule or on demand, starting
/// shards, the stall watchdog), discovery and lineage (`ShardDiscovery.swift`), one ``ShardReader`` per
/// shard (read loop, prefetch, pacing, backoff), its ``CheckpointPipeline``, and the stall watchdog
/// (`StallWatchdog.swift`). Every wait ends on the event it waits for (a ``StopSignal``), not on a tick.
public final class ShardedStreamReader: Sendable {
    let source: any StreamSource
    let configuration: StreamReaderConfiguration
    let checkpoints: any CheckpointStore
    let logger: Logger
    let state: Mutex<State>
    /// With leases: the shards this worker may read, and their epochs.
    let ownership: (any ShardOwnership)?
    /// With leases: told when a held shard starts and stops (exactly-once mode's per-shard producers).
    let lifecycle: (any ShardLifecycle)?
    /// Wakes the supervisor (`run`) before its next deadline: a stop, a discovery asked for, a lease taken,
    /// a shard newly behind (the stall watchdog's next deadline moved).
    let supervisor = StopSignal()

    struct ShardTrack {
        var status: ShardStatus
        /// When the shard last processed a page, caught up, or opened.
        var lastProgress: ContinuousClock.Instant = .now
        /// The last GetRecords returned records (or the shard has just opened): more are expected.
        var isBehind = true
        /// From the last listing: set once the shard is closed.
        var endingSequenceNumber: String?
        var startingSequenceNumber: String?
    }

    struct State {
        var stopRequested = false
        var finished: Set<String> = []
        var running: Set<String> = []
        var rediscover = false
        var failure: (any Error)?
        var order: [String] = []
        var shards: [String: ShardTrack] = [:]
        var lastDiscovery: Date?
        var lastDiscoveryError: String?
        /// The last listing, by shard id (leases: a held shard starts from it).
        var listed: [String: Shard] = [:]
        /// Shards asked to stop (a handover or release of their lease).
        var stoppingShards: Set<String> = []
        /// Each running shard's stop signal: its waits (pacing, backoff) end at once when it must stop.
        var shardSignals: [String: StopSignal] = [:]
        /// Callers of `stopShard` waiting for the shard's reader to end, by shard id.
        var shardEndWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]
        /// The parent cycles of the last listing, already reported.
        var reportedCycles: Set<String> = []
        /// Since when AWS calls fail (not throttled: unanswered or refused), and the first error; nil while they succeed.
        var awsOutage: (since: ContinuousClock.Instant, error: String)?

        /// The shard starts running: a fresh stop signal, triggered at once if the reader is stopping.
        mutating func shardStarted(_ shardID: String) {
            running.insert(shardID)
            let signal = StopSignal()
            if stopRequested { signal.trigger() }
            shardSignals[shardID] = signal
        }

        /// The shard's reader ended (or the shard is finished): returns who waited for it, to be resumed.
        mutating func shardEnded(_ shardID: String) -> [CheckedContinuation<Void, Never>] {
            running.remove(shardID)
            shardSignals[shardID] = nil
            return shardEndWaiters.removeValue(forKey: shardID) ?? []
        }
    }

    /// A reader of the DynamoDB stream `configuration.streamARN`.
    public convenience init(streams: DynamoDBStreams, configuration: StreamReaderConfiguration, checkpoints: any CheckpointStore, logger: Logger) {
        self.init(
            source: DynamoDBStreamsSource(streams: streams, streamARN: configuration.streamARN),
            configuration: configuration, checkpoints: checkpoints, logger: logger
        )
    }

    /// A reader of `source`, whose ARN is `configuration.streamARN`.
    /// - Parameter ownership: with leases, the shards this worker holds: the reader reads only those,
    ///   consults it when it starts a shard and before every page and checkpoint, and tells it when a
    ///   shard is finished. Nil reads every shard. The owner calls ``heldShardsChanged()`` when it takes a
    ///   lease and ``stopShard(_:)`` when it loses or gives one up.
    /// - Parameter lifecycle: with `ownership`, told when a held shard starts (before its checkpoint is read
    ///   again) and when it stops.
    public init(
        source: any StreamSource, configuration: StreamReaderConfiguration, checkpoints: any CheckpointStore,
        ownership: (any ShardOwnership)? = nil, lifecycle: (any ShardLifecycle)? = nil, logger: Logger
    ) {
        self.source = source
        self.configuration = configuration
        self.checkpoints = checkpoints
        self.ownership = ownership
        self.lifecycle = lifecycle
        self.logger = logger
        self.state = Mutex(State())
    }

    /// Stops one shard (its lease is being handed over or released): it finishes and checkpoints the page it
    /// is processing; returns once the shard's reader has ended.
    public func stopShard(_ shardID: String) async {
        let signal = state.withLock { state -> StopSignal? in
            guard state.running.contains(shardID) else { return nil }
            state.stoppingShards.insert(shardID)
            return state.shardSignals[shardID]
        }
        guard let signal else { return }
        signal.trigger()
        // Woken when the shard's reader ends (`State.shardEnded`), not by polling.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ended = state.withLock { state in
                guard state.running.contains(shardID) else { return true }
                state.shardEndWaiters[shardID, default: []].append(continuation)
                return false
            }
            if ended { continuation.resume() }
        }
    }

    /// Leases: the owner took a lease (or was given one back): the reader starts the shard now, not at its
    /// next deadline.
    public func heldShardsChanged() {
        supervisor.wake()
    }

    /// Asks the reader to stop: every shard finishes the page it is processing, checkpoints it, and `run` returns.
    public func requestStop() {
        let signals = state.withLock { state in
            state.stopRequested = true
            return Array(state.shardSignals.values)
        }
        for signal in signals { signal.trigger() }
        supervisor.trigger()
    }

    /// A snapshot of every shard's state, position, counters, errors and stall flag.
    public var status: StreamReaderStatus {
        state.withLock { state in
            StreamReaderStatus(
                streamARN: configuration.streamARN,
                shards: state.order.compactMap { state.shards[$0]?.status },
                lastDiscovery: state.lastDiscovery,
                lastDiscoveryError: state.lastDiscoveryError
            )
        }
    }

    var isStopping: Bool { state.withLock { $0.stopRequested } }

    /// Least time between two listings asked for before the discovery interval (a shard finished, a held
    /// shard not yet listed), so that a listing that keeps lagging is not asked for in a loop.
    static let minimumRediscoveryGap: Duration = .milliseconds(250)

    /// Reads until `requestStop()` or cancellation. Throws on errors that retrying cannot fix
    /// (a missing stream, refused credentials); retriable AWS errors are retried by the AWS client,
    /// then by the reader with backoff.
    public func run(process: @escaping @Sendable (ShardRecords) async throws -> Void) async throws {
        let arn = configuration.streamARN
        if configuration.startPosition == .atTimestamp {
            guard source.supportsTimestampStart else {
                throw StreamReaderConfigurationError("start position AT_TIMESTAMP: \(arn) is a DynamoDB stream, which has no AT_TIMESTAMP iterator (Kinesis streams have); use TRIM_HORIZON or LATEST")
            }
            guard configuration.startTimestamp != nil else {
                throw StreamReaderConfigurationError("start position AT_TIMESTAMP needs a start timestamp")
            }
        }
        let saved = try await checkpoints.load(streamARN: arn)
        state.withLock { state in
            // With leases, a held shard's checkpoint is read again when it starts (and a finished one marks its lease).
            if ownership == nil { state.finished = Set(saved.filter { $0.value.isFinished }.map(\.key)) }
        }
        await withTaskGroup(of: Void.self) { group in
            var nextDiscovery = ContinuousClock.now
            var lastDiscovery: ContinuousClock.Instant?
            var discoveryFailures = 0
            /// When the next listing is due: on its schedule, or, when one was asked for, once the gap since the last has passed.
            func discoveryDue() -> ContinuousClock.Instant {
                guard state.withLock({ $0.rediscover }), let lastDiscovery else { return nextDiscovery }
                return min(nextDiscovery, lastDiscovery + Self.minimumRediscoveryGap)
            }
            while !isStopping, !Task.isCancelled {
                if ContinuousClock.now >= discoveryDue() {
                    state.withLock { $0.rediscover = false }
                    lastDiscovery = .now
                    do {
                        for shard in try await discoverReadyShards() {
                            let checkpoint = saved[shard.shardID]
                            group.addTask {
                                await self.readShard(shard, from: checkpoint, epoch: checkpoint?.epoch, process: process)
                            }
                        }
                        discoveryFailures = 0
                        awsCallSucceeded(logger: logger)
                        nextDiscovery = ContinuousClock.now + configuration.discoveryInterval
                    } catch let error as AWSError where Self.isTransient(error) {
                        discoveryFailures += 1
                        let pause = backoff(after: discoveryFailures)
                        logger.warning(
                            "listing the stream's shards failed; trying again",
                            metadata: [LogKey.stream: "\(arn)", LogKey.error: "\(error)", LogKey.retryIn: "\(pause)"]
                        )
                        state.withLock { $0.lastDiscoveryError = "\(error)" }
                        if !error.isThrottling { awsCallFailed(error, logger: logger) }
                        nextDiscovery = ContinuousClock.now + min(pause, configuration.discoveryInterval)
                    } catch {
                        fail(with: error)
                    }
                }
                if let ownership { startHeldShards(ownership, group: &group, process: process) }
                // Until the next listing or the next moment a shard could stall; anything else that matters wakes it.
                await supervisor.wait(until: min(discoveryDue(), watchForStalls()))
            }
            if Task.isCancelled { requestStop() }
            await group.waitForAll()
        }
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }

    /// Asks for a listing now (a shard finished, or a held shard is not in the last listing).
    func requestDiscovery() {
        state.withLock { $0.rediscover = true }
        supervisor.wake()
    }

    /// Reads one shard to its end (or until it must stop), reporting an error that ends it.
    /// - Parameter epoch: the lease epoch (leases), else the loaded checkpoint's; every checkpoint written carries it.
    func readShard(
        _ shard: Shard, from checkpoint: Checkpoint?, epoch: Int64?, process: @escaping @Sendable (ShardRecords) async throws -> Void
    ) async {
        var reader = ShardReader(reader: self, shard: shard, checkpoint: checkpoint, epoch: epoch, process: process)
        do {
            try await reader.run()
        } catch is CancellationError {
            return
        } catch {
            logger.error("reading shard failed", metadata: [LogKey.shard: "\(shard.shardID)", LogKey.error: "\(error)"])
            recordError(shard.shardID, error)
            fail(with: error)
        }
    }

    /// Whether the shard's reader must stop: the reader stops, the shard was asked to stop, or (leases)
    /// this worker no longer holds its lease at `epoch`.
    func mustStop(_ shardID: String, epoch: Int64?) -> Bool {
        if state.withLock({ $0.stopRequested || $0.stoppingShards.contains(shardID) }) { return true }
        return isFenced(shardID, epoch: epoch)
    }

    /// Leases: the lease was lost (or its epoch changed); nothing more may be routed or checkpointed for it.
    func isFenced(_ shardID: String, epoch: Int64?) -> Bool {
        guard let ownership else { return false }
        return ownership.epoch(of: shardID) != epoch
    }

    /// Waits `duration`, or less when the shard must stop first (its stop signal ends the wait). Throws when
    /// the task is cancelled.
    func pause(_ duration: Duration, shardID: String) async throws {
        try await pause(until: .now + duration, shardID: shardID)
    }

    /// Waits until `deadline`, or less when the shard must stop first. Throws when the task is cancelled.
    func pause(until deadline: ContinuousClock.Instant, shardID: String) async throws {
        // Every running shard has its signal (`State.shardStarted`); without one the shard stops at once.
        if let signal = state.withLock({ $0.shardSignals[shardID] }) {
            await signal.wait(until: deadline)
        }
        try Task.checkCancellation()
    }

    func fail(with error: any Error) {
        state.withLock { state in
            if state.failure == nil { state.failure = error }
        }
        requestStop()
    }

    /// Errors worth waiting out: throttling, 5xx, transport failures, an answer that did not decode.
    static func isTransient(_ error: AWSError) -> Bool {
        error.isRetriable || error.type == AWSError.invalidResponse
    }

    /// The pause after `failures` failures in a row: exponential from `errorBackoff`, capped, with jitter.
    func backoff(after failures: Int) -> Duration {
        let exponent = max(0, min(failures - 1, 20))
        let ceiling = min(configuration.errorBackoff * (1 << exponent), configuration.maximumErrorBackoff)
        return ceiling * Double.random(in: 0.5...1.0)
    }

    func update(_ shardID: String, _ change: (inout ShardTrack) -> Void) {
        state.withLock { state in
            if state.shards[shardID] == nil {
                state.shards[shardID] = ShardTrack(status: ShardStatus(shardID: shardID, state: .reading))
                state.order.append(shardID)
            }
            change(&state.shards[shardID]!)
        }
    }

    /// An AWS call of the reader failed (not throttled): the first failure after a success is logged once as an outage.
    func awsCallFailed(_ error: any Error, logger: Logger) {
        let began = state.withLock { state -> Bool in
            guard state.awsOutage == nil else { return false }
            state.awsOutage = (.now, "\(error)")
            return true
        }
        if began {
            logger.warning("AWS is unreachable or failing: reading the stream fails; retrying with backoff (nothing is skipped)", metadata: [
                LogKey.stream: "\(configuration.streamARN)", LogKey.error: "\(error)",
            ])
        }
    }

    /// An AWS call of the reader succeeded: the end of an outage is logged once, with how long it lasted.
    func awsCallSucceeded(logger: Logger) {
        let ended = state.withLock { state -> (since: ContinuousClock.Instant, error: String)? in
            defer { state.awsOutage = nil }
            return state.awsOutage
        }
        if let ended {
            let lasted = ContinuousClock.now - ended.since
            logger.info("AWS is reachable again after \(lasted.components.seconds) s", metadata: [
                LogKey.stream: "\(configuration.streamARN)", LogKey.error: "\(ended.error)",
            ])
        }
    }

    func recordError(_ shardID: String, _ error: any Error) {
        update(shardID) { track in
            track.status.lastError = "\(error)"
            track.status.lastErrorTime = Date()
        }
    }

    /// The shard's writer was fenced by a newer owner: this shard stops (its lease counts as lost); the others go on.
    func shardFenced(_ shardID: String, epoch: Int64?, _ error: ShardFencedError, logger: Logger) {
        logger.warning("the shard was fenced by a newer owner: stopped reading it", metadata: [LogKey.error: "\(error)"])
        recordError(shardID, error)
        if let ownership, let epoch { ownership.shardFenced(shardID, epoch: epoch) }
    }

    /// Orders two decimal sequence numbers (up to 128 bits; longer text is larger).
    static func compareSequenceNumbers(_ a: String, _ b: String) -> ComparisonResult {
        let a = a.drop { $0 == "0" }, b = b.drop { $0 == "0" }
        if a.count != b.count { return a.count < b.count ? .orderedAscending : .orderedDescending }
        return a == b ? .orderedSame : (a < b ? .orderedAscending : .orderedDescending)
    }
}
