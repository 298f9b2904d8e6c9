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

    @Test func finishedAndRunningShardsAreNotStartedAgain() {
        let lineage = ShardLineage(shards: shards)
        #expect(lineage.readyShards(finished: ["root", "child-a", "grandchild", "orphan"], running: ["independent"]).isEmpty)
    }
}
