import AWS

/// Decides which shards may be read now: a shard is ready when it is not
/// finished and each of its parents (one, or two after a Kinesis merge) is
/// finished or no longer listed (trimmed away). Reading a child before its
/// parents end would break per-item order.
///
/// A listing AWS would never send (a hostile or broken endpoint) can make the
/// parents a cycle: a shard that names itself as its parent, or `a` the parent of
/// `b` and `b` of `a`. Such shards would wait for each other forever. The lineage
/// finds every cycle (``parentCycles``) and reads the shards of a cycle without
/// waiting for the parents that are in the same cycle (there is no order to keep
/// among them); parents outside the cycle are still waited for. The reader reports
/// each cycle (an error log line and the shards' `lastError`).
public struct ShardLineage: Sendable {
    public let shards: [Shard]
    /// The shards of each parent cycle, in listing order; cycles ordered by their first shard's listing position.
    public let parentCycles: [[String]]
    /// For each shard in a cycle, its cycle (index into `parentCycles`).
    private let cycleOf: [String: Int]

    public init(shards: [Shard]) {
        self.shards = shards
        let cycles = Self.findCycles(shards)
        self.parentCycles = cycles
        var cycleOf: [String: Int] = [:]
        for (index, cycle) in cycles.enumerated() {
            for id in cycle { cycleOf[id] = index }
        }
        self.cycleOf = cycleOf
    }

    /// The parents `shard` waits for: its parents, less those in a parent cycle with it.
    public func readableParents(of shard: Shard) -> [String] {
        guard let cycle = cycleOf[shard.shardID] else { return shard.parentShardIDs }
        return shard.parentShardIDs.filter { cycleOf[$0] != cycle }
    }

    /// Shards that may start now, in listing order (parents before children), each id once
    /// (a shard listed twice is read once, as its first listing says).
    public func readyShards(finished: Set<String>, running: Set<String>) -> [Shard] {
        let listed = Set(shards.map(\.shardID))
        var seen: Set<String> = []
        return shards.filter { shard in
            guard seen.insert(shard.shardID).inserted else { return false }
            guard !finished.contains(shard.shardID), !running.contains(shard.shardID) else { return false }
            return readableParents(of: shard).allSatisfy { parent in finished.contains(parent) || !listed.contains(parent) }
        }
    }

    /// One line naming a cycle's shards, as its parent links go: `a → b → a`, or `a → a`.
    public static func describe(_ cycle: [String], in shards: [Shard]) -> String {
        guard let first = cycle.first else { return "" }
        let members = Set(cycle)
        var parentOf: [String: String] = [:]
        for shard in shards where members.contains(shard.shardID) && parentOf[shard.shardID] == nil {
            parentOf[shard.shardID] = shard.parentShardIDs.first { members.contains($0) }
        }
        var path = [first]
        var visited: Set<String> = [first]
        var current = first
        while let next = parentOf[current] {
            path.append(next)
            guard visited.insert(next).inserted else { break }
            current = next
        }
        var line = path.map(oneLine).joined(separator: " → ")
        // Members of the same cycle (a strongly connected set) not on this path.
        let rest = cycle.filter { !visited.contains($0) }
        if !rest.isEmpty { line += " (with \(rest.map(oneLine).joined(separator: ", ")))" }
        return line
    }

    /// A shard id as the listing gave it, its line breaks and other control characters escaped.
    private static func oneLine(_ id: String) -> String {
        var out = ""
        for scalar in id.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator, .format:
                out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The strongly connected sets of the parent links that are cycles (more than one shard, or a
    /// shard that is its own parent): Tarjan's algorithm, iterative so that a long hostile chain cannot
    /// exhaust the stack. Linear in the number of shards (each has at most two parents).
    private static func findCycles(_ shards: [Shard]) -> [[String]] {
        var indexOf: [String: Int] = [:]
        var ids: [String] = []
        var parents: [[Int]] = []
        for shard in shards where indexOf[shard.shardID] == nil {
            indexOf[shard.shardID] = ids.count
            ids.append(shard.shardID)
            parents.append([])
        }
        var firstListing: Set<String> = []
        for shard in shards where firstListing.insert(shard.shardID).inserted {
            parents[indexOf[shard.shardID]!] = shard.parentShardIDs.compactMap { indexOf[$0] }
        }
        let count = ids.count
        var order = [Int](repeating: -1, count: count)
        var low = [Int](repeating: 0, count: count)
        var onStack = [Bool](repeating: false, count: count)
        var stack: [Int] = []
        var next = 0
        var components: [[Int]] = []
        for root in 0..<count where order[root] < 0 {
            // Each frame: a node and the position of the next parent to visit.
            var frames: [(node: Int, edge: Int)] = [(root, 0)]
            order[root] = next
            low[root] = next
            next += 1
            stack.append(root)
            onStack[root] = true
            while let frame = frames.last {
                let node = frame.node
                if frame.edge < parents[node].count {
                    frames[frames.count - 1].edge += 1
                    let parent = parents[node][frame.edge]
                    if order[parent] < 0 {
                        order[parent] = next
                        low[parent] = next
                        next += 1
                        stack.append(parent)
                        onStack[parent] = true
                        frames.append((parent, 0))
                    } else if onStack[parent] {
                        low[node] = min(low[node], order[parent])
                    }
                    continue
                }
                frames.removeLast()
                if let caller = frames.last { low[caller.node] = min(low[caller.node], low[node]) }
                guard low[node] == order[node] else { continue }
                var component: [Int] = []
                while let member = stack.popLast() {
                    onStack[member] = false
                    component.append(member)
                    if member == node { break }
                }
                if component.count > 1 || parents[node].contains(node) { components.append(component.sorted()) }
            }
        }
        return components.sorted { $0[0] < $1[0] }.map { $0.map { ids[$0] } }
    }
}
