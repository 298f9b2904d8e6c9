import AWS
import Contracts
import Foundation
import Logging
import Metrics
import Synchronization

public struct LeaseCoordinatorConfiguration: Sendable {
    /// This worker's id in the lease table (unique per process).
    public var workerID: String
    /// A lease whose counter has not moved for this long (by the observer's clock) has expired (10 s).
    public var leaseDuration: Duration
    /// Most leases taken or requested per round, so that workers starting together share.
    public var maximumTakesPerRound: Int
    /// How often the shard list is read to create the leases of new shards (30 s; at once after a shard finished).
    public var discoveryInterval: Duration

    public init(workerID: String, leaseDuration: Duration = .seconds(10), maximumTakesPerRound: Int = 10, discoveryInterval: Duration = .seconds(30)) {
        self.workerID = workerID
        self.leaseDuration = leaseDuration
        self.maximumTakesPerRound = maximumTakesPerRound
        self.discoveryInterval = discoveryInterval
    }

    /// Leases and the heartbeat are renewed every lease duration / 3.
    public var renewalInterval: Duration { leaseDuration / 3 }
    /// A lease not renewed for 2/3 of the lease duration is given up at once, before any other worker may
    /// consider it expired.
    public var selfFenceAfter: Duration { leaseDuration * 2 / 3 }

    /// `<host>-<pid>-<random>`.
    public static func makeWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        return "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// One lease this worker holds, for the status.
public struct HeldLease: Sendable, Hashable, Encodable {
    public var shardID: String
    public var epoch: Int64
}

/// Runs the leases of one worker: renews them and its heartbeat every renewal interval, reads the
/// table, computes expiry by its own clock, runs ``LeaseBalancer/plan(me:workers:ready:expired:maximumTakesPerRound:)``
/// and applies the actions. A lease it could not renew for 2/3 of the lease duration is dropped at
/// once (self-fencing). Leases are renewed all at once. A handover or release first stops the shard's
/// reader (which finishes and checkpoints its page), then writes; it runs beside the rounds, so that
/// waiting for a shard's page never makes the other leases late.
public final class LeaseCoordinator: ShardOwnership, Sendable {
    public let table: LeaseTable
    public let configuration: LeaseCoordinatorConfiguration
    private let source: any StreamSource
    private let logger: Logger
    private let state = Mutex(State())
    /// Wakes the wait between rounds when `requestStop()` is called.
    private let stopSignal = StopSignal()
    /// Wakes the fence watchdog when a lease is taken (its deadline may come before the one it sleeps to).
    private let leaseTaken = StopSignal()
    private let heldGauge = Gauge(label: "fanout_leases_held")
    private let takenCounter = Counter(label: "fanout_leases_taken_total")
    private let lostCounter = Counter(label: "fanout_leases_lost_total")

    struct Held {
        var epoch: Int64
        /// When the last successful renewal (or the take) was sent.
        var renewedAt: ContinuousClock.Instant
        /// Being handed over or released: the reader must not start it again, but may still checkpoint it.
        var isLeaving = false
    }

    struct State {
        var held: [String: Held] = [:]
        /// Every lease's (owner, counter) and when this worker first saw it.
        var observedLeases: [String: (owner: String?, counter: Int64, since: ContinuousClock.Instant)] = [:]
        var observedWorkers: [String: (counter: Int64, since: ContinuousClock.Instant)] = [:]
        var listed: [Shard] = []
        var nextListing = ContinuousClock.now
        var stopRequested = false
        /// Handovers and releases under way (the shard stopping, then the table write), by shard id.
        var leaving: [String: Task<Void, Never>] = [:]
    }

    public init(table: LeaseTable, source: any StreamSource, configuration: LeaseCoordinatorConfiguration, logger: Logger) {
        self.table = table
        self.source = source
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: LogKey.worker] = "\(configuration.workerID)"
        self.logger = logger
    }

    public var workerID: String { configuration.workerID }

    public func epoch(of shardID: String) -> Int64? { state.withLock { $0.held[shardID]?.epoch } }

    public var heldShards: [String: Int64] { state.withLock { $0.held.filter { !$0.value.isLeaving }.mapValues(\.epoch) } }

