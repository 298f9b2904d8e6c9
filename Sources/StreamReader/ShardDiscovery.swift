import AWS
import Contracts
import Foundation
import Logging
import Synchronization

/// Discovery and lineage: the supervisor's listing of the stream's shards (parents before children, cycles
/// reported once), and with leases the start of every held shard (its lifecycle told, its checkpoint read
/// again).
extension ShardedStreamReader {
    /// Lists every shard (paging the source's listing to the end), records them in the status,
    /// and marks the ready ones as running.
    func discoverReadyShards() async throws -> [Shard] {
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
            for shard in ready { state.shardStarted(shard.shardID) }
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
    func startHeldShards(
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
                state.shardStarted(id)
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
    func startShard(_ shardID: String, epoch: Int64) async -> Bool {
        guard let lifecycle else { return true }
        return await retryingUntilStopped(shardID, epoch: epoch, "starting a leased shard") {
            try await lifecycle.shardStarting(shardID, epoch: epoch)
        } != nil
    }

    /// A held shard: its checkpoint read again (a finished one marks the lease), then read.
    func readHeldShard(
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
        await self.readShard(shard, from: checkpoint, epoch: epoch, process: process)
    }

    /// Reads the shard's checkpoint again, retrying until it is read; nil when the shard must stop first.
    func loadCheckpoint(_ shardID: String, epoch: Int64) async -> Checkpoint?? {
        await retryingUntilStopped(shardID, epoch: epoch, "loading the checkpoint of a leased shard") {
            try await checkpoints.load(streamARN: configuration.streamARN)[shardID]
        }
    }

    /// Runs `attempt` until it succeeds, logging, recording and backing off after each failure; nil when the
    /// shard must stop first.
    func retryingUntilStopped<T>(
        _ shardID: String, epoch: Int64, _ what: String, _ attempt: () async throws -> T
    ) async -> T? {
        var failures = 0
        while !mustStop(shardID, epoch: epoch), !Task.isCancelled {
            do {
                return try await attempt()
            } catch {
                failures += 1
                logger.error("\(what) failed; retrying", metadata: [LogKey.shard: "\(shardID)", LogKey.error: "\(error)"])
                recordError(shardID, error)
                try? await pause(backoff(after: failures), shardID: shardID)
            }
        }
        return nil
    }
}
