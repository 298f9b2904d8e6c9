import AWS
import Contracts
import Foundation
import Logging
import Synchronization

/// A page of records from one shard, in sequence order.
public struct ShardRecords: Sendable {
    public var streamARN: String
    public var shardID: String
    public var records: [StreamRecord]
    /// The epoch the page's checkpoint carries (the lease epoch with leases).
    public var epoch: Int64?

    public init(streamARN: String, shardID: String, records: [StreamRecord], epoch: Int64? = nil) {
        self.streamARN = streamARN
        self.shardID = shardID
        self.records = records
        self.epoch = epoch
    }
}

/// Where to start a shard that has no checkpoint.
public enum StartPosition: String, Sendable, Hashable, CaseIterable {
    /// The oldest record still in the stream (the default: nothing is missed).
    case trimHorizon = "TRIM_HORIZON"
    /// Only records written after the reader starts.
    case latest = "LATEST"
    /// Records that arrived at or after ``StreamReaderConfiguration/startTimestamp`` (Kinesis only:
    /// DynamoDB Streams has no such iterator, and the reader refuses it there).
    case atTimestamp = "AT_TIMESTAMP"
}

public struct StreamReaderConfiguration: Sendable {
    /// The stream's ARN: the key of its checkpoints (`<streamARN>|<shardId>`) and of its status.
    public var streamARN: String
    public var startPosition: StartPosition
    /// Where `.atTimestamp` starts; required with it, ignored otherwise.
    public var startTimestamp: Date?
    /// Least time between the starts of two GetRecords calls on one shard (default 200 ms: five
    /// calls a second, the per-shard limit of DynamoDB Streams and Kinesis), after an empty page and
    /// after a page with records alike. Only a page that shows a backlog is followed at once, so that
    /// it is read as fast as the source answers (AWS throttles any excess, which backs the shard off):
    /// a full page (`Limit` records), one that says the shard is behind (Kinesis's MillisBehindLatest
    /// > 0), or one whose newest record was created more than ``backlogAge`` before the call. A new
    /// record waits at most this long, plus one GetRecords round trip, to be read. Lengthen it when
    /// other readers share the stream's shards (Lambda polls four times a second).
    public var pollInterval: Duration
    /// A page whose newest record is older than this when the call started shows a backlog (2 s:
    /// DynamoDB rounds ApproximateCreationDateTime down to the second).
    public static let backlogAge: TimeInterval = 2
    /// How often the shard list is refreshed even when no shard ended (30 s). A shard
    /// that ends triggers a refresh at once.
    public var discoveryInterval: Duration
    /// GetRecords `Limit` (default 1,000, the most GetRecords returns). The limit sent
    /// is never above `maximumRecordsInFlight`.
    public var pageLimit: Int?
    /// Most records of one shard that `process` holds at once (default 10,000). `process`
    /// is awaited page by page, so a shard holds at most one page: the bound caps the page size.
    public var maximumRecordsInFlight: Int
    /// A shard that is behind (its last page had records) and makes no progress for this
    /// long is flagged stalled in ``StreamReaderStatus`` and logged once (default 60 s).
    public var stallTimeout: Duration
    /// First pause of a shard after a failed call that the AWS client gave up retrying
    /// (throttling, 5xx, connection errors); it doubles on each failure in a row (default 200 ms).
    public var errorBackoff: Duration
    /// The longest such pause (default 10 s).
    public var maximumErrorBackoff: Duration

    public init(
        streamARN: String,
        startPosition: StartPosition = .trimHorizon,
        startTimestamp: Date? = nil,
        pollInterval: Duration = .milliseconds(200),
        discoveryInterval: Duration = .seconds(30),
        pageLimit: Int? = 1000,
        maximumRecordsInFlight: Int = 10_000,
        stallTimeout: Duration = .seconds(60),
        errorBackoff: Duration = .milliseconds(200),
        maximumErrorBackoff: Duration = .seconds(10)
    ) {
        self.streamARN = streamARN
        self.startPosition = startPosition
        self.startTimestamp = startTimestamp
        self.pollInterval = pollInterval
        self.discoveryInterval = discoveryInterval
        self.pageLimit = pageLimit
        self.maximumRecordsInFlight = maximumRecordsInFlight
        self.stallTimeout = stallTimeout
        self.errorBackoff = errorBackoff
        self.maximumErrorBackoff = maximumErrorBackoff
    }

