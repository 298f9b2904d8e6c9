/// One shard's lease as a worker sees it in the lease table.
public struct Lease: Sendable, Hashable {
    public var shardID: String
    /// The worker reading the shard; nil when nobody holds it.
    public var owner: String?
    /// Grows with every change of owner; checkpoints carry it, and a stale epoch never moves one.
    public var epoch: Int64
    /// The owner's heartbeat: it grows with every renewal. A lease whose counter stops moving for the
    /// lease duration (by the observer's own clock) has expired.
    public var counter: Int64
    /// A worker that asked the owner to hand the lease over (balancing); nil when none asked.
    public var pendingOwner: String?
    /// Set by the owner once the shard is read to its end and its last checkpoint written.
    public var isFinished: Bool
    /// DynamoDB: the parent shard; Kinesis: the parent and the adjacent parent.
    public var parents: [String]

    public init(
        shardID: String, owner: String? = nil, epoch: Int64 = 0, counter: Int64 = 0, pendingOwner: String? = nil,
        isFinished: Bool = false, parents: [String] = []
    ) {
        self.shardID = shardID
        self.owner = owner
        self.epoch = epoch
        self.counter = counter
        self.pendingOwner = pendingOwner
        self.isFinished = isFinished
        self.parents = parents
    }
}

/// What a worker should do with the leases this round.
public enum LeaseAction: Sendable, Hashable {
    /// Take a lease nobody holds, or whose owner stopped renewing it (`expectedOwner`/`expectedCounter`
    /// are the condition of the write: the lease is taken only if nobody else took it first).
    case take(shardID: String, expectedOwner: String?, expectedCounter: Int64)
    /// Ask `owner` to hand this lease over at its next renewal.
    case requestHandover(shardID: String, owner: String)
    /// Hand a lease over to the worker that asked for it (after stopping and checkpointing the shard).
    case handOver(shardID: String, to: String)
    /// Refuse a handover request (this worker would fall below its share).
    case refuseHandover(shardID: String)
    /// Give a lease up (after stopping and checkpointing the shard): this worker holds more than its share.
    case release(shardID: String)
}

/// The balancing rule, pure: every worker runs it on its own view of the lease table, and the
/// conditional writes of the lease table make sure each lease has at most one owner.
///
/// With `n` leases ready to read and `w` live workers, every worker converges to `n / w` or
/// `n / w + 1` leases (±1):
/// - a worker below `⌈n / w⌉` takes leases nobody holds (or whose owner stopped renewing), at most
///   `maximumTakesPerRound` a round, so that workers starting together share rather than race;
/// - a worker with fewer than `⌊n / w⌋` leases, when nothing is free, asks the workers holding the
///   most for one each, if they hold at least two more than it will; an owner hands the lease over at
///   its next renewal (stopping and checkpointing the shard first) unless that would put it below `⌊n / w⌋`;
/// - a worker holding more than `⌈n / w⌉` releases the surplus.
/// A lease moves only to fix an imbalance, so a balanced table stays as it is.
public enum LeaseBalancer {
    public static func plan(
        me: String,
        workers: Set<String>,
        ready: [Lease],
        expired: Set<String>,
        maximumTakesPerRound: Int = 10
    ) -> [LeaseAction] {
        let live = workers.union([me])
        let n = ready.count
        let w = live.count
        guard n > 0 else { return [] }
        let floor = n / w
        let ceiling = (n + w - 1) / w

        var held: [String: Int] = [:]
        for lease in ready {
            if let owner = lease.owner, live.contains(owner), !expired.contains(lease.shardID) { held[owner, default: 0] += 1 }
        }
        let mine = ready.filter { $0.owner == me }
        var count = mine.count
        var actions: [LeaseAction] = []

        // Requests addressed to me.
        for lease in mine {
            guard let asker = lease.pendingOwner else { continue }
            if asker != me, live.contains(asker), count - 1 >= floor {
                actions.append(.handOver(shardID: lease.shardID, to: asker))
                count -= 1
            } else {
                actions.append(.refuseHandover(shardID: lease.shardID))
            }
        }
        if count > ceiling {
            // Give up the surplus, newest-epoch first is as good as any; keep it deterministic.
            let surplus = mine.filter { $0.pendingOwner == nil }.sorted { $0.shardID > $1.shardID }.prefix(count - ceiling)
            for lease in surplus { actions.append(.release(shardID: lease.shardID)) }
            return actions
        }

        // Free leases: never held, released, or expired.
        let free = ready.filter { lease in
            guard let owner = lease.owner else { return true }
            return owner != me && (expired.contains(lease.shardID) || !live.contains(owner))
        }
        var taken = 0
        for lease in free.sorted(by: { $0.shardID < $1.shardID }) where count < ceiling && taken < maximumTakesPerRound {
            actions.append(.take(shardID: lease.shardID, expectedOwner: lease.owner, expectedCounter: lease.counter))
            count += 1
            taken += 1
        }
        if taken > 0 || count >= floor { return actions }

        // Nothing free and below my share: ask the busiest workers for one lease each (one request per
        // worker at a time), as long as each holds at least two more than I will.
        var expected = count + ready.filter { $0.pendingOwner == me }.count
        let askedAlready = Set(ready.filter { $0.pendingOwner == me }.compactMap(\.owner))
        let busiest = held.filter { $0.key != me && !askedAlready.contains($0.key) }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        for (victim, victimCount) in busiest where expected < floor && victimCount >= expected + 2 {
            guard let lease = ready.filter({ $0.owner == victim && $0.pendingOwner == nil }).min(by: { $0.shardID < $1.shardID }) else { continue }
            actions.append(.requestHandover(shardID: lease.shardID, owner: victim))
            expected += 1
            if actions.count >= maximumTakesPerRound { break }
        }
        return actions
    }

    /// The leases a worker may read now: not finished, and every parent finished or unknown
    /// (trimmed away, or never listed).
    public static func ready(_ leases: [Lease]) -> [Lease] {
        let byID = Dictionary(leases.map { ($0.shardID, $0) }, uniquingKeysWith: { first, _ in first })
        return leases.filter { lease in
            !lease.isFinished && lease.parents.allSatisfy { parent in byID[parent].map(\.isFinished) ?? true }
        }
    }
}
