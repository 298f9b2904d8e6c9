import AWS
import Foundation

/// A Kinesis data stream, by name. Each record's data is read as the change record DynamoDB's
/// Kinesis streaming destination writes (``KinesisChangeRecord``); a record that is not one is
/// carried with ``StreamRecord/unreadable`` set, never dropped. A record's sequence number is
/// its Kinesis sequence number.
public struct KinesisSource: StreamSource {
    public let kinesis: Kinesis
    public let streamName: String

    public init(kinesis: Kinesis, streamName: String) {
        self.kinesis = kinesis
        self.streamName = streamName
    }

    public var supportsTimestampStart: Bool { true }

    public func listShards() async throws -> ShardListing {
        let shards = try await kinesis.listShards(streamName: streamName)
        return ShardListing(shards: shards.map { shard in
            Shard(
                shardID: shard.shardID, parentShardID: shard.parentShardID, adjacentParentShardID: shard.adjacentParentShardID,
                startingSequenceNumber: shard.startingSequenceNumber, endingSequenceNumber: shard.endingSequenceNumber
            )
        })
    }

    public func shardIterator(shardID: String, position: ShardPosition) async throws -> String {
        let type: KinesisShardIteratorType =
            switch position {
            case .trimHorizon: .trimHorizon
            case .latest: .latest
            case .afterSequenceNumber(let sequence): .afterSequenceNumber(sequence)
            case .atTimestamp(let date): .atTimestamp(date)
            }
        return try await kinesis.getShardIterator(streamName: streamName, shardID: shardID, type: type)
    }

    public func records(iterator: String, limit: Int) async throws -> SourcePage {
        let output = try await kinesis.getRecords(shardIterator: iterator, limit: limit)
        return SourcePage(
            records: output.records.map(KinesisChangeRecord.streamRecord(from:)),
            nextIterator: output.nextShardIterator,
            millisBehindLatest: output.millisBehindLatest
        )
    }

    /// The stream name in a Kinesis stream ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`), or nil when `text` is not one.
    public static func streamName(fromARN text: String) -> String? {
        let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", parts[2] == "kinesis", parts[5].hasPrefix("stream/") else { return nil }
        let name = parts[5].dropFirst("stream/".count)
        return name.isEmpty || name.contains("/") ? nil : String(name)
    }
}

/// The record DynamoDB's Kinesis streaming destination writes for each item change, as JSON in
/// the Kinesis record's data: `awsRegion`, `eventID`, `eventName` (INSERT, MODIFY, REMOVE),
/// `userIdentity`, `recordFormat` (`application/json`), `tableName`, `eventSource`
/// (`aws:dynamodb`), and `dynamodb` with `ApproximateCreationDateTime` (epoch milliseconds, or
/// microseconds when the destination's precision is MICROSECOND), `Keys`, `NewImage`, `OldImage`, `SizeBytes`.
public enum KinesisChangeRecord {
    private struct Change: Decodable {
        var awsRegion: String?
        var eventID: String?
        var eventName: String?
        var eventSource: String?
        var dynamodb: Body?

        struct Body: Decodable {
            var ApproximateCreationDateTime: Double?
            var Keys: DynamoDBItem?
            var NewImage: DynamoDBItem?
            var OldImage: DynamoDBItem?
            var SizeBytes: Int?
        }
    }

    /// The change in `record`'s data as a stream record with the Kinesis sequence number; a
    /// record whose data is not such a change comes back with `unreadable` set and the reason.
    public static func streamRecord(from record: KinesisRecord) -> StreamRecord {
        func unreadable(_ reason: String) -> StreamRecord {
            .makeUnreadable(
                sequenceNumber: record.sequenceNumber, data: record.data, partitionKey: record.partitionKey,
                arrival: record.approximateArrivalTimestamp,
                reason: "Kinesis record is not a DynamoDB change record: \(reason)"
            )
        }
        let change: Change
        do {
            change = try JSONDecoder().decode(Change.self, from: Data(record.data))
        } catch let error as DecodingError {
            return unreadable(describe(error))
        } catch {
            return unreadable("\(error)")
        }
        guard change.eventSource == "aws:dynamodb" else {
            return unreadable(change.eventSource.map { "eventSource is \"\($0)\", not \"aws:dynamodb\"" } ?? "it has no eventSource \"aws:dynamodb\"")
        }
        guard let name = change.eventName, ["INSERT", "MODIFY", "REMOVE"].contains(name) else {
            return unreadable("eventName \(change.eventName.map { "\"\($0)\"" } ?? "is missing"); expected INSERT, MODIFY or REMOVE")
        }
        guard let body = change.dynamodb, let keys = body.Keys else {
            return unreadable(change.dynamodb == nil ? "it has no dynamodb object" : "dynamodb.Keys is missing")
        }
        return StreamRecord(
            eventID: change.eventID ?? "",
            eventName: name,
            keys: keys,
            newImage: body.NewImage,
            oldImage: body.OldImage,
            sequenceNumber: record.sequenceNumber,
            approximateCreationDateTime: body.ApproximateCreationDateTime.map(date(fromEpoch:)) ?? record.approximateArrivalTimestamp,
            sizeBytes: body.SizeBytes,
            awsRegion: change.awsRegion
        )
    }

    /// Epoch milliseconds; a value too large for milliseconds (past the year 5000) is microseconds.
    static func date(fromEpoch value: Double) -> Date {
        Date(timeIntervalSince1970: value >= 1e14 ? value / 1_000_000 : value / 1000)
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return "its data is not JSON"
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            return "its data is JSON but not an object"
        case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context)): \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "\((context.codingPath + [key]).map(\.stringValue).joined(separator: ".")) is missing"
        @unknown default:
            return "\(error)"
        }
    }
}
