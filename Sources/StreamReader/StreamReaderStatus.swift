import Foundation

/// What the reader is doing, readable at any time through ``ShardedStreamReader/status``.
///
/// Plain numbers only: the status endpoint and the metrics read them; nothing
/// here is reported anywhere by the reader itself except through its logs.
public struct StreamReaderStatus: Sendable, Hashable {
    public var streamARN: String
    /// Every shard of the last listing (and any shard still being read), in listing order.
    public var shards: [ShardStatus]
    /// When DescribeStream last answered completely.
    public var lastDiscovery: Date?
    /// The error of the last discovery, nil once a discovery succeeds again.
    public var lastDiscoveryError: String?

    public init(streamARN: String, shards: [ShardStatus] = [], lastDiscovery: Date? = nil, lastDiscoveryError: String? = nil) {
        self.streamARN = streamARN
        self.shards = shards
        self.lastDiscovery = lastDiscovery
        self.lastDiscoveryError = lastDiscoveryError
    }

    /// The shard with this id, if it is known.
    public func shard(_ shardID: String) -> ShardStatus? {
        shards.first { $0.shardID == shardID }
    }

    /// Shards flagged by the stall watchdog.
    public var stalledShardIDs: [String] { shards.filter(\.isStalled).map(\.shardID) }

    /// Records lost to the stream's 24-hour trim before they were read, as gaps (not records) over all shards.
    public var trimmedGaps: Int { shards.reduce(0) { $0 + $1.trimmedGaps } }

    /// Records read from every shard since the reader started.
    public var recordsRead: Int { shards.reduce(0) { $0 + $1.recordsRead } }
}

public struct ShardStatus: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable {
        /// Listed, but its parent shard is not finished yet.
        case waitingForParent = "waiting-for-parent"
        case reading
        /// Closed and read to its end (in this run or, by its checkpoint, an earlier one).
        case finished
        /// Leases: this worker does not hold the shard's lease (another worker reads it, or nobody yet).
        case notHeld = "not-held"
    }

    public var shardID: String
    public var parentShardID: String?
    /// The second parent of a shard made by a Kinesis merge.
    public var adjacentParentShardID: String?
    public var state: State
    /// The stream listed the shard with an ending sequence number: no record will be added.
    public var isClosed: Bool
    /// `MillisBehindLatest` of the last GetRecords (Kinesis only): how far the shard's reading is behind its newest record.
    public var millisBehindLatest: Int?
    /// The last sequence number `process` returned for (and that was checkpointed).
    public var lastSequenceNumber: String?
    /// Records handed to `process` by this run (a page retried counts once).
    public var recordsRead: Int
    /// `ApproximateCreationDateTime` of the newest record routed; nil before the first.
    public var newestRecordCreatedAt: Date?
    /// `ApproximateCreationDateTime` of the first record of the page being routed (read, not yet acknowledged).
    public var pendingSince: Date?
    /// The last read reached the shard's newest record (an empty page; Kinesis: `MillisBehindLatest` 0) and
    /// nothing is pending. False after a page with records and after a failed read.
    public var isCaughtUp: Bool = false
    /// When a read last reached the shard's newest record: records not read yet were written after it.
    public var caughtUpAt: Date?

    /// `now − creation time` of the newest record routed; nil before the first.
    public func newestRecordAge(now: Date = Date()) -> Duration? {
        newestRecordCreatedAt.map { .seconds(max(0, now.timeIntervalSince($0))) }
    }

    /// How far the shard's routing is behind its writers, now: the age of the oldest record read and not yet
    /// acknowledged when a page is pending; zero when caught up; otherwise (a backlog, or the shard cannot be
    /// read) the time since the newest record routed or since the shard was last caught up, whichever is later:
    /// records not yet read were written after both. nil while nothing is known.
    public func lag(now: Date = Date()) -> Duration? {
        if let pendingSince { return .seconds(max(0, now.timeIntervalSince(pendingSince))) }
        if isCaughtUp { return .zero }
        let since = [newestRecordCreatedAt, caughtUpAt].compactMap { $0 }.max()
        return since.map { .seconds(max(0, now.timeIntervalSince($0))) }
    }
    /// When this run last saved the shard's checkpoint.
    public var lastCheckpoint: Date?
    /// The last error reading the shard (kept after it cleared; see `lastErrorTime`).
    public var lastError: String?
    public var lastErrorTime: Date?
    /// The stall watchdog found the shard behind and without progress for the stall timeout.
    public var isStalled: Bool
    /// How often the shard's position was found trimmed away (records lost before they were read).
    public var trimmedGaps: Int

    public init(
        shardID: String,
        parentShardID: String? = nil,
        adjacentParentShardID: String? = nil,
        state: State,
        isClosed: Bool = false,
        lastSequenceNumber: String? = nil,
        recordsRead: Int = 0,
        newestRecordCreatedAt: Date? = nil,
        lastCheckpoint: Date? = nil,
        lastError: String? = nil,
        lastErrorTime: Date? = nil,
        isStalled: Bool = false,
        trimmedGaps: Int = 0
    ) {
        self.shardID = shardID
        self.parentShardID = parentShardID
        self.adjacentParentShardID = adjacentParentShardID
        self.state = state
        self.isClosed = isClosed
        self.lastSequenceNumber = lastSequenceNumber
        self.recordsRead = recordsRead
        self.newestRecordCreatedAt = newestRecordCreatedAt
        self.lastCheckpoint = lastCheckpoint
        self.lastError = lastError
        self.lastErrorTime = lastErrorTime
        self.isStalled = isStalled
        self.trimmedGaps = trimmedGaps
    }
}

extension Duration {
    /// The duration in seconds, fractions included.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