    /// The leases held now, by shard id.
    public var heldLeases: [HeldLease] {
        heldShards.map { HeldLease(shardID: $0.key, epoch: $0.value) }.sorted { $0.shardID < $1.shardID }
    }

    public func shardFinished(_ shardID: String, epoch: Int64) async {
        do {
            if try await table.finish(shardID: shardID, me: workerID, epoch: epoch) == .lost {
                logger.warning("could not mark a finished shard's lease: it was lost first", metadata: [LogKey.shard: "\(shardID)"])
            }
        } catch {
            // The next owner finds the finished checkpoint and marks it.
            logger.error("marking a finished shard's lease failed", metadata: [LogKey.shard: "\(shardID)", LogKey.error: "\(error)"])
        }
        state.withLock { state in
            if state.held[shardID]?.epoch == epoch { state.held[shardID] = nil }
            state.nextListing = .now
        }
        updateGauge()
    }

    public func shardFenced(_ shardID: String, epoch: Int64) {
        let dropped = state.withLock { state in
            guard state.held[shardID]?.epoch == epoch else { return false }
            state.held[shardID] = nil
            return true
        }
        guard dropped else { return }
        lostCounter.increment()
        logger.warning("the shard's transactional producer was fenced by a newer owner: lease given up", metadata: [
            LogKey.shard: "\(shardID)", LogKey.epoch: "\(epoch)",
        ])
        updateGauge()
    }

    /// Ends `run` after its current round: it then releases every lease and removes its heartbeat.
    /// Call it once the reader has stopped (every shard checkpointed).
    public func requestStop() {
        state.withLock { $0.stopRequested = true }
        stopSignal.trigger()
    }

    private var isStopping: Bool { state.withLock { $0.stopRequested } }

