import AWS
import StreamReader
import Testing

@Suite struct ShardLineageTests {
    let shards = [
        Shard(shardID: "root", startingSequenceNumber: "1", endingSequenceNumber: "10"),
        Shard(shardID: "child-a", parentShardID: "root", startingSequenceNumber: "11", endingSequenceNumber: "20"),
        Shard(shardID: "grandchild", parentShardID: "child-a", startingSequenceNumber: "21"),
        Shard(shardID: "orphan", parentShardID: "trimmed-away", startingSequenceNumber: "5"),
        Shard(shardID: "independent", startingSequenceNumber: "7"),
    ]

    @Test func childrenWaitForTheirParentToFinish() {
        let lineage = ShardLineage(shards: shards)
        #expect(lineage.readyShards(finished: [], running: []).map(\.shardID) == ["root", "orphan", "independent"])
        #expect(lineage.readyShards(finished: ["root"], running: ["orphan", "independent"]).map(\.shardID) == ["child-a"])
        #expect(lineage.readyShards(finished: ["root", "child-a"], running: ["orphan", "independent"]).map(\.shardID) == ["grandchild"])
    }

    @Test func aMergedShardWaitsForBothOfItsParents() {
        let a = Shard(shardID: "a", startingSequenceNumber: "1", endingSequenceNumber: "5")
        let b = Shard(shardID: "b", startingSequenceNumber: "2", endingSequenceNumber: "9")
        let merged = Shard(shardID: "m", parentShardID: "a", adjacentParentShardID: "b", startingSequenceNumber: "10")
        let lineage = ShardLineage(shards: [merged, a, b])
        #expect(lineage.readyShards(finished: [], running: []).map(\.shardID) == ["a", "b"])
        #expect(lineage.readyShards(finished: ["a"], running: ["b"]).isEmpty)
        #expect(lineage.readyShards(finished: ["b"], running: ["a"]).isEmpty)
        #expect(lineage.readyShards(finished: ["a", "b"], running: []).map(\.shardID) == ["m"])
        // An adjacent parent no longer listed (trimmed away) does not hold the child back.
        #expect(ShardLineage(shards: [a, merged]).readyShards(finished: ["a"], running: []).map(\.shardID) == ["m"])
    }

    @Test func finishedAndRunningShardsAreNotStartedAgain() {
        let lineage = ShardLineage(shards: shards)
        #expect(lineage.readyShards(finished: ["root", "child-a", "grandchild", "orphan"], running: ["independent"]).isEmpty)
    }
}
