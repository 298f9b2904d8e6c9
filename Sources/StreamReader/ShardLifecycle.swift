/// Told when a leased shard's reader starts and stops (leases only): in exactly-once mode the router opens
/// the shard's own transactional producer here, which fences the shard's previous owner, and closes it when
/// the shard stops (lease lost, handed over, released, or the shard finished).
public protocol ShardLifecycle: Sendable {
    /// Called when this worker starts a held shard, before the shard's checkpoint is read again: whatever
    /// the previous owner left uncommitted must be settled by the time it returns. A throw is retried
    /// with backoff while the lease is held.
    func shardStarting(_ shardID: String, epoch: Int64) async throws
    /// Called once the shard's reader has ended (after a successful `shardStarting`).
    func shardStopped(_ shardID: String, epoch: Int64) async
}

/// Thrown by a page's `process` (or a checkpoint's `save`) when the shard's writer was fenced by a newer
/// owner of the shard: the reader stops that shard only, without checkpointing, and tells the
/// ``ShardOwnership`` that the lease is lost. Other shards go on.
public struct ShardFencedError: Error, Sendable, CustomStringConvertible {
    public var shardID: String
    public var reason: String

    public init(shardID: String, reason: String) {
        self.shardID = shardID
        self.reason = reason
    }

    public var description: String { "shard \(shardID) fenced: \(reason)" }
}
