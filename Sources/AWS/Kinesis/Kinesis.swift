import AsyncHTTPClient
import Foundation
import Logging

/// The Kinesis Data Streams operations a stream reader and its tests need
/// (JSON 1.1, target `Kinesis_20131202`).
public struct Kinesis: Sendable {
    public let client: AWSJSONClient

    public init(configuration: AWSConfiguration, httpClient: HTTPClient, logger: Logger) {
        self.client = AWSJSONClient(service: .kinesis, configuration: configuration, httpClient: httpClient, logger: logger)
    }

    public func createStream(name: String, shardCount: Int) async throws {
        struct Input: Encodable {
            var StreamName: String
            var ShardCount: Int
        }
        try await client.send("CreateStream", input: Input(StreamName: name, ShardCount: shardCount))
    }

    public func deleteStream(name: String) async throws {
        try await client.send("DeleteStream", input: ["StreamName": name])
    }

    /// The stream's ARN and status (`CREATING`, `ACTIVE`, `UPDATING`, `DELETING`).
    public func describeStreamSummary(name: String) async throws -> (streamARN: String, status: String) {
        struct Output: Decodable {
            struct Summary: Decodable {
                var StreamARN: String
                var StreamStatus: String
            }
            var StreamDescriptionSummary: Summary
        }
        let output: Output = try await client.call("DescribeStreamSummary", input: ["StreamName": name])
        return (output.StreamDescriptionSummary.StreamARN, output.StreamDescriptionSummary.StreamStatus)
    }

