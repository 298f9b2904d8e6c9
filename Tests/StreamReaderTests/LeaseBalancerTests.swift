import StreamReader
import TestSupport
import Testing

@Suite struct LeaseBalancerTests {
    static func leases(_ owners: [String?]) -> [Lease] {
        owners.enumerated().map { Lease(shardID: "s\(100 + $0.offset)", owner: $0.element, counter: 1) }
    }

    @Test func aWorkerStartingAloneTakesAtMostTheRoundLimit() {
        let actions = LeaseBalancer.plan(me: "a", workers: ["a"], ready: Self.leases(Array(repeating: nil, count: 30)), expired: [], maximumTakesPerRound: 10)
        #expect(actions.count == 10)
        #expect(actions.allSatisfy { if case .take(_, nil, 1) = $0 { true } else { false } })
    }

    @Test func aBalancedTableStaysAsItIs() {
        let ready = Self.leases(["a", "a", "a", "a", "b", "b", "b", "c", "c", "c"])
        for me in ["a", "b", "c"] {
            #expect(LeaseBalancer.plan(me: me, workers: ["a", "b", "c"], ready: ready, expired: []).isEmpty)
        }
    }

    @Test func aWorkerAboveItsShareReleasesTheSurplusWhenOneJoins() {
        let ready = Self.leases(Array(repeating: "a", count: 5) + Array(repeating: "b", count: 5))
        let actions = LeaseBalancer.plan(me: "a", workers: ["a", "b", "c"], ready: ready, expired: [])
        #expect(actions == [.release(shardID: "s104")])
    }

    @Test func aWorkerBelowItsShareAsksTheBusiestOneWhenNothingIsFree() {
        let ready = Self.leases(["a", "a", "a", "a", "b", "b", "b", "b", "c", "c"])
        // 10 leases, 3 workers: shares 3 or 4. c has 2 (< 3): it asks a (the busiest, first by name on a tie).
        #expect(LeaseBalancer.plan(me: "c", workers: ["a", "b", "c"], ready: ready, expired: []) == [.requestHandover(shardID: "s100", owner: "a")])
        // It asks once at a time.
        var asked = ready
        asked[0].pendingOwner = "c"
        #expect(LeaseBalancer.plan(me: "c", workers: ["a", "b", "c"], ready: asked, expired: []).isEmpty)
        // a hands it over (it keeps 3 ≥ 3) ...
        #expect(LeaseBalancer.plan(me: "a", workers: ["a", "b", "c"], ready: asked, expired: []) == [.handOver(shardID: "s100", to: "c")])
        // ... but not if that put it below its share.
        var tight = Self.leases(["a", "a", "a", "b", "b", "b", "b", "c", "c", "c"])
        tight[0].pendingOwner = "c"
        #expect(LeaseBalancer.plan(me: "a", workers: ["a", "b", "c"], ready: tight, expired: []) == [.refuseHandover(shardID: "s100")])
    }

    @Test func expiredLeasesAndLeasesOfGoneWorkersAreTakenWithTheirConditions() {
        var ready = Self.leases(["a", "a", "b", "b"])
        ready[0].counter = 7
        let actions = LeaseBalancer.plan(me: "b", workers: ["b"], ready: ready, expired: ["s100", "s101"])
        #expect(actions == [.take(shardID: "s100", expectedOwner: "a", expectedCounter: 7), .take(shardID: "s101", expectedOwner: "a", expectedCounter: 1)])
    }

    @Test func childrenAreReadyOnlyWhenEveryParentIsFinished() {
        let leases = [
            Lease(shardID: "p1", isFinished: true), Lease(shardID: "p2"),
            Lease(shardID: "c1", parents: ["p1"]), Lease(shardID: "c2", parents: ["p1", "p2"]),
            Lease(shardID: "c3", parents: ["trimmed-away"]),
        ]
        #expect(LeaseBalancer.ready(leases).map(\.shardID) == ["p2", "c1", "c3"])
    }
}

/// The balancing rule run by many simulated workers against one simulated lease table with
/// conditional writes, in rounds (one round = one renewal interval, a third of the lease duration).
struct LeaseSimulation {
    var table: [String: Lease]
    var workers: [String: Bool] = [:]  // id → alive (crashed workers stay in the map, not alive)
    var lastChange: [String: (counter: Int64, round: Int)] = [:]  // what every observer saw; one shared view is enough here
    var heartbeat: [String: Int] = [:]  // worker → the last round its heartbeat item moved
    var round = 0
    var moves = 0
    var generator = SeededGenerator(seed: 42)
    let leaseRounds = 3

    init(shards: Int) {
        table = Dictionary(uniqueKeysWithValues: (0..<shards).map { ("shard-\(10_000 + $0)", Lease(shardID: "shard-\(10_000 + $0)")) })
    }

    var liveWorkers: [String] { workers.filter(\.value).map(\.key).sorted() }

