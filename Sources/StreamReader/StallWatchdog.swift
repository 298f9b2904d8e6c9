import Contracts
import Logging
import Synchronization

/// The stall watchdog, run by the supervisor: a shard that is behind (records are waiting) and made no
/// progress for the stall timeout is flagged stalled in the status and logged once, naming its last error.
/// The supervisor sleeps until the earliest moment a shard could stall, and is woken when a shard newly
/// falls behind.
extension ShardedStreamReader {
    /// Marks progress; logs when a stalled shard moves again.
    func progressed(_ shardID: String, caughtUp: Bool, logger: Logger) {
        var wasStalled = false
        var becameBehind = false
        update(shardID) { track in
            track.lastProgress = .now
            becameBehind = !track.isBehind && !caughtUp
            track.isBehind = !caughtUp
            wasStalled = track.status.isStalled
            track.status.isStalled = false
        }
        if becameBehind { supervisor.wake() }
        if wasStalled { logger.info("shard is making progress again") }
    }

    /// Flags shards that are behind and made no progress for the stall timeout, logging each once; returns
    /// when the next shard could stall (a stall timeout from now when none is behind).
    func watchForStalls() -> ContinuousClock.Instant {
        let now = ContinuousClock.now
        let timeout = configuration.stallTimeout
        let (stalled, next): ([(String, Duration)], ContinuousClock.Instant) = state.withLock { state in
            var found: [(String, Duration)] = []
            var next = now + timeout
            for (id, track) in state.shards where track.status.state == .reading && track.isBehind && !track.status.isStalled {
                if now - track.lastProgress >= timeout {
                    state.shards[id]!.status.isStalled = true
                    found.append((id, now - track.lastProgress))
                } else {
                    next = min(next, track.lastProgress + timeout)
                }
            }
            return (found, next)
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
        return next
    }
}
