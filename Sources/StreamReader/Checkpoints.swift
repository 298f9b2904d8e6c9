import Synchronization

/// How far a shard has been routed: every record up to `sequenceNumber` is
/// acknowledged by Kafka for every target topic.
public struct Checkpoint: Sendable, Hashable {
    /// The last sequence number routed, or nil when nothing was.
    public var sequenceNumber: String?
    /// The shard is closed and every record in it was routed: never read it again.
    public var isFinished: Bool
    /// The lease epoch of the writer (for fencing across instances); nil without leases.
    public var epoch: Int64?

    public init(sequenceNumber: String?, isFinished: Bool = false, epoch: Int64? = nil) {
        self.sequenceNumber = sequenceNumber
        self.isFinished = isFinished
        self.epoch = epoch
    }
}

/// Where checkpoints are kept. Implementations must make `save` durable before returning.
public protocol CheckpointStore: Sendable {
    /// Every checkpoint of the stream, by shard id.
    func load(streamARN: String) async throws -> [String: Checkpoint]
    func save(streamARN: String, shardID: String, checkpoint: Checkpoint) async throws
    /// True when `process` itself commits each page's checkpoint, atomically with the page's records
    /// (exactly-once mode: both in one Kafka transaction). The reader then saves only what no page carries,
    /// a shard's final checkpoint, so that every checkpoint has one writer.
    var pageCheckpointsCommitWithPages: Bool { get }
}

extension CheckpointStore {
    public var pageCheckpointsCommitWithPages: Bool { false }
}

/// Checkpoints kept in memory: for tests and for runs that always start from the stream's start position.
public final class InMemoryCheckpointStore: CheckpointStore {
    private let state = Mutex<[String: [String: Checkpoint]]>([:])

    public init() {}

    public func load(streamARN: String) async throws -> [String: Checkpoint] {
        state.withLock { $0[streamARN] ?? [:] }
    }

    public func save(streamARN: String, shardID: String, checkpoint: Checkpoint) async throws {
        state.withLock { state in
            // As in the Kafka store: a lower epoch never replaces a higher one.
            if let current = state[streamARN]?[shardID], (current.epoch ?? 0) > (checkpoint.epoch ?? 0) { return }
            state[streamARN, default: [:]][shardID] = checkpoint
        }
    }
}
