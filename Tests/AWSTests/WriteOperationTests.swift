import AsyncHTTPClient
import Foundation
import Logging
import Testing
import TestSupport

@testable import AWS

/// UpdateTable, UpdateItem, BatchWriteItem and PutRecords against moto_server,
/// and BatchWriteItem's handling of unprocessed items against a scripted server.
@Suite struct WriteOperationTests {
    let configuration: AWSConfiguration

    init() throws {
        let endpoint = try #require(URL(string: try TestServices.awsEndpoint()))
        configuration = AWSConfiguration(
            region: "us-east-1",
            credentialProvider: StaticCredentialProvider(accessKeyID: "testing", secretAccessKey: "testing"),
            endpoint: endpoint
        )
    }

    var dynamoDB: DynamoDB { DynamoDB(configuration: configuration, httpClient: .shared, logger: Logger(label: "t")) }

    func makeTable(stream: StreamSpecification? = nil) async throws -> String {
        let name = TestServices.uniqueName("aws-write")
        _ = try await dynamoDB.createTable(
            CreateTableInput(
                tableName: name, partitionKey: (name: "pk", type: .string), sortKey: (name: "sk", type: .number),
                streamSpecification: stream
            )
        )
        _ = try await dynamoDB.waitUntilActive(name, timeout: .seconds(10))
        return name
    }

    @Test func updateTableTurnsTheStreamOnAndOff() async throws {
        let table = try await makeTable()
        #expect(try await dynamoDB.describeTable(table).latestStreamARN == nil)
        let enabled = try await dynamoDB.updateTable(table, streamSpecification: StreamSpecification(enabled: true, viewType: .newAndOldImages))
        #expect(enabled.streamSpecification == StreamSpecification(enabled: true, viewType: .newAndOldImages))
        #expect(enabled.latestStreamARN != nil)
        let disabled = try await dynamoDB.updateTable(table, streamSpecification: StreamSpecification(enabled: false))
        #expect(disabled.streamSpecification?.enabled != true)
        try await dynamoDB.deleteTable(table)
    }

    @Test func updateItemWithConditions() async throws {
        let table = try await makeTable()
        let key: DynamoDBItem = ["pk": "a", "sk": .n("1")]
        let created = try await dynamoDB.updateItem(
            table: table, key: key, updateExpression: "SET #v = :one, #tags = :tags",
            conditionExpression: "attribute_not_exists(pk)",
            expressionAttributeNames: ["#v": "version", "#tags": "tags"],
            expressionAttributeValues: [":one": .n("1"), ":tags": .ss(["x"])],
            returnValues: .allNew
        )
        #expect(created["version"] == .n("1"))

        let old = try await dynamoDB.updateItem(
            table: table, key: key, updateExpression: "SET version = version + :one",
            conditionExpression: "version = :expected",
            expressionAttributeValues: [":one": .n("1"), ":expected": .n("1")],
            returnValues: .updatedOld
        )
        #expect(old == ["version": .n("1")])
        #expect(try await dynamoDB.getItem(table: table, key: key)?["version"] == .n("2"))

        await #expect {
            try await dynamoDB.updateItem(
                table: table, key: key, updateExpression: "SET version = :v",
                conditionExpression: "version = :expected",
                expressionAttributeValues: [":v": .n("9"), ":expected": .n("1")]
            )
        } throws: { ($0 as? AWSError)?.type == AWSError.conditionalCheckFailed }
        #expect(try await dynamoDB.getItem(table: table, key: key)?["version"] == .n("2"))
        try await dynamoDB.deleteTable(table)
    }

    @Test func batchWriteItemInChunks() async throws {
        let table = try await makeTable()
        let puts = (0..<60).map { WriteRequest.put(["pk": "p", "sk": .n(String($0)), "body": .s(String(repeating: "x", count: $0))]) }
        try await dynamoDB.batchWriteItem(table: table, requests: puts)
        func count() async throws -> Int {
            var total = 0
            var start: DynamoDBItem? = nil
            repeat {
                let page = try await dynamoDB.query(
                    table: table, keyConditionExpression: "pk = :p", expressionAttributeValues: [":p": "p"], exclusiveStartKey: start
                )
                total += page.items.count
                start = page.lastEvaluatedKey
            } while start != nil
            return total
        }
        #expect(try await count() == 60)
        try await dynamoDB.batchWriteItem(table: table, requests: (0..<30).map { .delete(key: ["pk": "p", "sk": .n(String($0))]) })
        #expect(try await count() == 30)
        try await dynamoDB.deleteTable(table)
    }

    @Test func batchWriteItemResendsUnprocessedItems() async throws {
        let unprocessed = #"{"UnprocessedItems":{"t":[{"PutRequest":{"Item":{"pk":{"S":"b"}}}},{"DeleteRequest":{"Key":{"pk":{"S":"c"}}}}]}}"#
        let server = try await startOffPool { try ScriptedServer([
            .init(status: 200, body: unprocessed),
            .init(status: 200, body: #"{"UnprocessedItems":{}}"#),
            .init(status: 200, body: unprocessed),
        ]) }
        defer { server.stop() }
        let scripted = DynamoDB(configuration: JSONClientTests.configuration(server), httpClient: .shared, logger: Logger(label: "t"))
        try await scripted.batchWriteItem(
            table: "t", requests: [.put(["pk": "a"]), .put(["pk": "b"]), .delete(key: ["pk": "c"])]
        )
        let requests = try server.requests()
        #expect(requests.count == 2)
        #expect(requests.last?.body == #"{"RequestItems":{"t":[{"PutRequest":{"Item":{"pk":{"S":"b"}}}},{"DeleteRequest":{"Key":{"pk":{"S":"c"}}}}]}}"#)

        // Never processed: an error after maxRounds.
        let stuck = try await startOffPool { try ScriptedServer([.init(status: 200, body: unprocessed)]) }
        defer { stuck.stop() }
        let stuckClient = DynamoDB(configuration: JSONClientTests.configuration(stuck), httpClient: .shared, logger: Logger(label: "t"))
        await #expect {
            try await stuckClient.batchWriteItem(table: "t", requests: [.put(["pk": "b"]), .delete(key: ["pk": "c"])], maxRounds: 3)
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.type == "UnprocessedItems" && error.description.contains("2 of 2")
        }
        #expect(try stuck.requests().count == 3)
    }

    @Test func kinesisPutRecords() async throws {
        let kinesis = Kinesis(configuration: configuration, httpClient: .shared, logger: Logger(label: "t"))
        let name = TestServices.uniqueName("aws-records")
        try await kinesis.createStream(name: name, shardCount: 2)
        _ = try await kinesis.waitUntilActive(name: name, timeout: .seconds(10))
        let entries = (0..<20).map { KinesisPutRecordsEntry(partitionKey: "key-\($0)", data: Array("record \($0)".utf8)) }
        let results = try await kinesis.putRecords(streamName: name, records: entries)
        #expect(results.count == 20)
        #expect(results.allSatisfy { $0.isSuccess && $0.sequenceNumber != nil && $0.shardID != nil })

        var read: [String] = []
        for shard in try await kinesis.listShards(streamName: name) {
            let iterator = try await kinesis.getShardIterator(streamName: name, shardID: shard.shardID, type: .trimHorizon)
            read += try await kinesis.getRecords(shardIterator: iterator).records.map { String(decoding: $0.data, as: UTF8.self) }
        }
        #expect(Set(read) == Set(entries.map { String(decoding: $0.data, as: UTF8.self) }))
        try await kinesis.deleteStream(name: name)
    }
}
