import Foundation

/// The decoders of response bodies, by operation, as the clients apply them to a 2xx answer.
///
/// One entry point per operation whose answer Fanout reads in bulk, so that the fuzz targets
/// (Fuzz/Targets) exercise exactly what a misbehaving endpoint would reach, whichever decoder
/// implements it.
package enum AWSResponseDecoding {
    /// A DynamoDB Streams GetRecords answer.
    package static func getRecords(_ body: [UInt8]) throws -> GetRecordsOutput {
        try GetRecordsOutput(jsonBytes: body)
    }

    /// A DynamoDB Streams DescribeStream answer.
    package static func describeStream(_ body: [UInt8]) throws -> StreamDescription {
        struct Output: Decodable { var StreamDescription: StreamDescription }
        return try decode(Output.self, body).StreamDescription
    }

    /// A DynamoDB item in typed JSON (`{"name": {"S": "x"}, …}`).
    package static func item(_ body: [UInt8]) throws -> DynamoDBItem {
        try AttributeValue.item(jsonBytes: body)
    }

    /// A Kinesis GetRecords answer.
    package static func kinesisGetRecords(_ body: [UInt8]) throws -> KinesisGetRecordsOutput {
        try decode(KinesisGetRecordsOutput.self, body)
    }

    /// A Kinesis ListShards answer's shards.
    package static func kinesisListShards(_ body: [UInt8]) throws -> [KinesisShard] {
        struct Output: Decodable { var Shards: [KinesisShard]? }
        return try decode(Output.self, body).Shards ?? []
    }

    private static func decode<Output: Decodable>(_ type: Output.Type, _ body: [UInt8]) throws -> Output {
        try JSONDecoder().decode(Output.self, from: Data(body.isEmpty ? Array("{}".utf8) : body))
    }
}