    func balanced() -> Bool {
        let live = liveWorkers
        guard !live.isEmpty else { return false }
        var counts = Dictionary(uniqueKeysWithValues: live.map { ($0, 0) })
        for lease in table.values {
            guard let owner = lease.owner, counts[owner] != nil else { return false }
            counts[owner]! += 1
        }
        let floor = table.count / live.count
        return counts.values.allSatisfy { $0 == floor || $0 == floor + (table.count % live.count == 0 ? 0 : 1) }
    }

    mutating func step() {
        round += 1
        // Renewals: live owners bump their counters.
        for (id, lease) in table where lease.owner.map({ workers[$0] == true }) == true {
            table[id]!.counter = lease.counter + 1
        }
        for (id, lease) in table where lastChange[id]?.counter != lease.counter {
            lastChange[id] = (lease.counter, round)
        }
        for worker in liveWorkers { heartbeat[worker] = round }
        // What the workers can know: a crashed worker still looks alive until its heartbeat is a lease duration old.
        let live = Set(heartbeat.filter { round - $0.value < leaseRounds }.map(\.key))
        var order = liveWorkers
        order.shuffle(using: &generator)
        for me in order {
            let snapshot = Array(table.values)
            // Expired: the owner's counter has not moved for a lease duration (a take or a renewal moves it).
            let expired = Set(snapshot.filter { lease in
                guard lease.owner != nil, let seen = lastChange[lease.shardID] else { return false }
                return seen.counter == lease.counter && round - seen.round >= leaseRounds
            }.map(\.shardID))
            for action in LeaseBalancer.plan(me: me, workers: live, ready: snapshot, expired: expired) {
                apply(action, by: me)
            }
        }
    }

    mutating func apply(_ action: LeaseAction, by me: String) {
        switch action {
        case .take(let id, let owner, let counter):
            guard table[id]?.owner == owner, table[id]?.counter == counter else { return }
            table[id]!.owner = me
            table[id]!.epoch += 1
            table[id]!.counter += 1
            table[id]!.pendingOwner = nil
            moves += 1
        case .requestHandover(let id, let owner):
            guard table[id]?.owner == owner, table[id]?.pendingOwner == nil else { return }
            table[id]!.pendingOwner = me
        case .handOver(let id, let to):
            guard table[id]?.owner == me, table[id]?.pendingOwner == to else { return }
            table[id]!.owner = to
            table[id]!.epoch += 1
            table[id]!.pendingOwner = nil
            moves += 1
        case .refuseHandover(let id):
            guard table[id]?.owner == me else { return }
            table[id]!.pendingOwner = nil
        case .release(let id):
            guard table[id]?.owner == me else { return }
            table[id]!.owner = nil
            table[id]!.pendingOwner = nil
        }
    }

    /// Rounds until balanced (at most `limit`), and the lease moves it took.
    mutating func converge(limit: Int = 500) -> (rounds: Int, moves: Int)? {
        let (start, movesBefore) = (round, moves)
        while !balanced() {
            guard round - start < limit else { return nil }
            step()
        }
        return (round - start, moves - movesBefore)
    }

    mutating func gracefulLeave(_ id: String) {
        workers[id] = false
        heartbeat[id] = nil  // a graceful leave deletes the worker's heartbeat item
        for (shard, lease) in table where lease.owner == id { table[shard]!.owner = nil }
    }
}

@Suite struct LeaseSimulationTests {
    /// 1,000 shards, 50 workers joining, leaving gracefully, crashing and joining again: each phase
    /// converges to ±1 within a bounded number of rounds, moving few leases. docs/scaling.md quotes the output.
    @Test func thousandShardsFiftyWorkersConvergeInEveryPhase() {
        var simulation = LeaseSimulation(shards: 1000)
        var report: [String] = []
        func phase(_ name: String, _ change: (inout LeaseSimulation) -> Void) {
            change(&simulation)
            let result = simulation.converge()
            #expect(result != nil, "\(name): not balanced after 500 rounds")
            if let result {
                let counts = Dictionary(grouping: simulation.table.values.compactMap(\.owner), by: { $0 }).mapValues(\.count)
                report.append("\(name): \(simulation.liveWorkers.count) workers, balanced after \(result.rounds) rounds, \(result.moves) lease moves, leases per worker \(counts.values.min() ?? 0)-\(counts.values.max() ?? 0)")
            }
        }
        phase("50 workers start together") { s in for i in 0..<50 { s.workers["w\(i)"] = true } }
        phase("10 workers join") { s in for i in 50..<60 { s.workers["w\(i)"] = true } }
        phase("10 workers leave gracefully") { s in for i in 0..<10 { s.gracefulLeave("w\(i)") } }
        phase("10 workers crash") { s in for i in 10..<20 { s.workers["w\(i)"] = false } }
        phase("1 worker joins") { s in s.workers["w60"] = true }
        for line in report { print("lease simulation: \(line)") }
        #expect(report.count == 5)
    }
}