    /// Runs rounds until `requestStop()`, then releases every lease held (after `reader` stopped them).
    public func run(reader: ShardedStreamReader) async {
        logger.info("lease coordinator started", metadata: [
            LogKey.leasesTable: "\(table.tableName)", LogKey.leasesDuration: "\(configuration.leaseDuration)",
        ])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.fenceWatchdog(reader: reader) }
            while !isStopping {
                let started = ContinuousClock.now
                do {
                    try await round(reader: reader)
                } catch {
                    logger.warning("lease round failed; trying again next round", metadata: [LogKey.error: "\(error)"])
                }
                // Until the next round, or at once when asked to stop.
                await stopSignal.wait(until: started + configuration.renewalInterval)
            }
            group.cancelAll()
        }
        await releaseAll(reader: reader)
    }

    /// Drops, at once, every lease not renewed for 2/3 of the lease duration. It sleeps until the earliest
    /// held lease's limit, or until a lease is taken, then looks again.
    private func fenceWatchdog(reader: ShardedStreamReader) async {
        while !Task.isCancelled {
            let limit = configuration.selfFenceAfter
            let now = ContinuousClock.now
            let (fenced, next): ([String], ContinuousClock.Instant) = state.withLock { state in
                let stale = state.held.filter { now - $0.value.renewedAt >= limit }.map(\.key)
                for id in stale { state.held[id] = nil }
                let next = state.held.values.map { $0.renewedAt + limit }.min() ?? now + limit
                return (stale, next)
            }
            for id in fenced {
                lostCounter.increment()
                logger.warning("lease not renewed in time: stopped reading the shard (self-fencing)", metadata: [LogKey.shard: "\(id)"])
                await reader.stopShard(id)
            }
            if !fenced.isEmpty { updateGauge() }
            await leaseTaken.wait(until: next)
        }
    }

    private func updateGauge() {
        heldGauge.record(state.withLock { $0.held.count })
    }

    /// One round: list shards when due, heartbeat, renew, read the table, plan and apply.
    func round(reader: ShardedStreamReader) async throws {
        let me = workerID
        if state.withLock({ ContinuousClock.now >= $0.nextListing }) {
            let shards = try await source.listShards().shards
            let existing = Set(try await table.leases().map(\.shardID))
            // Parents in a cycle with the shard (a wrong listing; the reader reports it) are not waited for.
            let lineage = ShardLineage(shards: shards)
            for shard in shards where !existing.contains(shard.shardID) {
                try await table.create(shardID: shard.shardID, parents: lineage.readableParents(of: shard))
            }
            state.withLock { state in
                state.listed = shards
                state.nextListing = .now + configuration.discoveryInterval
            }
        }
        try await table.heartbeat(me: me)
        // All at once: one slow renewal must not make the others late (and self-fence their shards).
        await withTaskGroup(of: Void.self) { group in
            for (id, held) in state.withLock({ $0.held }) {
                group.addTask { await self.renew(id, held, reader: reader) }
            }
        }
        // Leases before workers: an owner's heartbeat is written before its first take.
        let leases = try await table.leases()
        let workerCounters = try await table.workers()
        let now = ContinuousClock.now
        let duration = configuration.leaseDuration
        let observed: (live: Set<String>, expired: Set<String>, listed: Set<String>) = state.withLock { state in
            var expired: Set<String> = []
            for lease in leases {
                let seen = state.observedLeases[lease.shardID]
                if seen == nil || seen!.owner != lease.owner || seen!.counter != lease.counter {
                    state.observedLeases[lease.shardID] = (lease.owner, lease.counter, now)
                } else if lease.owner != nil, now - seen!.since >= duration {
                    expired.insert(lease.shardID)
                }
            }
            var live: Set<String> = [me]
            for (worker, counter) in workerCounters {
                let seen = state.observedWorkers[worker]
                if seen == nil || seen!.counter != counter {
                    state.observedWorkers[worker] = (counter, now)
                    live.insert(worker)
                } else if now - seen!.since < duration {
                    live.insert(worker)
                }
            }
            return (live, expired, Set(state.listed.map(\.shardID)))
        }
        // Ready: not finished, parents finished; a listed parent without a lease yet is not finished.
        let (live, expired, listed) = observed
        let known = Set(leases.map(\.shardID))
        let ready = LeaseBalancer.ready(leases).filter { lease in
            lease.parents.allSatisfy { known.contains($0) || !listed.contains($0) }
        }
        // Leases the table says are mine but I do not hold (handed to me, or after self-fencing): renew to adopt.
        // Leases being handed over or released count as held until their write is done.
        let heldIDs = state.withLock { Set($0.held.keys).union($0.leaving.keys) }
        for lease in ready where lease.owner == me && !heldIDs.contains(lease.shardID) {
            let sent = ContinuousClock.now
            if try await table.renew(shardID: lease.shardID, me: me, epoch: lease.epoch) == .done {
                state.withLock { $0.held[lease.shardID] = Held(epoch: lease.epoch, renewedAt: sent) }
                takenCounter.increment()
                logger.info("lease taken", metadata: [LogKey.shard: "\(lease.shardID)", LogKey.epoch: "\(lease.epoch)"])
                leaseTaken.wake()
                reader.heldShardsChanged()
            }
        }
        let actions = LeaseBalancer.plan(
            me: me, workers: live, ready: ready, expired: expired, maximumTakesPerRound: configuration.maximumTakesPerRound
        )
        for action in actions where !isStopping {
            try await apply(action, reader: reader)
        }
        updateGauge()
    }

    /// Renews one held lease; a lease found lost stops its shard.
    private func renew(_ id: String, _ held: Held, reader: ShardedStreamReader) async {
        let sent = ContinuousClock.now
        let outcome = try? await table.renew(shardID: id, me: workerID, epoch: held.epoch)
        switch outcome {
        case .done?:
            state.withLock { state in
                if state.held[id]?.epoch == held.epoch { state.held[id]?.renewedAt = sent }
            }
        case .lost?:
            let dropped = state.withLock { state in
                guard state.held[id]?.epoch == held.epoch else { return false }
                state.held[id] = nil
                return true
            }
            if dropped {
                lostCounter.increment()
                logger.warning("lease lost to another worker: stopped reading the shard", metadata: [LogKey.shard: "\(id)"])
                await reader.stopShard(id)
            }
        case nil:
            break  // The watchdog fences the shard if this goes on for 2/3 of the lease duration.
        }
    }

    private func apply(_ action: LeaseAction, reader: ShardedStreamReader) async throws {
        let me = workerID
        switch action {
        case .take(let id, let expectedOwner, let expectedCounter):
            let sent = ContinuousClock.now
            guard let epoch = try await table.take(shardID: id, me: me, expectedOwner: expectedOwner, expectedCounter: expectedCounter) else { return }
            state.withLock { $0.held[id] = Held(epoch: epoch, renewedAt: sent) }
            leaseTaken.wake()
            reader.heldShardsChanged()
            takenCounter.increment()
            logger.info("lease taken", metadata: [
                LogKey.shard: "\(id)", LogKey.epoch: "\(epoch)", LogKey.previousOwner: "\(expectedOwner ?? "none")",
            ])
        case .requestHandover(let id, let owner):
            if try await table.requestHandover(shardID: id, me: me, owner: owner) == .done {
                logger.info("asked for a lease", metadata: [LogKey.shard: "\(id)", LogKey.owner: "\(owner)"])
            }
        case .handOver(let id, let worker):
            // Stop and checkpoint first; the lease stays mine until the write, so a failed write keeps it.
            guard let epoch = epoch(of: id) else { return }
            leave(id, reader: reader) { [self] in
                if try await table.handOver(shardID: id, me: me, to: worker) == .done {
                    logger.info("lease handed over", metadata: [LogKey.shard: "\(id)", LogKey.to: "\(worker)"])
                } else {
                    lostCounter.increment()
                    logger.warning("handing a lease over failed: it was changed first", metadata: [LogKey.shard: "\(id)", LogKey.epoch: "\(epoch)"])
                }
            }
        case .refuseHandover(let id):
            _ = try await table.refuseHandover(shardID: id, me: me)
        case .release(let id):
            guard epoch(of: id) != nil else { return }
            leave(id, reader: reader) { [self] in
                _ = try await table.release(shardID: id, me: me)
                logger.info("lease released", metadata: [LogKey.shard: "\(id)"])
            }
        }
    }

    /// Hands a lease over or releases it without holding up the rounds: stopping the shard waits for
    /// the page it is processing, and the other leases must be renewed meanwhile. Does nothing while
    /// the shard is already leaving.
    private func leave(_ id: String, reader: ShardedStreamReader, write: @escaping @Sendable () async throws -> Void) {
        state.withLock { state in
            guard state.leaving[id] == nil, state.held[id] != nil else { return }
            state.held[id]?.isLeaving = true
            state.leaving[id] = Task { [self] in
                await stopLeaving(id, reader: reader)
                do {
                    try await write()
                } catch {
                    // The table still names this worker: a later round adopts the lease again.
                    logger.warning("handing over or releasing a lease failed", metadata: [LogKey.shard: "\(id)", LogKey.error: "\(error)"])
                }
                _ = self.state.withLock { $0.leaving.removeValue(forKey: id) }
            }
        }
    }

    /// Stops the shard's reader (its page checkpointed under the lease), then forgets the lease.
    private func stopLeaving(_ id: String, reader: ShardedStreamReader) async {
        state.withLock { $0.held[id]?.isLeaving = true }
        await reader.stopShard(id)
        state.withLock { $0.held[id] = nil }
    }

    /// A graceful stop: releases every lease held (the reader has checkpointed them) and removes this
    /// worker's heartbeat, so the other workers take the leases at their next round.
    private func releaseAll(reader: ShardedStreamReader) async {
        for task in state.withLock({ Array($0.leaving.values) }) { await task.value }
        let held = state.withLock { $0.held }
        for id in held.keys.sorted() {
            await stopLeaving(id, reader: reader)
            do {
                _ = try await table.release(shardID: id, me: workerID)
            } catch {
                logger.error("releasing a lease failed; it expires after the lease duration", metadata: [LogKey.shard: "\(id)", LogKey.error: "\(error)"])
            }
        }
        do {
            try await table.removeWorker(me: workerID)
        } catch {
            logger.error("removing the worker's heartbeat failed", metadata: [LogKey.error: "\(error)"])
        }
        updateGauge()
        logger.info("leases released", metadata: [LogKey.leases: "\(held.count)"])
    }
}