    /// The `Limit` of every GetRecords: `pageLimit` (1,000 when nil) within 1...maximumRecordsInFlight and at most 1,000.
    public var effectivePageLimit: Int {
        max(1, min(pageLimit ?? 1000, maximumRecordsInFlight, 1000))
    }
}

/// The reader's former name, from when DynamoDB Streams was its only source.
public typealias DynamoDBStreamReader = ShardedStreamReader

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
public final class ShardedStreamReader: Sendable {
    private let source: any StreamSource
    private let configuration: StreamReaderConfiguration
    private let checkpoints: any CheckpointStore
    private let logger: Logger
    private let state: Mutex<State>
    /// With leases: the shards this worker may read, and their epochs.
    private let ownership: (any ShardOwnership)?
    /// With leases: told when a held shard starts and stops (exactly-once mode's per-shard producers).
    private let lifecycle: (any ShardLifecycle)?

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
        /// Callers of `stopShard` waiting for the shard's reader to end, by shard id.
        var shardEndWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]

        /// The shard's reader ended (or the shard is finished): returns who waited for it, to be resumed.
        mutating func shardEnded(_ shardID: String) -> [CheckedContinuation<Void, Never>] {
            running.remove(shardID)
            return shardEndWaiters.removeValue(forKey: shardID) ?? []
        }
        /// The parent cycles of the last listing, already reported.
        var reportedCycles: Set<String> = []
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
    ///   shard is finished. Nil reads every shard.
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
        let running = state.withLock { state in
            guard state.running.contains(shardID) else { return false }
            state.stoppingShards.insert(shardID)
            return true
        }
        guard running else { return }
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

    /// Whether the shard's reader must stop: the reader stops, the shard was asked to stop, or (leases)
    /// this worker no longer holds its lease at `epoch`.
    private func mustStop(_ shardID: String, epoch: Int64?) -> Bool {
        if state.withLock({ $0.stopRequested || $0.stoppingShards.contains(shardID) }) { return true }
        return isFenced(shardID, epoch: epoch)
    }

    /// Leases: the lease was lost (or its epoch changed); nothing more may be routed or checkpointed for it.
    private func isFenced(_ shardID: String, epoch: Int64?) -> Bool {
        guard let ownership else { return false }
        return ownership.epoch(of: shardID) != epoch
    }

    /// Asks the reader to stop: every shard finishes the page it is processing, checkpoints it, and `run` returns.
    public func requestStop() {
        state.withLock { $0.stopRequested = true }
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

    private var isStopping: Bool { state.withLock { $0.stopRequested } }

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
            var discoveryFailures = 0
            while !isStopping, !Task.isCancelled {
                let asked = state.withLock { state in
                    defer { state.rediscover = false }
                    return state.rediscover
                }
                if asked || ContinuousClock.now >= nextDiscovery {
                    do {
                        for shard in try await discoverReadyShards() {
                            let checkpoint = saved[shard.shardID]
                            group.addTask {
                                await self.readShardReportingFailure(shard, from: checkpoint, epoch: checkpoint?.epoch, process: process)
                            }
                        }
                        discoveryFailures = 0
                        nextDiscovery = ContinuousClock.now + configuration.discoveryInterval
                    } catch let error as AWSError where Self.isTransient(error) {
                        discoveryFailures += 1
                        let pause = backoff(after: discoveryFailures)
                        logger.warning(
                            "listing the stream's shards failed; trying again",
                            metadata: [LogKey.stream: "\(arn)", LogKey.error: "\(error)", LogKey.retryIn: "\(pause)"]
                        )
                        state.withLock { $0.lastDiscoveryError = "\(error)" }
                        nextDiscovery = ContinuousClock.now + min(pause, configuration.discoveryInterval)
                    } catch {
                        fail(with: error)
                    }
                }
                if let ownership { startHeldShards(ownership, group: &group, process: process) }
                watchForStalls()
                try? await Task.sleep(for: .milliseconds(50))
            }
            if Task.isCancelled { requestStop() }
            await group.waitForAll()
        }
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }

    /// Lists every shard (paging the source's listing to the end), records them in the status,
    /// and marks the ready ones as running.
    private func discoverReadyShards() async throws -> [Shard] {
        let listing = try await source.listShards()
        // A shard id listed twice (a wrong listing) counts once, as first listed.
        var seen: Set<String> = []
        let shards = listing.shards.filter { seen.insert($0.shardID).inserted }
        if let reason = listing.inactiveReason {
            logger.warning("\(reason): no new records will arrive", metadata: [LogKey.stream: "\(configuration.streamARN)"])
        }
        let lineage = ShardLineage(shards: shards)
        let cycles = lineage.parentCycles.map { (shardIDs: $0, path: ShardLineage.describe($0, in: shards)) }
        let (ready, newCycles) = state.withLock { state in
            // With leases, the lease coordinator decides what to read (startHeldShards).
            let ready = ownership != nil ? [] : lineage.readyShards(finished: state.finished, running: state.running)
            state.running.formUnion(ready.map(\.shardID))
            for shard in shards { state.listed[shard.shardID] = shard }
            state.lastDiscovery = Date()
            state.lastDiscoveryError = nil
            let listed = shards.map(\.shardID)
            // Shards still being read stay in the status even when the listing dropped them.
            state.order = listed + state.order.filter { !listed.contains($0) && state.running.contains($0) }
            for shard in shards {
                var track = state.shards[shard.shardID] ?? ShardTrack(status: ShardStatus(shardID: shard.shardID, state: .waitingForParent))
                track.status.parentShardID = shard.parentShardID
                track.status.adjacentParentShardID = shard.adjacentParentShardID
                track.status.isClosed = shard.isClosed
                track.endingSequenceNumber = shard.endingSequenceNumber
                track.startingSequenceNumber = shard.startingSequenceNumber
                track.status.state =
                    if state.finished.contains(shard.shardID) {
                        .finished
                    } else if state.running.contains(shard.shardID) {
                        .reading
                    } else {
                        ownership != nil ? .notHeld : .waitingForParent
                    }
                state.shards[shard.shardID] = track
            }
            for shard in ready { state.shards[shard.shardID]?.lastProgress = .now }
            let kept = Set(state.order)
            state.shards = state.shards.filter { kept.contains($0.key) }
            // Each cycle is reported once while it is listed (and again should it come back).
            let newCycles = cycles.filter { !state.reportedCycles.contains($0.path) }
            state.reportedCycles = Set(cycles.map(\.path))
            for cycle in newCycles {
                for id in cycle.shardIDs {
                    state.shards[id]?.status.lastError = Self.cycleMessage(cycle.path)
                    state.shards[id]?.status.lastErrorTime = Date()
                }
            }
            return (ready, newCycles)
        }
        for cycle in newCycles.prefix(Self.maximumCyclesLogged) {
            logger.error(
                "\(Self.cycleMessage(cycle.path)); AWS never lists one: check the stream endpoint",
                metadata: [LogKey.stream: "\(configuration.streamARN)"]
            )
        }
        if newCycles.count > Self.maximumCyclesLogged {
            logger.error(
                "the stream lists \(newCycles.count - Self.maximumCyclesLogged) more parent cycles (each shard's lastError in the status names its cycle)",
                metadata: [LogKey.stream: "\(configuration.streamARN)"]
            )
        }
        return ready
    }

    /// Parent cycles logged one by one per listing; more are counted in one line.
    static let maximumCyclesLogged = 10

    /// A shard's error when the listing puts it in a parent cycle.
    static func cycleMessage(_ path: String) -> String {
        "the stream lists shards whose parents form a cycle (\(path)): they are read without waiting for the parents in the cycle"
    }

    /// Leases: starts every held shard that is not running (from the checkpoint read again now, since
    /// another worker may have moved it).
    private func startHeldShards(
        _ ownership: any ShardOwnership, group: inout TaskGroup<Void>, process: @escaping @Sendable (ShardRecords) async throws -> Void
    ) {
        let held = ownership.heldShards
        let starting: [(Shard, Int64)] = state.withLock { state in
            var starting: [(Shard, Int64)] = []
            for (id, epoch) in held.sorted(by: { $0.key < $1.key }) where !state.running.contains(id) && !state.finished.contains(id) {
                guard let shard = state.listed[id] else {
                    state.rediscover = true
                    continue
                }
                state.running.insert(id)
                state.stoppingShards.remove(id)
                if state.shards[id] == nil {
                    state.shards[id] = ShardTrack(status: ShardStatus(shardID: id, state: .reading))
                    state.order.append(id)
                }
                starting.append((shard, epoch))
            }
            return starting
        }
        for (shard, epoch) in starting {
            group.addTask {
                defer { for waiter in self.state.withLock({ $0.shardEnded(shard.shardID) }) { waiter.resume() } }
                // Before the checkpoint is read: the previous owner's uncommitted work is settled (fenced) first.
                guard await self.startShard(shard.shardID, epoch: epoch) else { return }
                await self.readHeldShard(shard, epoch: epoch, ownership: ownership, process: process)
                await self.lifecycle?.shardStopped(shard.shardID, epoch: epoch)
            }
        }
    }

    /// Tells the lifecycle that a held shard starts, retrying until it succeeds; false when the shard must stop first.
    private func startShard(_ shardID: String, epoch: Int64) async -> Bool {
        guard let lifecycle else { return true }
        return await retryingUntilStopped(shardID, epoch: epoch, "starting a leased shard") {
            try await lifecycle.shardStarting(shardID, epoch: epoch)
        } != nil
    }

    /// A held shard: its checkpoint read again (a finished one marks the lease), then read.
    private func readHeldShard(
        _ shard: Shard, epoch: Int64, ownership: any ShardOwnership, process: @escaping @Sendable (ShardRecords) async throws -> Void
    ) async {
        guard let checkpoint = await self.loadCheckpoint(shard.shardID, epoch: epoch) else { return }
        if checkpoint?.isFinished == true {
            self.state.withLock { state in
                state.finished.insert(shard.shardID)
                state.shards[shard.shardID]?.status.state = .finished
            }
            await ownership.shardFinished(shard.shardID, epoch: epoch)
            return
        }
        await self.readShardReportingFailure(shard, from: checkpoint, epoch: epoch, process: process)
    }

    /// Reads the shard's checkpoint again, retrying until it is read; nil when the shard must stop first.
    private func loadCheckpoint(_ shardID: String, epoch: Int64) async -> Checkpoint?? {
        await retryingUntilStopped(shardID, epoch: epoch, "loading the checkpoint of a leased shard") {
            try await checkpoints.load(streamARN: configuration.streamARN)[shardID]
        }
    }

    /// Runs `attempt` until it succeeds, logging, recording and backing off after each failure; nil when the
    /// shard must stop first.
    private func retryingUntilStopped<T>(
        _ shardID: String, epoch: Int64, _ what: String, _ attempt: () async throws -> T
    ) async -> T? {
        var failures = 0
        while !mustStop(shardID, epoch: epoch) {
            do {
                return try await attempt()
            } catch {
                failures += 1
                logger.error("\(what) failed; retrying", metadata: [LogKey.shard: "\(shardID)", LogKey.error: "\(error)"])
                recordError(shardID, error)
                try? await Task.sleep(for: backoff(after: failures))
            }
        }
        return nil
    }

    private func fail(with error: any Error) {
        state.withLock { state in
            if state.failure == nil { state.failure = error }
            state.stopRequested = true
        }
    }

    /// Errors worth waiting out: throttling, 5xx, transport failures, an answer that did not decode.
    static func isTransient(_ error: AWSError) -> Bool {
        error.isRetriable || error.type == AWSError.invalidResponse
    }

    /// The pause after `failures` failures in a row: exponential from `errorBackoff`, capped, with jitter.
    private func backoff(after failures: Int) -> Duration {
        let exponent = max(0, min(failures - 1, 20))
        let ceiling = min(configuration.errorBackoff * (1 << exponent), configuration.maximumErrorBackoff)
        return ceiling * Double.random(in: 0.5...1.0)
    }

    private func update(_ shardID: String, _ change: (inout ShardTrack) -> Void) {
        state.withLock { state in
            if state.shards[shardID] == nil {
                state.shards[shardID] = ShardTrack(status: ShardStatus(shardID: shardID, state: .reading))
                state.order.append(shardID)
            }
            change(&state.shards[shardID]!)
        }
    }

    private func recordError(_ shardID: String, _ error: any Error) {
        update(shardID) { track in
            track.status.lastError = "\(error)"
            track.status.lastErrorTime = Date()
        }
    }

    /// Marks progress; logs when a stalled shard moves again.
    private func progressed(_ shardID: String, caughtUp: Bool, logger: Logger) {
        var wasStalled = false
        update(shardID) { track in
            track.lastProgress = .now
            track.isBehind = !caughtUp
            wasStalled = track.status.isStalled
            track.status.isStalled = false
        }
        if wasStalled { logger.info("shard is making progress again") }
    }

    /// Flags shards that are behind and made no progress for the stall timeout; logs each once.
    private func watchForStalls() {
        let now = ContinuousClock.now
        let timeout = configuration.stallTimeout
        let stalled: [(String, Duration)] = state.withLock { state in
            var found: [(String, Duration)] = []
            for (id, track) in state.shards
            where track.status.state == .reading && track.isBehind && !track.status.isStalled && now - track.lastProgress >= timeout {
                state.shards[id]!.status.isStalled = true
                found.append((id, now - track.lastProgress))
            }
            return found
        }
        for (id, idle) in stalled {
            logger.warning(
                "shard stalled: records are waiting but none was processed (the error names why)",
                metadata: [
                    LogKey.shard: "\(id)", LogKey.idle: "\(idle)",
                    LogKey.error: "\(self.status.shard(id)?.lastError ?? "none")",
                ]
            )
        }
    }

    private func readShardReportingFailure(
        _ shard: Shard, from checkpoint: Checkpoint?, epoch: Int64?, process: @escaping @Sendable (ShardRecords) async throws -> Void
    ) async {
        do {
            try await readShard(shard, from: checkpoint, epoch: epoch, process: process)
        } catch is CancellationError {
            return
        } catch {
            logger.error("reading shard failed", metadata: [LogKey.shard: "\(shard.shardID)", LogKey.error: "\(error)"])
            recordError(shard.shardID, error)
            fail(with: error)
        }
    }

    /// - Parameter epoch: the lease epoch (leases), else the loaded checkpoint's; every checkpoint written carries it.
    private func readShard(
        _ shard: Shard, from checkpoint: Checkpoint?, epoch: Int64?, process: @escaping @Sendable (ShardRecords) async throws -> Void
    ) async throws {
        let arn = configuration.streamARN
        let id = shard.shardID
        var logger = self.logger
        logger[metadataKey: LogKey.shard] = "\(id)"
        var lastSequence = checkpoint?.sequenceNumber
        let initialPosition: ShardPosition =
            switch configuration.startPosition {
            case .trimHorizon: .trimHorizon
            case .latest: .latest
            case .atTimestamp: configuration.startTimestamp.map(ShardPosition.atTimestamp) ?? .trimHorizon
            }
        update(id) { track in
            track.status.lastSequenceNumber = lastSequence
            track.status.state = .reading
            track.lastProgress = .now
            track.isBehind = true
        }
        logger.info("shard opened", metadata: [
            LogKey.start: "\(lastSequence.map { "after \($0)" } ?? "\(initialPosition)")", LogKey.epoch: "\(epoch.map(String.init) ?? "none")",
        ])
        defer {
            if ownership != nil {
                state.withLock { state in
                    state.stoppingShards.remove(id)
                    if state.shards[id]?.status.state == .reading { state.shards[id]?.status.state = .notHeld }
                }
                logger.info("shard stopped", metadata: [LogKey.epoch: "\(epoch.map(String.init) ?? "none")"])
            }
        }

        var iterator: String?
        var needsIterator = true
        var restartAtTrimHorizon = false
        var failures = 0
        /// When the last GetRecords started; nil when the next one may start at once.
        var lastCall: ContinuousClock.Instant?
        var reachedEnd = false
        /// The next page, fetched while the last one (which showed a backlog) was delivered; it is used only
        /// if the next call would be for the same iterator, and dropped when the shard stops.
        var prefetched: Prefetch?
        defer { prefetched?.task.cancel() }
        /// The last page's checkpoint, being saved while the next page is routed (awaited before the next one
        /// is saved, and before the shard stops).
        var pendingCheckpoint: Task<Bool, any Error>?
        defer { pendingCheckpoint?.cancel() }
        while !mustStop(id, epoch: epoch) {
            do {
                if needsIterator {
                    // After the last processed record, else where the shard was first opened.
                    let position: ShardPosition =
                        if restartAtTrimHorizon { .trimHorizon } else if let lastSequence { .afterSequenceNumber(lastSequence) } else { initialPosition }
                    iterator = try await source.shardIterator(shardID: id, position: position)
                    needsIterator = false
                    restartAtTrimHorizon = false
                }
                guard let current = iterator else { break }
                // At most one GetRecords per poll interval (AWS's per-shard limit), unless the last page showed a backlog.
                if let lastCall {
                    try await sleepUnlessStopping(until: lastCall + configuration.pollInterval, shardID: id, epoch: epoch)
                    if mustStop(id, epoch: epoch) { break }
                }
                var started = ContinuousClock.now
                var startedAt = Date()
                let page: SourcePage
                if let next = prefetched, next.iterator == current {
                    prefetched = nil
                    (started, startedAt, page) = try await next.task.value
                } else {
                    prefetched?.task.cancel()
                    prefetched = nil
                    page = try await source.records(iterator: current, limit: configuration.effectivePageLimit)
                }
                failures = 0
                let isBacklog = page.records.count >= configuration.effectivePageLimit || (page.millisBehindLatest ?? 0) > 0
                    || page.records.last?.approximateCreationDateTime.map { startedAt.timeIntervalSince($0) > StreamReaderConfiguration.backlogAge } == true
                lastCall = isBacklog ? nil : started
                if let behind = page.millisBehindLatest { update(id) { $0.status.millisBehindLatest = behind } }
                if !page.records.isEmpty {
                    update(id) { $0.isBehind = true }
                    if isBacklog, let next = page.nextIterator {
                        // Read on at once: the next page is fetched (and decoded) while this one is routed.
                        prefetched = Prefetch(iterator: next, task: Task { [source, limit = configuration.effectivePageLimit] in
                            let (started, startedAt) = (ContinuousClock.now, Date())
                            return (started, startedAt, try await source.records(iterator: next, limit: limit))
                        })
                    }
                    let batch = ShardRecords(streamARN: arn, shardID: id, records: page.records, epoch: epoch)
                    guard try await deliver(batch, epoch: epoch, logger: logger, pendingCheckpoint: &pendingCheckpoint, process: process) else {
                        if let pendingCheckpoint { _ = try await Self.finish(pendingCheckpoint) }
                        return
                    }
                    lastSequence = page.records.last!.sequenceNumber
                    let age = page.records.last!.approximateCreationDateTime.map { Duration.seconds(max(0, Date().timeIntervalSince($0))) }
                    update(id) { track in
                        track.status.lastSequenceNumber = lastSequence
                        track.status.recordsRead += page.records.count
                        if let age { track.status.newestRecordAge = age }
                    }
                    progressed(id, caughtUp: false, logger: logger)
                } else {
                    // Kinesis may answer empty pages while records wait further on (MillisBehindLatest > 0).
                    progressed(id, caughtUp: (page.millisBehindLatest ?? 0) == 0, logger: logger)
                }
                iterator = page.nextIterator
                if iterator == nil || (page.records.isEmpty && hasReachedEnd(id, after: lastSequence)) {
                    reachedEnd = true
                    break
                }
            } catch let error as AWSError where error.type == AWSError.expiredIterator {
                // Iterators live 15 minutes; a long `process` or backoff outlives one. Nothing is lost.
                logger.info("shard iterator expired; renewing it", metadata: [LogKey.after: "\(lastSequence ?? configuration.startPosition.rawValue)"])
                recordError(id, error)
                needsIterator = true
            } catch let error as AWSError where error.type == AWSError.trimmedDataAccess {
                logger.error(
                    "records of the shard were trimmed (older than 24 hours) before they were read: they are lost; restarting at TRIM_HORIZON",
                    metadata: [LogKey.after: "\(lastSequence ?? "the shard's start")", LogKey.error: "\(error)"]
                )
                update(id) { track in
                    track.status.trimmedGaps += 1
                    track.status.lastError = "\(error)"
                    track.status.lastErrorTime = Date()
                }
                needsIterator = true
                restartAtTrimHorizon = true
            } catch let error as AWSError where Self.isTransient(error) {
                failures += 1
                let pause = backoff(after: failures)
                logger.warning(
                    error.isThrottling ? "shard throttled; backing off" : "reading the shard failed; backing off",
                    metadata: [LogKey.error: "\(error)", LogKey.retryIn: "\(pause)", LogKey.failures: "\(failures)"]
                )
                recordError(id, error)
                try await sleepUnlessStopping(pause, shardID: id, epoch: epoch)
            }
        }
        var saved = true
        if let pending = pendingCheckpoint {
            pendingCheckpoint = nil
            saved = try await Self.finish(pending)
        }
        guard reachedEnd, saved else { return }
        let last = Checkpoint(sequenceNumber: lastSequence, isFinished: true, epoch: epoch)
        guard try await saveCheckpoint(last, shardID: id, logger: logger) else { return }
        logger.info("shard finished")
        let waiters = state.withLock { state in
            state.finished.insert(id)
            state.rediscover = true
            state.shards[id]?.status.state = .finished
            state.shards[id]?.status.isStalled = false
            state.shards[id]?.isBehind = false
            return state.shardEnded(id)
        }
        for waiter in waiters { waiter.resume() }
        if let ownership, let epoch { await ownership.shardFinished(id, epoch: epoch) }
    }

    /// Whether a shard that just answered an empty page is closed and read to its end: its
    /// position is at or past its `EndingSequenceNumber`. The services say so by returning no next
    /// iterator; moto's Kinesis never does, so its closed shards end here.
    private func hasReachedEnd(_ shardID: String, after lastSequence: String?) -> Bool {
        guard let track = state.withLock({ $0.shards[shardID] }), let ending = track.endingSequenceNumber else { return false }
        // Without a processed record, only a shard that ends where it starts (holding at most that one record) has ended.
        guard let position = lastSequence ?? track.startingSequenceNumber else { return false }
        return Self.compareSequenceNumbers(position, ending) != .orderedAscending
    }

    /// Orders two decimal sequence numbers (up to 128 bits; longer text is larger).
    static func compareSequenceNumbers(_ a: String, _ b: String) -> ComparisonResult {
        let a = a.drop { $0 == "0" }, b = b.drop { $0 == "0" }
        if a.count != b.count { return a.count < b.count ? .orderedAscending : .orderedDescending }
        return a == b ? .orderedSame : (a < b ? .orderedAscending : .orderedDescending)
    }

    /// A GetRecords call made ahead (`readShard`): for which iterator; when it started, and its page.
    private struct Prefetch {
        var iterator: String
        var task: Task<(started: ContinuousClock.Instant, startedAt: Date, page: SourcePage), any Error>
    }

    /// Delivers a page, retrying with backoff until it succeeds (a page is never skipped), then checkpoints it:
    /// the previous page's checkpoint (`pendingCheckpoint`) is awaited first, so checkpoints are written in page
    /// order, and this page's is started in its place, saved while the next page is routed. Returns false when a
    /// stop was requested first (or the lease was lost), or the previous checkpoint could not be saved for that reason.
    private func deliver(
        _ batch: ShardRecords, epoch: Int64?, logger: Logger, pendingCheckpoint: inout Task<Bool, any Error>?,
        process: @Sendable (ShardRecords) async throws -> Void
    ) async throws -> Bool {
        var failures = 0
        while true {
            // A lost lease: the new owner reads this page again from its checkpoint.
            if isFenced(batch.shardID, epoch: epoch) { return false }
            do {
                try await process(batch)
                break
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as ShardFencedError {
                shardFenced(batch.shardID, epoch: epoch, error, logger: logger)
                return false
            } catch let error as UnrecoverableProcessingError {
                // Retrying cannot help (a fenced transactional producer, say): stop the reader.
                throw error
            } catch {
                failures += 1
                logger.error("routing a page failed; retrying it (the checkpoint stays put)", metadata: [LogKey.error: "\(error)", LogKey.records: "\(batch.records.count)"])
                recordError(batch.shardID, error)
                // Records are waiting (this page): a shard that cannot deliver is behind, and the watchdog flags it
                // stalled after the stall timeout, naming this error.
                update(batch.shardID) { $0.isBehind = true }
                try await sleepUnlessStopping(backoff(after: failures), shardID: batch.shardID, epoch: epoch)
                if mustStop(batch.shardID, epoch: epoch) { return false }
            }
        }
        let checkpoint = Checkpoint(sequenceNumber: batch.records.last?.sequenceNumber, epoch: epoch)
        if let previous = pendingCheckpoint {
            pendingCheckpoint = nil
            guard try await Self.finish(previous) else { return false }
        }
        pendingCheckpoint = Task { [self] in try await saveCheckpoint(checkpoint, shardID: batch.shardID, logger: logger) }
        return true
    }

    /// A background checkpoint's result; cancelling the caller cancels it.
    private static func finish(_ checkpoint: Task<Bool, any Error>) async throws -> Bool {
        try await withTaskCancellationHandler { try await checkpoint.value } onCancel: { checkpoint.cancel() }
    }

    /// Saves a checkpoint, retrying with backoff; false when a stop was requested before it was saved.
    private func saveCheckpoint(_ checkpoint: Checkpoint, shardID: String, logger: Logger) async throws -> Bool {
        var failures = 0
        while true {
            // Never move a checkpoint for a lease this worker lost.
            if isFenced(shardID, epoch: checkpoint.epoch) { return false }
            do {
                try await checkpoints.save(streamARN: configuration.streamARN, shardID: shardID, checkpoint: checkpoint)
                update(shardID) { $0.status.lastCheckpoint = Date() }
                return true
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as ShardFencedError {
                shardFenced(shardID, epoch: checkpoint.epoch, error, logger: logger)
                return false
            } catch {
                failures += 1
                logger.error("saving the checkpoint failed; retrying", metadata: [LogKey.error: "\(error)"])
                recordError(shardID, error)
                try await sleepUnlessStopping(backoff(after: failures), shardID: shardID, epoch: checkpoint.epoch)
                if mustStop(shardID, epoch: checkpoint.epoch) { return false }
            }
        }
    }

    /// The shard's writer was fenced by a newer owner: this shard stops (its lease counts as lost); the others go on.
    private func shardFenced(_ shardID: String, epoch: Int64?, _ error: ShardFencedError, logger: Logger) {
        logger.warning("the shard was fenced by a newer owner: stopped reading it", metadata: [LogKey.error: "\(error)"])
        recordError(shardID, error)
        if let ownership, let epoch { ownership.shardFenced(shardID, epoch: epoch) }
    }

    private func sleepUnlessStopping(until deadline: ContinuousClock.Instant, shardID: String, epoch: Int64?) async throws {
        while ContinuousClock.now < deadline, !mustStop(shardID, epoch: epoch) {
            try await Task.sleep(until: min(deadline, .now + .milliseconds(50)), clock: .continuous)
        }
    }

    private func sleepUnlessStopping(_ duration: Duration, shardID: String, epoch: Int64?) async throws {
        var remaining = duration
        while remaining > .zero, !mustStop(shardID, epoch: epoch) {
            let step = min(remaining, .milliseconds(50))
            try await Task.sleep(for: step)
            remaining -= step
        }
    }
}
