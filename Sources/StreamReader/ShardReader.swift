import AWS
import Contracts
import Foundation
import Logging
import Synchronization

/// Reads one shard in order, from its checkpoint (or the start position) to its end or until it must stop:
/// GetRecords paced at one call per poll interval unless the last page showed a backlog (then the next page
/// is fetched while this one is routed), each page handed to `process` until it succeeds (a page is never
/// skipped), and its checkpoint written by the shard's ``CheckpointPipeline``. Errors of the shard stay here:
/// an expired iterator is renewed after the last processed record, trimmed data restarts at TRIM_HORIZON,
/// throttling and server errors back off. Its waits end at once when the shard must stop.
struct ShardReader {
    /// The supervisor: configuration, source, shared state and status.
    let reader: ShardedStreamReader
    let shard: Shard
    /// The lease epoch (leases), else the loaded checkpoint's; every checkpoint written carries it.
    let epoch: Int64?
    let process: @Sendable (ShardRecords) async throws -> Void
    let logger: Logger
    var checkpoints: CheckpointPipeline
    /// The last record processed (and checkpointed, or being checkpointed).
    var lastSequence: String?

    /// A GetRecords call made ahead: for which iterator; when it started, and its page.
    struct Prefetch {
        var iterator: String
        var task: Task<(started: ContinuousClock.Instant, startedAt: Date, page: SourcePage), any Error>
    }

    init(
        reader: ShardedStreamReader, shard: Shard, checkpoint: Checkpoint?, epoch: Int64?,
        process: @escaping @Sendable (ShardRecords) async throws -> Void
    ) {
        self.reader = reader
        self.shard = shard
        self.epoch = epoch
        self.process = process
        var logger = reader.logger
        logger[metadataKey: LogKey.shard] = "\(shard.shardID)"
        self.logger = logger
        self.checkpoints = CheckpointPipeline(reader: reader, shardID: shard.shardID, logger: logger)
        self.lastSequence = checkpoint?.sequenceNumber
    }

    private var id: String { shard.shardID }
    private var configuration: StreamReaderConfiguration { reader.configuration }
    private var mustStop: Bool { reader.mustStop(id, epoch: epoch) }

    /// Where the shard starts without a checkpoint.
    private var initialPosition: ShardPosition {
        switch configuration.startPosition {
        case .trimHorizon: .trimHorizon
        case .latest: .latest
        case .atTimestamp: configuration.startTimestamp.map(ShardPosition.atTimestamp) ?? .trimHorizon
        }
    }

