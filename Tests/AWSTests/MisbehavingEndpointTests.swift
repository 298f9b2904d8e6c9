import AsyncHTTPClient
import Foundation
import Logging
import Testing

@testable import AWS

/// A misbehaving endpoint (issue 11, point 5), played by the scripted server: every misbehaviour is cut
/// off by the request timeout or the response size limit and retried, the call never hangs, and no more
/// than the size limit is ever held.
@Suite struct MisbehavingEndpointTests {
    static let ok = ScriptedServer.Response(status: 200, body: #"{"Records":[],"NextShardIterator":"next"}"#)

    static func client(_ server: ScriptedServer, attempts: Int, timeout: Duration = .seconds(2)) -> DynamoDBStreams {
        let configuration = AWSConfiguration(
            region: "us-east-1",
            credentialProvider: StaticCredentialProvider(accessKeyID: "AKID", secretAccessKey: "SECRET"),
            endpoint: server.url,
            requestTimeout: timeout,
            retryPolicy: AWSRetryPolicy(maxAttempts: attempts, baseDelay: .milliseconds(10), throttlingBaseDelay: .milliseconds(10))
        )
        return DynamoDBStreams(configuration: configuration, httpClient: .shared, logger: Logger(label: "misbehaving"))
    }

    @Test func aSlowAnswerIsCutOffAndRetried() async throws {
        let server = try await ScriptedServer.start([.init(status: 200, body: "{}", delay: 30), Self.ok])
        defer { server.stop() }
        let started = ContinuousClock.now
        let output = try await Self.client(server, attempts: 3, timeout: .seconds(1)).getRecords(shardIterator: "it")
        #expect(output.nextShardIterator == "next")
        #expect(try server.requests().count == 2)
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func aResponseThatNeverEndsIsCutOffByTheRequestTimeoutAndRetried() async throws {
        let server = try await ScriptedServer.start([.init(status: 200, body: "", behavior: "trickle"), Self.ok])
        defer { server.stop() }
        let started = ContinuousClock.now
        let output = try await Self.client(server, attempts: 3, timeout: .seconds(1)).getRecords(shardIterator: "it")
        #expect(output.nextShardIterator == "next")
        #expect(try server.requests().count == 2)
        // The trickle would last 120 s; the margin is for a loaded 2-core machine.
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func aResponseThatNeverEndsFailsWithATimeoutOnceTheAttemptsAreSpent() async throws {
        let server = try await ScriptedServer.start([.init(status: 200, body: "", behavior: "trickle")])
        defer { server.stop() }
        let error = await #expect(throws: AWSError.self) {
            _ = try await Self.client(server, attempts: 2, timeout: .seconds(1)).getRecords(shardIterator: "it")
        }
        #expect(error?.type == AWSError.requestTimeout)
        #expect(error?.attempts == 2)
        #expect(error?.description.contains("did not end within 1.0 seconds") == true, "\(String(describing: error))")
    }

    @Test func aConnectionResetMidBodyIsRetried() async throws {
        let server = try await ScriptedServer.start([.init(status: 200, body: "", behavior: "reset"), Self.ok])
        defer { server.stop() }
        let output = try await Self.client(server, attempts: 3).getRecords(shardIterator: "it")
        #expect(output.nextShardIterator == "next")
        #expect(try server.requests().count == 2)
    }

    @Test func aGiantBodyIsCutOffAtTheSizeLimitAndRetried() async throws {
        let giant = ScriptedServer.Response(status: 200, body: "", behavior: "giant", size: 4 * AWSJSONClient.maxResponseBytes)
        let server = try await ScriptedServer.start([giant, Self.ok])
        defer { server.stop() }
        let output = try await Self.client(server, attempts: 3, timeout: .seconds(15)).getRecords(shardIterator: "it")
        #expect(output.nextShardIterator == "next")
        #expect(try server.requests().count == 2)

        let always = try await ScriptedServer.start([giant])
        defer { always.stop() }
        let error = await #expect(throws: AWSError.self) {
            _ = try await Self.client(always, attempts: 2, timeout: .seconds(15)).getRecords(shardIterator: "it")
        }
        #expect(error?.type == AWSError.responseTooLarge)
        #expect(error?.message == "response body larger than 33554432 bytes")
        #expect(error?.attempts == 2)
    }
}
