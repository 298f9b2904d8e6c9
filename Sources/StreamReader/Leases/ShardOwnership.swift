/// Which shards this worker may read: the ``ShardedStreamReader`` consults it when it starts a shard
/// and before every page and checkpoint.
public protocol ShardOwnership: Sendable {
    /// The epoch of this worker's lease on the shard; nil when it does not hold it (or fenced itself).
    func epoch(of shardID: String) -> Int64?
    /// Every shard held now, with its epoch.
    var heldShards: [String: Int64] { get }
    /// The shard was read to its end and its last checkpoint saved: mark its lease finished.
    func shardFinished(_ shardID: String, epoch: Int64) async
    /// The shard's writer was fenced by a newer owner (exactly-once mode): the lease counts as lost and
    /// the shard is not started again unless the table gives it back.
    func shardFenced(_ shardID: String, epoch: Int64)
}

extension ShardOwnership {
    public func shardFenced(_ shardID: String, epoch: Int64) {}
}
