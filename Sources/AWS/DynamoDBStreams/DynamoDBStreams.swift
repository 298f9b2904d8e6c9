import AsyncHTTPClient
import Foundation
import Logging

/// The DynamoDB Streams API (target `DynamoDBStreams_20120810`, signed as `dynamodb`).
public struct DynamoDBStreams: Sendable {
    public let client: AWSJSONClient

    public init(configuration: AWSConfiguration, httpClient: HTTPClient, logger: Logger) {
        self.client = AWSJSONClient(
            service: .dynamoDBStreams,
            configuration: configuration,
            httpClient: httpClient,
            logger: logger
        )
    }

    /// Every stream (of the table, when given), all pages.
    public func listStreams(tableName: String? = nil) async throws -> [StreamSummary] {
        struct Input: Encodable {
            var TableName: String?
            var ExclusiveStartStreamArn: String?
        }
        struct Output: Decodable {
            var Streams: [StreamSummary]?
            var LastEvaluatedStreamArn: String?
        }
        var streams: [StreamSummary] = []
        var start: String? = nil
        var seen: Set<String> = []
        repeat {
            let output: Output = try await client.call(
                "ListStreams",
                input: Input(TableName: tableName, ExclusiveStartStreamArn: start)
            )
            streams += output.Streams ?? []
            start = output.LastEvaluatedStreamArn
            // A page marker seen before would loop forever: stop instead.
            if let marker = start, !seen.insert(marker).inserted { break }
        } while start != nil
        return streams
    }

    /// One page of the stream's shards.
    public func describeStream(
        streamARN: String,
        exclusiveStartShardID: String? = nil,
        limit: Int? = nil
    ) async throws -> StreamDescription {
        struct Input: Encodable {
            var StreamArn: String
            var ExclusiveStartShardId: String?
            var Limit: Int?
        }
        struct Output: Decodable { var StreamDescription: StreamDescription }
        let output: Output = try await client.call(
            "DescribeStream",
            input: Input(StreamArn: streamARN, ExclusiveStartShardId: exclusiveStartShardID, Limit: limit)
        )
        return output.StreamDescription
    }

    /// The description (of the last page) and every shard, following `LastEvaluatedShardId`.
    public func describeAllShards(streamARN: String) async throws -> (description: StreamDescription, shards: [Shard]) {
        var description = try await describeStream(streamARN: streamARN)
        var shards = description.shards
        var seen: Set<String> = []
        while let next = description.lastEvaluatedShardID, seen.insert(next).inserted {
            description = try await describeStream(streamARN: streamARN, exclusiveStartShardID: next)
            shards += description.shards
        }
        return (description, shards)
    }

    public func getShardIterator(streamARN: String, shardID: String, type: ShardIteratorType) async throws -> String {
        struct Input: Encodable {
            var StreamArn: String
            var ShardId: String
            var ShardIteratorType: String
            var SequenceNumber: String?
        }
        struct Output: Decodable { var ShardIterator: String }
        let output: Output = try await client.call(
            "GetShardIterator",
            input: Input(
                StreamArn: streamARN, ShardId: shardID, ShardIteratorType: type.wireName,
                SequenceNumber: type.sequenceNumber
            )
        )
        return output.ShardIterator
    }

    /// Up to `limit` (at most 1000) records from the iterator's position.
    public func getRecords(shardIterator: String, limit: Int? = nil) async throws -> GetRecordsOutput {
        struct Input: Encodable {
            var ShardIterator: String
            var Limit: Int?
        }
        let request = Array(try AWSJSONClient.encoder.encode(Input(ShardIterator: shardIterator, Limit: limit)))
        let body = try await client.call("GetRecords", jsonBody: request)
        do {
            return try GetRecordsOutput(jsonBytes: body)
        } catch {
            throw AWSError(
                operation: client.name("GetRecords"),
                type: AWSError.invalidResponse,
                message: "cannot decode the response: \(error)",
                statusCode: 200
            )
        }
    }
}
