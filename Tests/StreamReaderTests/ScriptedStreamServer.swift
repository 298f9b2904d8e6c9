import AWS
import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import StreamReader
import Synchronization
import TestSupport
import Testing

/// A scenario for `Tests/StreamServer/stream_server.py` (see its docstring for the format).
struct StreamScenario: Encodable {
    struct Fault: Encodable {
        var nth: Int
        var times: Int = 1
        var error: String? = nil
        var status: Int? = nil
        var trimTo: Int? = nil

        static func error(_ type: String, nth: Int, times: Int = 1, trimTo: Int? = nil) -> Fault {
            Fault(nth: nth, times: times, error: type, trimTo: trimTo)
        }
        static func http(_ status: Int, nth: Int, times: Int = 1) -> Fault {
            Fault(nth: nth, times: times, status: status)
        }
    }

    struct Record: Encodable {
        var item: DynamoDBItem
        var eventName = "INSERT"
        var appearAfter: Double = 0
    }

    struct ScenarioShard: Encodable {
        var id: String
        var parent: String? = nil
        var closed = false
        var closeAfter: Double? = nil
        var appearAfter: Double = 0
        var records: [Record] = []
        var faults: [Fault] = []
    }

    var streamArn = "arn:aws:dynamodb:us-east-1:000000000000:table/events/stream/2024-01-01T00:00:00.000"
    var tableName = "events"
    var describePageSize = 100
    var getRecordsDelay: Double = 0
    var shards: [ScenarioShard]
    var describeFaults: [Fault] = []

    /// An events-table item as CQRSCore writes it.
    static func event(_ aggregateID: String, _ sequence: Int, _ name: String = "OrderPlaced", appearAfter: Double = 0) -> Record {
        Record(
            item: [
                "aggregateId": .s(aggregateID),
                "sequenceNumber": .n(String(sequence)),
                "eventName": .s(name),
                "aggregateType": .s("Order"),
                "messageId": .s(UUID().uuidString.lowercased()),
                "timestamp": .s("2024-05-01T12:00:00.000Z"),
                "payload": .m(["orderId": .s(aggregateID), "total": .n("\(sequence * 10)")]),
                "metadata": .m(["correlationId": .s("c-\(aggregateID)")]),
            ],
            appearAfter: appearAfter
        )
    }

    /// `count` events of one aggregate, sequence numbers from `first`.
    static func events(_ aggregateID: String, _ sequences: ClosedRange<Int>) -> [Record] {
        sequences.map { event(aggregateID, $0) }
    }
}

/// What the server saw (GET /_stats).
struct StreamServerStats: Decodable {
    struct IteratorRequest: Decodable {
        var shard: String
        var type: String
        var sequenceNumber: String?
    }
    struct ErrorAnswer: Decodable {
        var operation: String
        var type: String
        var status: Int
    }
    var calls: [String: Int]
    var getShardIterator: [IteratorRequest]
    var getRecordsLimits: [Int?]
    var errors: [ErrorAnswer]
    var maxConcurrentGetRecords: [String: Int]
}

/// The scripted server could not be started: the test fails with this line.
struct ServerUnavailable: Error, CustomStringConvertible {
    let description: String
}

/// Runs `stream_server.py` with a scenario on a free port for one test.
final class ScriptedStreamServer {
    let process: ChildProcess
    let endpoint: URL
    let scenario: StreamScenario
    let directory: URL

    static var scriptPath: URL {
        TestServices.packageRoot.appendingPathComponent("Tests/StreamServer/stream_server.py")
    }

    private init(process: ChildProcess, endpoint: URL, scenario: StreamScenario, directory: URL) {
        self.process = process
        self.endpoint = endpoint
        self.scenario = scenario
        self.directory = directory
    }

    static func start(_ scenario: StreamScenario) async throws -> ScriptedStreamServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("stream-server"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let scenarioFile = directory.appendingPathComponent("scenario.json")
        try JSONEncoder().encode(scenario).write(to: scenarioFile)
        let output = directory.appendingPathComponent("stdout")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let process: ChildProcess
        do {
            process = try ChildProcess(
                "/usr/bin/env", ["python3", scriptPath.path, scenarioFile.path], standardOutput: .file(output), standardError: .file(output))
        } catch {
            throw ServerUnavailable(description: "cannot start the scripted stream server (`python3 \(scriptPath.path)`): \(error); install python3")
        }
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on "), let line = text[range.upperBound...].split(separator: "\n").first,
                let url = URL(string: "http://\(line)")
            {
                return ScriptedStreamServer(process: process, endpoint: url, scenario: scenario, directory: directory)
            }
            if !process.isRunning {
                throw ServerUnavailable(description: "the scripted stream server exited at once: \(text)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.kill()
        throw ServerUnavailable(description: "the scripted stream server (\(scriptPath.path)) did not report its port within 15 s")
    }

    func stats(_ httpClient: HTTPClient) async throws -> StreamServerStats {
        let request = HTTPClientRequest(url: endpoint.appendingPathComponent("_stats").absoluteString)
        let response = try await httpClient.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return try JSONDecoder().decode(StreamServerStats.self, from: Data(body.readableBytesView))
    }

    /// Stops the server (SIGTERM, then SIGKILL after 2 s) without blocking a thread.
    func stop() async {
        await process.stop(grace: .seconds(2))
        try? FileManager.default.removeItem(at: directory)
    }
}