    mutating func run() async throws {
        let initialPosition = self.initialPosition
        reader.update(id) { [lastSequence] track in
            track.status.lastSequenceNumber = lastSequence
            track.status.state = .reading
            track.lastProgress = .now
            track.isBehind = true
        }
        // A newly behind shard moves the stall watchdog's next deadline.
        reader.supervisor.wake()
        logger.info("shard opened", metadata: [
            LogKey.start: "\(lastSequence.map { "after \($0)" } ?? "\(initialPosition)")", LogKey.epoch: "\(epoch.map(String.init) ?? "none")",
        ])
        defer {
            if reader.ownership != nil {
                reader.state.withLock { [id] state in
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
        defer {
            prefetched?.task.cancel()
            checkpoints.cancel()
        }
        while !mustStop {
            do {
                if needsIterator {
                    // After the last processed record, else where the shard was first opened.
                    let position: ShardPosition =
                        if restartAtTrimHorizon { .trimHorizon } else if let lastSequence { .afterSequenceNumber(lastSequence) } else { initialPosition }
                    iterator = try await reader.source.shardIterator(shardID: id, position: position)
                    needsIterator = false
                    restartAtTrimHorizon = false
                }
                guard let current = iterator else { break }
                // At most one GetRecords per poll interval (AWS's per-shard limit), unless the last page showed a backlog.
                if let lastCall {
                    try await reader.pause(until: lastCall + configuration.pollInterval, shardID: id)
                    if mustStop { break }
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
                    page = try await reader.source.records(iterator: current, limit: configuration.effectivePageLimit)
                }
                failures = 0
                reader.awsCallSucceeded(logger: logger)
                let isBacklog = page.records.count >= configuration.effectivePageLimit || (page.millisBehindLatest ?? 0) > 0
                    || page.records.last?.approximateCreationDateTime.map { startedAt.timeIntervalSince($0) > StreamReaderConfiguration.backlogAge } == true
                lastCall = isBacklog ? nil : started
                if let behind = page.millisBehindLatest { reader.update(id) { $0.status.millisBehindLatest = behind } }
                if !page.records.isEmpty {
                    markBehind()
                    reader.update(id) { track in
                        track.status.pendingSince = page.records.first!.approximateCreationDateTime ?? startedAt
                        track.status.isCaughtUp = false
                    }
                    if isBacklog, let next = page.nextIterator {
                        // Read on at once: the next page is fetched (and decoded) while this one is routed.
                        prefetched = Prefetch(iterator: next, task: Task { [source = reader.source, limit = configuration.effectivePageLimit] in
                            let (started, startedAt) = (ContinuousClock.now, Date())
                            return (started, startedAt, try await source.records(iterator: next, limit: limit))
                        })
                    }
                    let batch = ShardRecords(streamARN: configuration.streamARN, shardID: id, records: page.records, epoch: epoch)
                    guard try await deliver(batch) else {
                        _ = try await checkpoints.drain()
                        return
                    }
                    lastSequence = page.records.last!.sequenceNumber
                    reader.update(id) { [lastSequence] track in
                        track.status.lastSequenceNumber = lastSequence
                        track.status.recordsRead += page.records.count
                        track.status.pendingSince = nil
                        if let created = page.records.last!.approximateCreationDateTime { track.status.newestRecordCreatedAt = created }
                    }
                    reader.progressed(id, caughtUp: false, logger: logger)
                } else {
                    // Kinesis may answer empty pages while records wait further on (MillisBehindLatest > 0).
                    let caughtUp = (page.millisBehindLatest ?? 0) == 0
                    if caughtUp {
                        reader.update(id) { track in
                            track.status.isCaughtUp = true
                            track.status.caughtUpAt = startedAt
                        }
                    }
                    reader.progressed(id, caughtUp: caughtUp, logger: logger)
                }
                iterator = page.nextIterator
                if iterator == nil || (page.records.isEmpty && hasReachedEnd()) {
                    reachedEnd = true
                    break
                }
            } catch let error as AWSError where error.type == AWSError.expiredIterator {
                // Iterators live 15 minutes; a long `process` or backoff outlives one. Nothing is lost.
                logger.info("shard iterator expired; renewing it", metadata: [LogKey.after: "\(lastSequence ?? configuration.startPosition.rawValue)"])
                reader.recordError(id, error)
                needsIterator = true
            } catch let error as AWSError where error.type == AWSError.trimmedDataAccess {
                logger.error(
                    "records of the shard were trimmed (older than 24 hours) before they were read: they are lost; restarting at TRIM_HORIZON",
                    metadata: [LogKey.after: "\(lastSequence ?? "the shard's start")", LogKey.error: "\(error)"]
                )
                reader.update(id) { track in
                    track.status.trimmedGaps += 1
                    track.status.lastError = "\(error)"
                    track.status.lastErrorTime = Date()
                }
                needsIterator = true
                restartAtTrimHorizon = true
            } catch let error as AWSError where ShardedStreamReader.isTransient(error) {
                failures += 1
                let pause = reader.backoff(after: failures)
                logger.warning(
                    error.isThrottling ? "shard throttled; backing off" : "reading the shard failed; backing off",
                    metadata: [LogKey.error: "\(error)", LogKey.retryIn: "\(pause)", LogKey.failures: "\(failures)"]
                )
                reader.recordError(id, error)
                // Records may be waiting that cannot be read: not caught up (the lag grows from the last known point).
                reader.update(id) { $0.status.isCaughtUp = false }
                if !error.isThrottling { reader.awsCallFailed(error, logger: logger) }
                try await reader.pause(pause, shardID: id)
            }
        }
        let saved = try await checkpoints.drain()
        guard reachedEnd, saved else { return }
        guard try await checkpoints.save(Checkpoint(sequenceNumber: lastSequence, isFinished: true, epoch: epoch)) else { return }
        logger.info("shard finished")
        let waiters = reader.state.withLock { [id] state in
            state.finished.insert(id)
            state.shards[id]?.status.state = .finished
            state.shards[id]?.status.isStalled = false
            state.shards[id]?.isBehind = false
            return state.shardEnded(id)
        }
        for waiter in waiters { waiter.resume() }
        // Its children may be ready now.
        reader.requestDiscovery()
        if let ownership = reader.ownership, let epoch { await ownership.shardFinished(id, epoch: epoch) }
    }

    /// Delivers a page, retrying with backoff until it succeeds (a page is never skipped), then hands its
    /// checkpoint to the pipeline. Returns false when a stop was requested first (or the lease was lost), or
    /// the previous checkpoint could not be saved for that reason.
    private mutating func deliver(_ batch: ShardRecords) async throws -> Bool {
        var failures = 0
        while true {
            // A lost lease: the new owner reads this page again from its checkpoint.
            if reader.isFenced(id, epoch: epoch) { return false }
            do {
                try await process(batch)
                break
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as ShardFencedError {
                reader.shardFenced(id, epoch: epoch, error, logger: logger)
                return false
            } catch let error as UnrecoverableProcessingError {
                // Retrying cannot help (a fenced transactional producer, say): stop the reader.
                throw error
            } catch {
                if mustStop {
                    // Stopping (a shutdown that could not wait for Kafka any longer): the page stays unacknowledged.
                    logger.warning("the page was left unacknowledged at the shutdown: not checkpointed, it is read again at the next start", metadata: [
                        LogKey.error: "\(error)", LogKey.records: "\(batch.records.count)",
                    ])
                    return false
                }
                failures += 1
                logger.error("routing a page failed; retrying it (the checkpoint stays put)", metadata: [LogKey.error: "\(error)", LogKey.records: "\(batch.records.count)"])
                reader.recordError(id, error)
                // Records are waiting (this page): a shard that cannot deliver is behind, and the watchdog flags it
                // stalled after the stall timeout, naming this error.
                markBehind()
                try await reader.pause(reader.backoff(after: failures), shardID: id)
                if mustStop { return false }
            }
        }
        return try await checkpoints.enqueue(Checkpoint(sequenceNumber: batch.records.last?.sequenceNumber, epoch: epoch))
    }

    /// Records are waiting: the shard is behind (the stall watchdog watches it from its last progress).
    private func markBehind() {
        let became = reader.state.withLock { [id] state in
            guard state.shards[id]?.isBehind == false else { return false }
            state.shards[id]?.isBehind = true
            return true
        }
        if became { reader.supervisor.wake() }
    }

    /// Whether a shard that just answered an empty page is closed and read to its end: its
    /// position is at or past its `EndingSequenceNumber`. The services say so by returning no next
    /// iterator; moto's Kinesis never does, so its closed shards end here.
    private func hasReachedEnd() -> Bool {
        guard let track = reader.state.withLock({ [id] in $0.shards[id] }), let ending = track.endingSequenceNumber else { return false }
        // Without a processed record, only a shard that ends where it starts (holding at most that one record) has ended.
        guard let position = lastSequence ?? track.startingSequenceNumber else { return false }
        return ShardedStreamReader.compareSequenceNumbers(position, ending) != .orderedAscending
    }
}
