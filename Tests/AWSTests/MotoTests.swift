import AsyncHTTPClient
import Foundation
import Logging
import Testing
import TestSupport

@testable import AWS

/// Against moto_server (started by `scripts/services start`). Every test uses its
/// own uniquely named table; `scripts/services stop` discards them with moto.
@Suite struct MotoTests {
    let configuration: AWSConfiguration
    let dynamoDB: DynamoDB
    let streams: DynamoDBStreams

    init() throws {
        let endpoint = try #require(URL(string: try TestServices.awsEndpoint()))
        configuration = AWSConfiguration(
            region: "us-east-1",
            credentialProvider: StaticCredentialProvider(accessKeyID: "testing", secretAccessKey: "testing"),
            endpoint: endpoint,
            retryPolicy: AWSRetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(10))
        )
        let logger = Logger(label: "aws-tests")
        dynamoDB = DynamoDB(configuration: configuration, httpClient: .shared, logger: logger)
        streams = DynamoDBStreams(configuration: configuration, httpClient: .shared, logger: logger)
    }

    func makeTable() async throws -> TableDescription {
        let name = TestServices.uniqueName("aws-test")
        _ = try await dynamoDB.createTable(
            CreateTableInput(
                tableName: name,
                partitionKey: (name: "pk", type: .string),
                sortKey: (name: "sk", type: .number),
                streamSpecification: StreamSpecification(enabled: true, viewType: .newAndOldImages)
            )
        )
        return try await dynamoDB.waitUntilActive(name, timeout: .seconds(10))
    }

    static func item(_ pk: String, _ sk: Int, _ extra: DynamoDBItem = [:]) -> DynamoDBItem {
        var item: DynamoDBItem = ["pk": .s(pk), "sk": .n(String(sk))]
        item.merge(extra) { $1 }
        return item
    }

    @Test func tableLifecycleAndItems() async throws {
        let table = try await makeTable()
        #expect(table.isActive)
        #expect(table.keySchema == [
            KeySchemaElement(attributeName: "pk", keyType: .hash), KeySchemaElement(attributeName: "sk", keyType: .range),
        ])
        #expect(table.streamSpecification == StreamSpecification(enabled: true, viewType: .newAndOldImages))
        #expect(table.latestStreamARN != nil)

        let payload: DynamoDBItem = [
            "big": .n("123456789012345678901234567890.5"), "blob": .b([0, 255, 7]),
            "nested": .m(["list": .l([.s("x"), .n("2"), .null])]), "tags": .ss(["a", "b"]),
        ]
        try await dynamoDB.putItem(table: table.tableName, item: Self.item("a", 1, payload))
        let read = try await dynamoDB.getItem(table: table.tableName, key: Self.item("a", 1))
        #expect(read == Self.item("a", 1, payload))
        #expect(try await dynamoDB.getItem(table: table.tableName, key: Self.item("a", 99)) == nil)

        await #expect {
            try await dynamoDB.putItem(
                table: table.tableName, item: Self.item("a", 1),
                conditionExpression: "attribute_not_exists(#pk)", expressionAttributeNames: ["#pk": "pk"]
            )
        } throws: { ($0 as? AWSError)?.type == "ConditionalCheckFailedException" }

        try await dynamoDB.deleteTable(table.tableName)
        await #expect {
            _ = try await dynamoDB.describeTable(table.tableName)
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.type == "ResourceNotFoundException" && error.statusCode == 400
                && error.operation == "DynamoDB.DescribeTable" && error.attempts == 1
        }
    }

    @Test func transactionWithFailingConditionIsCanceledWithReasons() async throws {
        let table = try await makeTable()
        try await dynamoDB.putItem(table: table.tableName, item: Self.item("agg", 1))

        await #expect {
            try await dynamoDB.transactWriteItems([
                .put(table: table.tableName, item: Self.item("agg", 2)),
                .put(table: table.tableName, item: Self.item("agg", 1), condition: "attribute_not_exists(pk)"),
            ])
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.type == "TransactionCanceledException" && error.cancellationReasons == ["None", "ConditionalCheckFailed"]
        }
        // Nothing of the cancelled transaction was written.
        #expect(try await dynamoDB.getItem(table: table.tableName, key: Self.item("agg", 2)) == nil)

        // A passing transaction writes all its items.
        try await dynamoDB.transactWriteItems([
            .put(table: table.tableName, item: Self.item("agg", 2), condition: "attribute_not_exists(pk)"),
            .update(
                table: table.tableName, key: Self.item("agg", 3), updateExpression: "SET #s = :s",
                names: ["#s": "state"], values: [":s": .s("done")]
            ),
            .conditionCheck(table: table.tableName, key: Self.item("agg", 1), condition: "attribute_exists(pk)"),
        ])
        #expect(try await dynamoDB.getItem(table: table.tableName, key: Self.item("agg", 3))?["state"] == .s("done"))
        #expect(try await dynamoDB.getItem(table: table.tableName, key: Self.item("agg", 2)) != nil)
    }

    @Test func queryPages() async throws {
        let table = try await makeTable()
        for sk in 1...5 {
            try await dynamoDB.putItem(table: table.tableName, item: Self.item("q", sk))
        }
        try await dynamoDB.putItem(table: table.tableName, item: Self.item("other", 1))

        var seen: [String] = []
        var pages = 0
        var start: DynamoDBItem? = nil
        repeat {
            let page = try await dynamoDB.query(
                table: table.tableName, keyConditionExpression: "pk = :pk",
                expressionAttributeNames: nil, expressionAttributeValues: [":pk": .s("q")],
                exclusiveStartKey: start, limit: 2
            )
            #expect(page.items.count <= 2)
            seen += page.items.compactMap { $0["sk"]?.numberText }
            start = page.lastEvaluatedKey
            pages += 1
        } while start != nil && pages < 10
        #expect(seen == ["1", "2", "3", "4", "5"])
        #expect(pages >= 3)

        let descending = try await dynamoDB.query(
            table: table.tableName, keyConditionExpression: "pk = :pk AND sk > :min",
            expressionAttributeNames: nil, expressionAttributeValues: [":pk": .s("q"), ":min": .n("3")],
            scanIndexForward: false
        )
        #expect(descending.items.compactMap { $0["sk"]?.numberText } == ["5", "4"])
        #expect(descending.lastEvaluatedKey == nil)
    }

    @Test func streamRecordsReadBackInOrder() async throws {
        let table = try await makeTable()
        let streamARN = try #require(table.latestStreamARN)
        let before = Date().addingTimeInterval(-60)
        for sk in 1...4 {
            try await dynamoDB.putItem(
                table: table.tableName,
                item: Self.item("s", sk, ["big": .n("123456789012345678901234567890.\(sk)"), "bin": .b([UInt8(sk), 0])])
            )
        }
        try await dynamoDB.putItem(table: table.tableName, item: Self.item("s", 1, ["v": .s("changed")]))

        let listed = try await streams.listStreams(tableName: table.tableName)
        #expect(listed.map(\.streamARN) == [streamARN])

        let (description, shards) = try await streams.describeAllShards(streamARN: streamARN)
        #expect(description.streamARN == streamARN)
        #expect(description.streamViewType == .newAndOldImages)
        let shard = try #require(shards.first)
        #expect(shard.startingSequenceNumber != nil)

        var iterator: String? = try await streams.getShardIterator(streamARN: streamARN, shardID: shard.shardID, type: .trimHorizon)
        var records: [StreamRecord] = []
        var calls = 0
        while let current = iterator, calls < 20 {
            let output = try await streams.getRecords(shardIterator: current, limit: 2)
            calls += 1
            records += output.records
            iterator = output.records.isEmpty ? nil : output.nextShardIterator
        }
        #expect(calls >= 3)  // limit 2 pages through 5 records
        #expect(records.map(\.eventName) == ["INSERT", "INSERT", "INSERT", "INSERT", "MODIFY"])
        #expect(records.map { $0.keys["sk"]?.numberText } == ["1", "2", "3", "4", "1"])
        try #require(records.count == 5)
        let first = try #require(records.first)
        #expect(first.newImage == Self.item("s", 1, ["big": .n("123456789012345678901234567890.1"), "bin": .b([1, 0])]))
        #expect(first.oldImage == nil)
        #expect(first.approximateCreationDateTime.map { $0 > before && $0 < Date().addingTimeInterval(60) } == true)
        let modify = try #require(records.last)
        #expect(modify.oldImage?["big"] == .n("123456789012345678901234567890.1"))
        #expect(modify.newImage?["v"] == .s("changed"))
        // Sequence numbers grow (as decimal numbers of any length).
        let sequence = records.map(\.sequenceNumber)
        #expect(zip(sequence, sequence.dropFirst()).allSatisfy { a, b in a.count < b.count || (a.count == b.count && a < b) })

        // Resuming after the second record starts at the third.
        let resumed = try await streams.getShardIterator(
            streamARN: streamARN, shardID: shard.shardID, type: .afterSequenceNumber(records[1].sequenceNumber)
        )
        let next = try await streams.getRecords(shardIterator: resumed, limit: 1)
        #expect(next.records.map(\.sequenceNumber) == [records[2].sequenceNumber])
        let at = try await streams.getShardIterator(
            streamARN: streamARN, shardID: shard.shardID, type: .atSequenceNumber(records[1].sequenceNumber)
        )
        #expect(try await streams.getRecords(shardIterator: at, limit: 1).records.map(\.sequenceNumber) == [records[1].sequenceNumber])

        // LATEST sees only what comes after it.
        let latest = try await streams.getShardIterator(streamARN: streamARN, shardID: shard.shardID, type: .latest)
        try await dynamoDB.putItem(table: table.tableName, item: Self.item("s", 9))
        let fresh = try await streams.getRecords(shardIterator: latest)
        #expect(fresh.records.map { $0.keys["sk"]?.numberText } == ["9"])
    }

    @Test func badIteratorIsATypedServerError() async throws {
        var configuration = configuration
        configuration.retryPolicy = .none
        let streams = DynamoDBStreams(configuration: configuration, httpClient: .shared, logger: Logger(label: "t"))
        await #expect {
            _ = try await streams.getRecords(shardIterator: "no-such-iterator")
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.statusCode == 500 && error.isRetriable && error.operation == "DynamoDBStreams.GetRecords"
                && !error.description.contains("<")
        }
    }
}

