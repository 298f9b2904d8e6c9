import AWS
import Foundation

/// A page of records from one shard, in sequence order.
public struct ShardRecords: Sendable {
    public var streamARN: String
    public var shardID: String
    public var records: [StreamRecord]
    /// The epoch the page's checkpoint carries (the lease epoch with leases).
    public var epoch: Int64?

    public init(streamARN: String, shardID: String, records: [StreamRecord], epoch: Int64? = nil) {
        self.streamARN = streamARN
        self.shardID = shardID
        self.records = records
        self.epoch = epoch
    }
}

/// Where to start a shard that has no checkpoint.
public enum StartPosition: String, Sendable, Hashable, CaseIterable {
    /// The oldest record still in the stream (the default: nothing is missed).
    case trimHorizon = "TRIM_HORIZON"
    /// Only records written after the reader starts.
    case latest = "LATEST"
    /// Records that arrived at or after ``StreamReaderConfiguration/startTimestamp`` (Kinesis only:
    /// DynamoDB Streams has no such iterator, and the reader refuses it there).
    case atTimestamp = "AT_TIMESTAMP"
}

public struct StreamReaderConfiguration: Sendable {
    /// The stream's ARN: the key of its checkpoints (`<streamARN>|<shardId>`) and of its status.
    public var streamARN: String
    public var startPosition: StartPosition
    /// Where `.atTimestamp` starts; required with it, ignored otherwise.
    public var startTimestamp: Date?
    /// Least time between the starts of two GetRecords calls on one shard (default 200 ms: five
    /// calls a second, the per-shard limit of DynamoDB Streams and Kinesis), after an empty page and
    /// after a page with records alike. Only a page that shows a backlog is followed at once, so that
    /// it is read as fast as the source answers (AWS throttles any excess, which backs the shard off):
    /// a full page (`Limit` records), one that says the shard is behind (Kinesis's MillisBehindLatest
    /// > 0), or one whose newest record was created more than ``backlogAge`` before the call. A new
    /// record waits at most this long, plus one GetRecords round trip, to be read. Lengthen it when
    /// other readers share the stream's shards (Lambda polls four times a second).
    public var pollInterval: Duration
    /// A page whose newest record is older than this when the call started shows a backlog (2 s:
    /// DynamoDB rounds ApproximateCreationDateTime down to the second).
    public static let backlogAge: TimeInterval = 2
    /// How often the shard list is refreshed even when no shard ended (30 s). A shard
    /// that ends triggers a refresh at once.
    public var discoveryInterval: Duration
    /// GetRecords `Limit` (default 1,000, the most GetRecords returns). The limit sent
    /// is never above `maximumRecordsInFlight`.
    public var pageLimit: Int?
    /// Most records of one shard that `process` holds at once (default 10,000). `process`
    /// is awaited page by page, so a shard holds at most one page: the bound caps the page size.
    public var maximumRecordsInFlight: Int
    /// A shard that is behind (its last page had records) and makes no progress for this
    /// long is flagged stalled in ``StreamReaderStatus`` and logged once (default 60 s).
    public var stallTimeout: Duration
    /// First pause of a shard after a failed call that the AWS client gave up retrying
    /// (throttling, 5xx, connection errors); it doubles on each failure in a row (default 200 ms).
    public var errorBackoff: Duration
    /// The longest such pause (default 10 s).
    public var maximumErrorBackoff: Duration

    public init(
        streamARN: String,
        startPosition: StartPosition = .trimHorizon,
        startTimestamp: Date? = nil,
        pollInterval: Duration = .milliseconds(200),
        discoveryInterval: Duration = .seconds(30),
        pageLimit: Int? = 1000,
        maximumRecordsInFlight: Int = 10_000,
        stallTimeout: Duration = .seconds(60),
        errorBackoff: Duration = .milliseconds(200),
        maximumErrorBackoff: Duration = .seconds(10)
    ) {
        self.streamARN = streamARN
        self.startPosition = startPosition
        self.startTimestamp = startTimestamp
        self.pollInterval = pollInterval
        self.discoveryInterval = discoveryInterval
        self.pageLimit = pageLimit
        self.maximumRecordsInFlight = maximumRecordsInFlight
        self.stallTimeout = stallTimeout
        self.errorBackoff = errorBackoff
        self.maximumErrorBackoff = maximumErrorBackoff
    }

    /// The `Limit` of every GetRecords: `pageLimit` (1,000 when nil) within 1...maximumRecordsInFlight and at most 1,000.
    public var effectivePageLimit: Int {
        max(1, min(pageLimit ?? 1000, maximumRecordsInFlight, 1000))
    }
}

/// The reader's former name, from when DynamoDB Streams was its only source.
public typealias DynamoDBStreamReader = ShardedStreamReader
