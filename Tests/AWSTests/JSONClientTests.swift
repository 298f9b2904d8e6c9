import AsyncHTTPClient
import Foundation
import Logging
import Testing

@testable import AWS

/// The JSON-protocol client against a scripted server: what it sends, what it retries.
@Suite struct JSONClientTests {
    static func configuration(_ server: ScriptedServer, attempts: Int = 4, timeout: Duration = .seconds(5)) -> AWSConfiguration {
        AWSConfiguration(
            region: "eu-west-1",
            credentialProvider: StaticCredentialProvider(accessKeyID: "AKIDPUBLIC", secretAccessKey: "SUPERSECRET", sessionToken: "SESSIONTOKEN"),
            endpoint: server.url,
            requestTimeout: timeout,
            retryPolicy: AWSRetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(10), throttlingBaseDelay: .milliseconds(10))
        )
    }

    /// JSON texts equal as values (key order aside).
    static func sameJSON(_ a: String?, _ b: String) -> Bool {
        guard let a,
            let x = try? JSONSerialization.jsonObject(with: Data(a.utf8)) as? NSDictionary,
            let y = try? JSONSerialization.jsonObject(with: Data(b.utf8)) as? NSDictionary
        else { return false }
        return x == y
    }

    static let throttled = ScriptedServer.Response(
        status: 400,
        body: #"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#
    )
    static let unavailable = ScriptedServer.Response(status: 503, body: "<html><title>Service Unavailable</title></html>")

    @Test func sendsTheJSONProtocolAndRetriesThrottlingAnd5xx() async throws {
        let server = try await ScriptedServer.start([
            Self.throttled, Self.unavailable,
            .init(status: 200, body: #"{"Streams":[{"StreamArn":"arn:s1","TableName":"t","StreamLabel":"L"}]}"#),
        ])
        defer { server.stop() }
        let streams = DynamoDBStreams(configuration: Self.configuration(server), httpClient: .shared, logger: Logger(label: "t"))
        let listed = try await streams.listStreams(tableName: "t")
        #expect(listed == [StreamSummary(streamARN: "arn:s1", tableName: "t", streamLabel: "L")])

        let requests = try server.requests()
        #expect(requests.count == 3)
        let request = try #require(requests.last)
        #expect(request.path == "/")
        #expect(request.headers["x-amz-target"] == "DynamoDBStreams_20120810.ListStreams")
        #expect(request.headers["content-type"] == "application/x-amz-json-1.0")
        #expect(request.headers["x-amz-security-token"] == "SESSIONTOKEN")
        #expect(request.headers["host"] == "127.0.0.1:\(server.port)")
        let authorization = request.headers["authorization"] ?? ""
        #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDPUBLIC/"))
        #expect(authorization.contains("/eu-west-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="))
        #expect(!authorization.contains("SUPERSECRET"))
        #expect(request.body == #"{"TableName":"t"}"#)
    }

    @Test func listStreamsFollowsPages() async throws {
        let server = try await ScriptedServer.start([
            .init(status: 200, body: #"{"Streams":[{"StreamArn":"arn:1"}],"LastEvaluatedStreamArn":"arn:1"}"#),
            .init(status: 200, body: #"{"Streams":[{"StreamArn":"arn:2"}]}"#),
        ])
        defer { server.stop() }
        let streams = DynamoDBStreams(configuration: Self.configuration(server), httpClient: .shared, logger: Logger(label: "t"))
        #expect(try await streams.listStreams(tableName: nil).map(\.streamARN) == ["arn:1", "arn:2"])
        #expect(try server.requests().map(\.body) == ["{}", #"{"ExclusiveStartStreamArn":"arn:1"}"#])
    }

    @Test func describeAllShardsFollowsPagesAndDecodesLineage() async throws {
        let server = try await ScriptedServer.start([
            .init(status: 200, body: #"""
                {"StreamDescription":{"StreamArn":"arn:s","StreamStatus":"ENABLED","StreamViewType":"NEW_IMAGE",
                 "Shards":[{"ShardId":"shard-1","SequenceNumberRange":{"StartingSequenceNumber":"100","EndingSequenceNumber":"200"}}],
                 "LastEvaluatedShardId":"shard-1"}}
                """#),
            .init(status: 200, body: #"""
                {"StreamDescription":{"StreamArn":"arn:s","StreamStatus":"ENABLED","StreamViewType":"NEW_IMAGE",
                 "Shards":[{"ShardId":"shard-2","ParentShardId":"shard-1","SequenceNumberRange":{"StartingSequenceNumber":"300"}}]}}
                """#),
        ])
        defer { server.stop() }
        let streams = DynamoDBStreams(configuration: Self.configuration(server), httpClient: .shared, logger: Logger(label: "t"))
        let (description, shards) = try await streams.describeAllShards(streamARN: "arn:s")
        #expect(description.streamViewType == .newImage)
        #expect(description.lastEvaluatedShardID == nil)
        #expect(shards == [
            Shard(shardID: "shard-1", startingSequenceNumber: "100", endingSequenceNumber: "200"),
            Shard(shardID: "shard-2", parentShardID: "shard-1", startingSequenceNumber: "300"),
        ])
        #expect(shards[0].isClosed && !shards[1].isClosed)
        #expect(Self.sameJSON(try server.requests().last?.body, #"{"StreamArn":"arn:s","ExclusiveStartShardId":"shard-1"}"#))
    }

    @Test func retriesAreBoundedByAttempts() async throws {
        let server = try await ScriptedServer.start([Self.unavailable])
        defer { server.stop() }
        let client = AWSJSONClient(service: .dynamoDB, configuration: Self.configuration(server, attempts: 3), httpClient: .shared, logger: Logger(label: "t"))
        let error = await #expect(throws: AWSError.self) {
            _ = try await client.call("ListTables", jsonBody: Array("{}".utf8))
        }
        #expect(error?.type == "ServiceUnavailable")
        #expect(error?.attempts == 3)
        #expect(error?.description == "DynamoDB.ListTables failed: ServiceUnavailable: Service Unavailable (HTTP 503, after 3 attempts)")
        #expect(try server.requests().count == 3)
    }

    @Test func clientErrorsSurfaceAtOnce() async throws {
        let server = try await ScriptedServer.start([
            .init(status: 400, body: #"{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}"#)
        ])
        defer { server.stop() }
        let dynamoDB = DynamoDB(configuration: Self.configuration(server), httpClient: .shared, logger: Logger(label: "t"))
        let error = await #expect(throws: AWSError.self) {
            try await dynamoDB.putItem(table: "t", item: ["pk": "x"])
        }
        #expect(error?.type == "ValidationException")
        #expect(error?.attempts == 1)
        #expect(try server.requests().count == 1)
    }

    @Test(arguments: [
        #"{"Records":[{"eventID":"1","eventName":"INSERT","dynamodb":{"Keys":{}}}]}"#,  // no SequenceNumber
        #"{"Records":[{"eventID":"1","eventName":"INSERT","dynamodb":{"SequenceNumber":"1","NewImage":{"a":{"N":1}}}}]}"#,
        #"{"Records":[{"eventID":"1","eventName":"INSERT","dynamodb":{"SequenceNumber":"1","Keys":{"a":{"B":"%%"}}}}"#,
        #"{"Records": [{"eventID": "1", "eventN"#,  // truncated
        "not json at all",
    ])
    func malformedAnswersAreInvalidResponseErrors(_ body: String) async throws {
        let server = try await ScriptedServer.start([.init(status: 200, body: body)])
        defer { server.stop() }
        let streams = DynamoDBStreams(configuration: Self.configuration(server), httpClient: .shared, logger: Logger(label: "t"))
        let error = await #expect(throws: AWSError.self) {
            _ = try await streams.getRecords(shardIterator: "it")
        }
        #expect(error?.type == "InvalidResponse")
        #expect(error?.isRetriable == false)
        #expect(error?.operation == "DynamoDBStreams.GetRecords")
    }

    @Test func decodesRecordsWithAllFields() async throws {
        let server = try await ScriptedServer.start([
            .init(status: 200, body: #"""
                {"Records":[{"eventID":"e1","eventName":"MODIFY","awsRegion":"eu-west-1","eventSource":"aws:dynamodb","eventVersion":"1.1",
                  "dynamodb":{"ApproximateCreationDateTime":1700000000.5,"Keys":{"pk":{"S":"a"}},
                  "NewImage":{"pk":{"S":"a"},"n":{"N":"1e400"}},"OldImage":{"pk":{"S":"a"}},
                  "SequenceNumber":"4000000000000000000000000001","SizeBytes":42,"StreamViewType":"NEW_AND_OLD_IMAGES"}}],
                 "NextShardIterator":"next"}
                """#)
        ])
        defer { server.stop() }
        let streams = DynamoDBStreams(configuration: Self.configuration(server), httpClient: .shared, logger: Logger(label: "t"))
        let output = try await streams.getRecords(shardIterator: "it", limit: 10)
        #expect(output.nextShardIterator == "next")
        let record = try #require(output.records.first)
        #expect(record.eventID == "e1" && record.eventName == "MODIFY" && record.awsRegion == "eu-west-1")
        #expect(record.keys == ["pk": "a"])
        #expect(record.newImage?["n"] == .n("1e400"))
        #expect(record.oldImage == ["pk": "a"])
        #expect(record.sequenceNumber == "4000000000000000000000000001")
        #expect(record.approximateCreationDateTime == Date(timeIntervalSince1970: 1_700_000_000.5))
        #expect(record.sizeBytes == 42)
        #expect(Self.sameJSON(try server.requests().first?.body, #"{"ShardIterator":"it","Limit":10}"#))
    }

    @Test func aServerThatDoesNotAnswerTimesOut() async throws {
        let server = try await ScriptedServer.start([.init(status: 200, body: "{}", delay: 30)])
        defer { server.stop() }
        let client = AWSJSONClient(
            service: .dynamoDB,
            configuration: Self.configuration(server, attempts: 2, timeout: .milliseconds(300)),
            httpClient: .shared,
            logger: Logger(label: "t")
        )
        let started = ContinuousClock.now
        let error = await #expect(throws: AWSError.self) {
            _ = try await client.call("ListTables", jsonBody: Array("{}".utf8))
        }
        #expect(error?.type == "RequestTimeout")
        #expect(error?.attempts == 2)
        // Without the timeout this would take 60 s; the margin is for a loaded 2-core machine.
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func cancellationStopsTheCallAndItsRetries() async throws {
        let server = try await ScriptedServer.start([.init(status: 200, body: "{}", delay: 30)])
        defer { server.stop() }
        let client = AWSJSONClient(
            service: .dynamoDB, configuration: Self.configuration(server, attempts: 5),
            httpClient: .shared, logger: Logger(label: "t")
        )
        let started = ContinuousClock.now
        let task = Task { try await client.call("ListTables", jsonBody: Array("{}".utf8)) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        await #expect(throws: CancellationError.self) {
            _ = try await task.value
        }
        // The response would take 30 s: the call must end well before it (generous for a loaded 2-core machine).
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(try server.requests().count == 1)
    }
}
