import AWS
import Foundation

/// Where a shard iterator starts, whatever the source.
public enum ShardPosition: Sendable, Hashable {
    /// The oldest record still in the shard.
    case trimHorizon
    /// Just after the newest record: only records written from now on.
    case latest
    /// Just after this record (resuming from a checkpoint).
    case afterSequenceNumber(String)
    /// The first record that arrived at or after this time (Kinesis only).
    case atTimestamp(Date)
}

/// Every shard of a stream, open and closed, from one complete listing.
public struct ShardListing: Sendable, Hashable {
    public var shards: [Shard]
    /// Set when the stream will deliver no new records (a disabled DynamoDB stream), for a warning.
    public var inactiveReason: String?

    public init(shards: [Shard], inactiveReason: String? = nil) {
        self.shards = shards
        self.inactiveReason = inactiveReason
    }
}

/// One GetRecords answer, as stream records.
public struct SourcePage: Sendable, Hashable {
    /// In sequence order. Records that are not DynamoDB changes are carried with ``StreamRecord/unreadable`` set.
    public var records: [StreamRecord]
    /// nil once a closed shard is read to its end.
    public var nextIterator: String?
    /// How far the page is behind the shard's newest record (Kinesis); nil when the source does not say.
    public var millisBehindLatest: Int?

    public init(records: [StreamRecord], nextIterator: String?, millisBehindLatest: Int? = nil) {
        self.records = records
        self.nextIterator = nextIterator
        self.millisBehindLatest = millisBehindLatest
    }
}

/// A sharded stream the reader can drive: DynamoDB Streams (``DynamoDBStreamsSource``) or
/// Kinesis Data Streams (``KinesisSource``). Errors are the services' `AWSError`s, unchanged:
/// the reader decides what is transient.
public protocol StreamSource: Sendable {
    /// Every shard, paging the service's listing to its end.
    func listShards() async throws -> ShardListing
    /// An iterator for the shard at `position`.
    func shardIterator(shardID: String, position: ShardPosition) async throws -> String
    /// Up to `limit` records from the iterator's position.
    func records(iterator: String, limit: Int) async throws -> SourcePage
    /// Whether the source can start a shard at a point in time (`AT_TIMESTAMP`).
    var supportsTimestampStart: Bool { get }
}

/// A DynamoDB stream, by its ARN.
public struct DynamoDBStreamsSource: StreamSource {
    public let streams: DynamoDBStreams
    public let streamARN: String

    public init(streams: DynamoDBStreams, streamARN: String) {
        self.streams = streams
        self.streamARN = streamARN
    }

    public var supportsTimestampStart: Bool { false }

    public func listShards() async throws -> ShardListing {
        let (description, shards) = try await streams.describeAllShards(streamARN: streamARN)
        let status = description.streamStatus
        return ShardListing(shards: shards, inactiveReason: status == "DISABLED" || status == "DISABLING" ? "stream is \(status)" : nil)
    }

    public func shardIterator(shardID: String, position: ShardPosition) async throws -> String {
        let type: ShardIteratorType
        switch position {
        case .trimHorizon: type = .trimHorizon
        case .latest: type = .latest
        case .afterSequenceNumber(let sequence): type = .afterSequenceNumber(sequence)
        case .atTimestamp:
            throw StreamReaderConfigurationError("DynamoDB Streams has no AT_TIMESTAMP iterator; start at TRIM_HORIZON or LATEST")
        }
        return try await streams.getShardIterator(streamARN: streamARN, shardID: shardID, type: type)
    }

    public func records(iterator: String, limit: Int) async throws -> SourcePage {
        let output = try await streams.getRecords(shardIterator: iterator, limit: limit)
        return SourcePage(records: output.records, nextIterator: output.nextShardIterator)
    }
}

/// A reader setting that cannot work with its source, said in one line.
public struct StreamReaderConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
