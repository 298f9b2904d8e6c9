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

    /// Reads the lineage round by round, every ready shard to its end, and returns the rounds.
    static func rounds(_ lineage: ShardLineage) -> [[String]] {
        var finished: Set<String> = []
        var rounds: [[String]] = []
        while true {
            let ready = lineage.readyShards(finished: finished, running: []).map(\.shardID)
            if ready.isEmpty { return rounds }
            rounds.append(ready)
            finished.formUnion(ready)
        }
    }

    @Test func shardsWhoseParentsFormACycleAreFoundAndStartedAndTheirChildrenWait() {
        // A hostile listing: a and b name each other as parent, s names itself, c is a's child.
        let lineage = ShardLineage(shards: [
            Shard(shardID: "a", parentShardID: "b", startingSequenceNumber: "1", endingSequenceNumber: "5"),
            Shard(shardID: "c", parentShardID: "a", startingSequenceNumber: "6"),
            Shard(shardID: "b", parentShardID: "a", startingSequenceNumber: "2", endingSequenceNumber: "4"),
            Shard(shardID: "s", parentShardID: "s", startingSequenceNumber: "3"),
            Shard(shardID: "root", startingSequenceNumber: "1"),
        ])
        #expect(lineage.parentCycles == [["a", "b"], ["s"]])
        #expect(lineage.readableParents(of: lineage.shards[0]).isEmpty)
        #expect(lineage.readableParents(of: lineage.shards[1]) == ["a"])
        #expect(Self.rounds(lineage) == [["a", "b", "s", "root"], ["c"]])
        #expect(ShardLineage.describe(["a", "b"], in: lineage.shards) == "a → b → a")
        #expect(ShardLineage.describe(["s"], in: lineage.shards) == "s → s")
    }

    @Test func aCycleMemberStillWaitsForAParentOutsideTheCycle() {
        // A merge whose adjacent parent p is a real, unfinished parent; x and y form a cycle.
        let lineage = ShardLineage(shards: [
            Shard(shardID: "p", startingSequenceNumber: "1", endingSequenceNumber: "2"),
            Shard(shardID: "x", parentShardID: "y", adjacentParentShardID: "p", startingSequenceNumber: "3"),
            Shard(shardID: "y", parentShardID: "x", startingSequenceNumber: "4"),
        ])
        #expect(lineage.parentCycles == [["x", "y"]])
        #expect(Self.rounds(lineage) == [["p", "y"], ["x"]])
    }

    @Test func aLongCycleAndALongChainNeitherHangNorExhaustTheStack() {
        let count = 100_000
        var ring = (0..<count).map { Shard(shardID: "r\($0)", parentShardID: "r\(($0 + 1) % count)") }
        ring += (0..<count).map { Shard(shardID: "c\($0)", parentShardID: $0 == 0 ? nil : "c\($0 - 1)", endingSequenceNumber: "9") }
        let lineage = ShardLineage(shards: ring)
        #expect(lineage.parentCycles.count == 1)
        #expect(lineage.parentCycles.first?.count == count)
        #expect(lineage.readyShards(finished: [], running: []).count == count + 1)
    }

    @Test func aShardListedTwiceIsStartedOnce() {
        let lineage = ShardLineage(shards: [
            Shard(shardID: "a", startingSequenceNumber: "1"),
            Shard(shardID: "a", parentShardID: "a", startingSequenceNumber: "1"),
        ])
        #expect(lineage.readyShards(finished: [], running: []).map(\.shardID) == ["a"])
        #expect(lineage.parentCycles.isEmpty, "the first listing of a shard counts")
    }

    @Test func aCycleIsDescribedOnOneLineWhateverItsShardIDsHold() {
        let shards = [Shard(shardID: "a\nb", parentShardID: "a\nb"), Shard(shardID: "x\u{2028}", parentShardID: "a\nb")]
        let lineage = ShardLineage(shards: shards)
        #expect(lineage.parentCycles == [["a\nb"]])
        #expect(ShardLineage.describe(lineage.parentCycles[0], in: shards) == "a\\u{A}b → a\\u{A}b")
    }
}