    /// Polls until the stream is `ACTIVE`; returns its ARN.
    public func waitUntilActive(name: String, timeout: Duration) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let summary = try await describeStreamSummary(name: name)
            if summary.status == "ACTIVE" { return summary.streamARN }
            guard ContinuousClock.now + .milliseconds(100) < deadline else {
                throw AWSError(
                    operation: client.name("DescribeStreamSummary"),
                    type: "WaiterTimeout",
                    message: "stream \(name) is still \(summary.status) after \(timeout)"
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Every shard of the stream, open and closed, all pages.
    public func listShards(streamName: String) async throws -> [KinesisShard] {
        struct Input: Encodable {
            var StreamName: String?
            var NextToken: String?
        }
        struct Output: Decodable {
            var Shards: [KinesisShard]?
            var NextToken: String?
        }
        var shards: [KinesisShard] = []
        var token: String? = nil
        var seen: Set<String> = []
        repeat {
            // With a NextToken the stream name must be left out.
            let input = token == nil ? Input(StreamName: streamName) : Input(NextToken: token)
            let output: Output = try await client.call("ListShards", input: input)
            shards += output.Shards ?? []
            token = output.NextToken
            if let marker = token, !seen.insert(marker).inserted { break }
        } while token != nil
        return shards
    }

    public func getShardIterator(streamName: String, shardID: String, type: KinesisShardIteratorType) async throws -> String {
        struct Input: Encodable {
            var StreamName: String
            var ShardId: String
            var ShardIteratorType: String
            var StartingSequenceNumber: String?
            var Timestamp: Double?
        }
        struct Output: Decodable { var ShardIterator: String }
        var input = Input(StreamName: streamName, ShardId: shardID, ShardIteratorType: "")
        switch type {
        case .trimHorizon: input.ShardIteratorType = "TRIM_HORIZON"
        case .latest: input.ShardIteratorType = "LATEST"
        case .atSequenceNumber(let s):
            input.ShardIteratorType = "AT_SEQUENCE_NUMBER"
            input.StartingSequenceNumber = s
        case .afterSequenceNumber(let s):
            input.ShardIteratorType = "AFTER_SEQUENCE_NUMBER"
            input.StartingSequenceNumber = s
        case .atTimestamp(let date):
            input.ShardIteratorType = "AT_TIMESTAMP"
            input.Timestamp = date.timeIntervalSince1970
        }
        let output: Output = try await client.call("GetShardIterator", input: input)
        return output.ShardIterator
    }

    public func getRecords(shardIterator: String, limit: Int? = nil) async throws -> KinesisGetRecordsOutput {
        struct Input: Encodable {
            var ShardIterator: String
            var Limit: Int?
        }
        return try await client.call("GetRecords", input: Input(ShardIterator: shardIterator, Limit: limit))
    }

    /// Writes one record; returns where it landed. `explicitHashKey` (a decimal 128-bit number)
    /// picks the shard instead of the MD5 of the partition key.
    public func putRecord(
        streamName: String,
        partitionKey: String,
        data: [UInt8],
        explicitHashKey: String? = nil
    ) async throws -> (shardID: String, sequenceNumber: String) {
        struct Input: Encodable {
            var StreamName: String
            var PartitionKey: String
            var Data: String
            var ExplicitHashKey: String?
        }
        struct Output: Decodable {
            var ShardId: String
            var SequenceNumber: String
        }
        let output: Output = try await client.call(
            "PutRecord",
            input: Input(
                StreamName: streamName, PartitionKey: partitionKey, Data: Foundation.Data(data).base64EncodedString(),
                ExplicitHashKey: explicitHashKey
            )
        )
        return (output.ShardId, output.SequenceNumber)
    }

    /// Splits an open shard in two at `newStartingHashKey` (closes it; its two children take its hash range).
    public func splitShard(streamName: String, shardID: String, newStartingHashKey: String) async throws {
        struct Input: Encodable {
            var StreamName: String
            var ShardToSplit: String
            var NewStartingHashKey: String
        }
        try await client.send("SplitShard", input: Input(StreamName: streamName, ShardToSplit: shardID, NewStartingHashKey: newStartingHashKey))
    }

    /// Merges two open shards with adjacent hash ranges (closes both; the child lists them as
    /// `ParentShardId` and `AdjacentParentShardId`).
    public func mergeShards(streamName: String, shardID: String, adjacentShardID: String) async throws {
        struct Input: Encodable {
            var StreamName: String
            var ShardToMerge: String
            var AdjacentShardToMerge: String
        }
        try await client.send("MergeShards", input: Input(StreamName: streamName, ShardToMerge: shardID, AdjacentShardToMerge: adjacentShardID))
    }

    /// Resharding (closes shards and opens children), for lineage tests.
    public func updateShardCount(streamName: String, targetShardCount: Int) async throws {
        struct Input: Encodable {
            var StreamName: String
            var TargetShardCount: Int
            var ScalingType = "UNIFORM_SCALING"
        }
        try await client.send("UpdateShardCount", input: Input(StreamName: streamName, TargetShardCount: targetShardCount))
    }
}

public enum KinesisShardIteratorType: Sendable, Hashable {
    case trimHorizon
    case latest
    case atSequenceNumber(String)
    case afterSequenceNumber(String)
    case atTimestamp(Date)
}

public struct KinesisShard: Sendable, Hashable, Decodable {
    public var shardID: String
    public var parentShardID: String?
    public var adjacentParentShardID: String?
    public var startingSequenceNumber: String?
    /// Set once the shard is closed.
    public var endingSequenceNumber: String?
    /// The shard's hash key range (decimal 128-bit numbers), for splitting it.
    public var startingHashKey: String?
    public var endingHashKey: String?

    public var isClosed: Bool { endingSequenceNumber != nil }

    public init(
        shardID: String,
        parentShardID: String? = nil,
        adjacentParentShardID: String? = nil,
        startingSequenceNumber: String? = nil,
        endingSequenceNumber: String? = nil
    ) {
        self.shardID = shardID
        self.parentShardID = parentShardID
        self.adjacentParentShardID = adjacentParentShardID
        self.startingSequenceNumber = startingSequenceNumber
        self.endingSequenceNumber = endingSequenceNumber
    }

    enum CodingKeys: String, CodingKey {
        case shardID = "ShardId"
        case parentShardID = "ParentShardId"
        case adjacentParentShardID = "AdjacentParentShardId"
        case sequenceNumberRange = "SequenceNumberRange"
        case hashKeyRange = "HashKeyRange"
    }

    enum RangeKeys: String, CodingKey {
        case startingSequenceNumber = "StartingSequenceNumber"
        case endingSequenceNumber = "EndingSequenceNumber"
    }

    enum HashKeys: String, CodingKey {
        case startingHashKey = "StartingHashKey"
        case endingHashKey = "EndingHashKey"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        shardID = try c.decode(String.self, forKey: .shardID)
        parentShardID = try c.decodeIfPresent(String.self, forKey: .parentShardID)
        adjacentParentShardID = try c.decodeIfPresent(String.self, forKey: .adjacentParentShardID)
        if c.contains(.sequenceNumberRange), try !c.decodeNil(forKey: .sequenceNumberRange) {
            let range = try c.nestedContainer(keyedBy: RangeKeys.self, forKey: .sequenceNumberRange)
            startingSequenceNumber = try range.decodeLenientString(forKey: .startingSequenceNumber)
            endingSequenceNumber = try range.decodeLenientString(forKey: .endingSequenceNumber)
        }
        if c.contains(.hashKeyRange), try !c.decodeNil(forKey: .hashKeyRange) {
            let range = try c.nestedContainer(keyedBy: HashKeys.self, forKey: .hashKeyRange)
            startingHashKey = try range.decodeLenientString(forKey: .startingHashKey)
            endingHashKey = try range.decodeLenientString(forKey: .endingHashKey)
        }
    }
}

public struct KinesisRecord: Sendable, Hashable, Decodable {
    public var sequenceNumber: String
    public var partitionKey: String
    public var data: [UInt8]
    public var approximateArrivalTimestamp: Date?

    public init(sequenceNumber: String, partitionKey: String, data: [UInt8], approximateArrivalTimestamp: Date? = nil) {
        self.sequenceNumber = sequenceNumber
        self.partitionKey = partitionKey
        self.data = data
        self.approximateArrivalTimestamp = approximateArrivalTimestamp
    }

    enum CodingKeys: String, CodingKey {
        case sequenceNumber = "SequenceNumber"
        case partitionKey = "PartitionKey"
        case data = "Data"
        case approximateArrivalTimestamp = "ApproximateArrivalTimestamp"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sequenceNumber = try c.decode(String.self, forKey: .sequenceNumber)
        partitionKey = try c.decode(String.self, forKey: .partitionKey)
        let text = try c.decode(String.self, forKey: .data)
        guard let bytes = Data(base64Encoded: text) else {
            throw DecodingError.dataCorruptedError(forKey: .data, in: c, debugDescription: "Data is not base64")
        }
        data = Array(bytes)
        approximateArrivalTimestamp = (try? c.decodeIfPresent(Double.self, forKey: .approximateArrivalTimestamp))
            .flatMap { $0 }.map { Date(timeIntervalSince1970: $0) }
    }
}

public struct KinesisGetRecordsOutput: Sendable, Hashable, Decodable {
    public var records: [KinesisRecord]
    /// nil once a closed shard is read to its end.
    public var nextShardIterator: String?
    public var millisBehindLatest: Int?

    enum CodingKeys: String, CodingKey {
        case records = "Records"
        case nextShardIterator = "NextShardIterator"
        case millisBehindLatest = "MillisBehindLatest"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        records = try c.decodeIfPresent([KinesisRecord].self, forKey: .records) ?? []
        nextShardIterator = try c.decodeIfPresent(String.self, forKey: .nextShardIterator)
        millisBehindLatest = try? c.decodeIfPresent(Int.self, forKey: .millisBehindLatest)
    }
}

/// One record of a `PutRecords` call.
public struct KinesisPutRecordsEntry: Sendable, Hashable {
    public var partitionKey: String
    public var data: [UInt8]

    public init(partitionKey: String, data: [UInt8]) {
        self.partitionKey = partitionKey
        self.data = data
    }
}

/// Where a record of `PutRecords` landed, or why it did not.
public struct KinesisPutRecordsResult: Sendable, Hashable, Decodable {
    public var shardID: String?
    public var sequenceNumber: String?
    /// `ProvisionedThroughputExceededException` or `InternalFailure` for a record not written.
    public var errorCode: String?
    public var errorMessage: String?

    public var isSuccess: Bool { errorCode == nil }

    enum CodingKeys: String, CodingKey {
        case shardID = "ShardId", sequenceNumber = "SequenceNumber", errorCode = "ErrorCode", errorMessage = "ErrorMessage"
    }
}

extension Kinesis {
    /// The most records one `PutRecords` may carry.
    public static let putRecordsLimit = 500

    /// Writes up to ``putRecordsLimit`` records in one call. The call succeeds even
    /// when some records fail: each result, in input order, has either a sequence
    /// number or an error code, and the caller decides what to send again.
    public func putRecords(streamName: String, records: [KinesisPutRecordsEntry]) async throws -> [KinesisPutRecordsResult] {
        struct Entry: Encodable {
            var PartitionKey: String
            var Data: String
        }
        struct Input: Encodable {
            var StreamName: String
            var Records: [Entry]
        }
        struct Output: Decodable {
            var Records: [KinesisPutRecordsResult]
            var FailedRecordCount: Int?
        }
        guard records.count <= Self.putRecordsLimit else {
            throw AWSError(
                operation: client.name("PutRecords"),
                type: "InvalidRequest",
                message: "\(records.count) records; PutRecords takes at most \(Self.putRecordsLimit)"
            )
        }
        let output: Output = try await client.call(
            "PutRecords",
            input: Input(
                StreamName: streamName,
                Records: records.map { Entry(PartitionKey: $0.partitionKey, Data: Foundation.Data($0.data).base64EncodedString()) }
            )
        )
        guard output.Records.count == records.count else {
            throw AWSError(
                operation: client.name("PutRecords"),
                type: AWSError.invalidResponse,
                message: "\(output.Records.count) results for \(records.count) records",
                statusCode: 200
            )
        }
        return output.Records
    }
}
