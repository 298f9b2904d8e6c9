import AsyncHTTPClient
import Foundation
import Logging
import Testing
import TestSupport

@testable import AWS

/// Kinesis against moto_server.
@Suite struct KinesisTests {
    @Test func putReadAndReshard() async throws {
        let endpoint = try #require(URL(string: try TestServices.awsEndpoint()))
        let kinesis = Kinesis(
            configuration: AWSConfiguration(
                region: "us-east-1",
                credentialProvider: StaticCredentialProvider(accessKeyID: "testing", secretAccessKey: "testing"),
                endpoint: endpoint
            ),
            httpClient: .shared,
            logger: Logger(label: "t")
        )
        let name = TestServices.uniqueName("aws-test")
        try await kinesis.createStream(name: name, shardCount: 1)
        let arn = try await kinesis.waitUntilActive(name: name, timeout: .seconds(10))
        #expect(arn.contains(name))

        var written: [String] = []
        for i in 0..<3 {
            let placed = try await kinesis.putRecord(streamName: name, partitionKey: "k\(i)", data: [UInt8(i), 0xFF, 0x00])
            written.append(placed.sequenceNumber)
        }
        let shards = try await kinesis.listShards(streamName: name)
        let shard = try #require(shards.first)
        #expect(shards.count == 1)
        #expect(!shard.isClosed)

        let iterator = try await kinesis.getShardIterator(streamName: name, shardID: shard.shardID, type: .trimHorizon)
        let output = try await kinesis.getRecords(shardIterator: iterator)
        #expect(output.records.map(\.sequenceNumber) == written)
        #expect(output.records.map(\.data) == [[0, 0xFF, 0], [1, 0xFF, 0], [2, 0xFF, 0]])
        #expect(output.records.map(\.partitionKey) == ["k0", "k1", "k2"])
        #expect(output.records.first?.approximateArrivalTimestamp != nil)

        let after = try await kinesis.getShardIterator(
            streamName: name, shardID: shard.shardID, type: .afterSequenceNumber(written[0])
        )
        #expect(try await kinesis.getRecords(shardIterator: after).records.map(\.sequenceNumber) == Array(written.dropFirst()))

        try await kinesis.updateShardCount(streamName: name, targetShardCount: 2)
        _ = try await kinesis.waitUntilActive(name: name, timeout: .seconds(10))
        let resharded = try await kinesis.listShards(streamName: name)
        #expect(resharded.contains { $0.shardID == shard.shardID && $0.isClosed })
        #expect(resharded.contains { $0.parentShardID == shard.shardID && !$0.isClosed })
        try await kinesis.deleteStream(name: name)
    }
}
