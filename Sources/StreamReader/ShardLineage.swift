import AWS

/// Decides which shards may be read now: a shard is ready when it is not
/// finished and each of its parents (one, or two after a Kinesis merge) is
/// finished or no longer listed (trimmed away). Reading a child before its
/// parents end would break per-item order.
public struct ShardLineage: Sendable {
    public var shards: [Shard]

    public init(shards: [Shard]) {
        self.shards = shards
    }

    /// Shards that may start now, in listing order (parents before children).
    public func readyShards(finished: Set<String>, running: Set<String>) -> [Shard] {
        let listed = Set(shards.map(\.shardID))
        return shards.filter { shard in
            guard !finished.contains(shard.shardID), !running.contains(shard.shardID) else { return false }
            return shard.parentShardIDs.allSatisfy { parent in finished.contains(parent) || !listed.contains(parent) }
        }
    }
}