@Suite struct TransportTests {
    @Test func unreachableEndpointFailsQuicklyWithBoundedRetries() async throws {
        let configuration = AWSConfiguration(
            region: "us-east-1",
            credentialProvider: StaticCredentialProvider(accessKeyID: "AKIDPUBLIC", secretAccessKey: "SUPERSECRET"),
            endpoint: URL(string: "http://127.0.0.1:1"),
            requestTimeout: .seconds(10),
            // No elapsed-time budget to speak of: on a loaded machine even a refused connection can be slow.
            retryPolicy: AWSRetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), maxElapsed: .seconds(120))
        )
        let httpClient = HTTPClient.forTests
        let dynamoDB = DynamoDB(configuration: configuration, httpClient: httpClient, logger: Logger(label: "t"))
        let started = ContinuousClock.now
        let error = await #expect(throws: AWSError.self) {
            _ = try await dynamoDB.describeTable("anything")
        }
        let elapsed = ContinuousClock.now - started
        let text = error?.description ?? ""
        #expect(error?.type == "ConnectionError")
        #expect(error?.isRetriable == true)
        #expect(error?.attempts == 3)
        #expect(text.hasPrefix("DynamoDB.DescribeTable failed: ConnectionError: cannot reach http://127.0.0.1:1"), "\(text)")
        #expect(!text.contains("SUPERSECRET"))
        // The attempts failed on the refused connection (ConnectionError, above), not on the 10 s request
        // timeout; this bound only catches a hang.
        #expect(elapsed < .seconds(60), "took \(elapsed)")
    }
}
