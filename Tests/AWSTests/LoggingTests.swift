import AsyncHTTPClient
import Foundation
import Logging
import Testing

@testable import AWS

/// Collects every log line in memory.
final class RecordingLogHandler: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        lock.withLock { lines.append("\(event.level) \(event.message) \(all)") }
    }

    var text: String { lock.withLock { lines.joined(separator: "\n") } }
    var count: Int { lock.withLock { lines.count } }
}

@Suite struct LoggingTests {
    @Test func traceLogsNeverContainTheSecretOrToken() async throws {
        let server = try await ScriptedServer.start([
            JSONClientTests.unavailable,
            .init(status: 400, body: #"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"gone"}"#),
        ])
        defer { server.stop() }
        let handler = RecordingLogHandler()
        let logger = Logger(label: "aws-test") { _ in handler }
        let dynamoDB = DynamoDB(configuration: JSONClientTests.configuration(server), httpClient: .shared, logger: logger)
        await #expect(throws: AWSError.self) {
            _ = try await dynamoDB.describeTable("t")
        }
        #expect(handler.count > 0)  // the retry is logged at debug level
        #expect(handler.text.contains("retrying"))
        #expect(!handler.text.contains("SUPERSECRET"))
        #expect(!handler.text.contains("SESSIONTOKEN"))
    }
}
