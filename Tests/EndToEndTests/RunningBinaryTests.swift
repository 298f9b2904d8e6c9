import AWS
import AsyncHTTPClient
import CQRSCore
import Foundation
import JSON
import Logging
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// `fanout run` as operators run it: the HTTP endpoints answered by the running binary, and SIGTERM.
@Suite(.timeLimit(.minutes(2))) struct RunningBinaryTests {
    @Test func theRunningSidecarServesHealthReadinessStatusAndMetricsAndStopsOnSIGTERM() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let endpoint = try TestServices.awsEndpoint()
        let table = TestServices.uniqueName("http")
        let aws = AWSConfiguration(
            region: "us-east-1", credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: endpoint)!
        )
        let httpClient = HTTPClient.forTests
        let store = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: httpClient, logger: Logger(label: "t")), tableName: table)
        try await store.createTableIfMissing()
        try await store.append([GenericDomainEventMessage(eventName: "OrderPlaced", aggregateID: "o-1", aggregateType: "Order", sequenceNumber: 1, payload: [:])])

        let log = FileManager.default.temporaryDirectory.appendingPathComponent("\(table).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let arguments = [
            "run", "--brokers", brokers, "--table", table, "--application", table, "--http-port", "0", "--http-host", "127.0.0.2",
            "--routes", TestServices.packageRoot.appendingPathComponent("routes.json").path,
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["AWS_REGION"] = "us-east-1"
        environment["AWS_ACCESS_KEY_ID"] = "test"
        environment["AWS_SECRET_ACCESS_KEY"] = "test"
        environment["AWS_ENDPOINT_URL"] = endpoint
        let process = try ChildProcess(CommandLineTests.binary.path, arguments, environment: environment, standardError: .file(log))
        defer { process.terminate() }

        // The port is in the log line "status endpoint listening fanout.http.port=N".
        var port: Int?
        let deadline = ContinuousClock.now + .seconds(30)
        while port == nil, ContinuousClock.now < deadline, process.isRunning {
            try await Task.sleep(for: .milliseconds(100))
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: "fanout.http.port=") {
                port = Int(text[range.upperBound...].prefix { $0.isNumber })
            }
        }
        let base = "http://127.0.0.2:\(try #require(port, "no listening line in: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")"))"
        // --http-host: only that address answers.
        #expect(MotoServer.accepts(port: port!, host: "127.0.0.2"))
        #expect(!MotoServer.accepts(port: port!, host: "127.0.0.1"))

        func get(_ path: String) async throws -> (status: Int, body: String) {
            let response = try await HTTPClient.shared.get(url: base + path).get()
            let body = response.body.map { String(buffer: $0) } ?? ""
            return (Int(response.status.code), body)
        }
        #expect(try await get("/healthz") == (200, "ok"))

        // Wait until the event was routed, then look at status, readiness and metrics.
        var status = ""
        while !status.contains("\"recordsRead\" : 1"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            status = try await get("/status").body
        }
        #expect(status.contains("\"recordsRead\" : 1"), "\(status)")
        #expect(status.contains("\"mode\" : \"at-least-once\""))
        #expect(status.contains("\"state\" : \"reading\""))
        #expect(status.contains("\"parents\" : ["), "\(status)")
        #expect(status.contains("\"trimmedGaps\" : 0"))
        #expect(status.contains("\"checkpointAgeSeconds\" : "))
        #expect(status.contains("\"orders.events\" : 1"))
        #expect(status.contains("\"producer\" : {"), "\(status)")
        #expect(status.contains("\"rebuilds\" : 0"), "\(status)")
        let ready = try await get("/readyz")
        #expect(ready.status == 200, "\(ready.body)")
        #expect(ready.body.contains("\"producer\""), "\(ready.body)")
        var metrics = try await get("/metrics").body
        while !metrics.contains("fanout_shard_newest_record_age_seconds{"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))  // shard gauges are refreshed every 5 s
            metrics = try await get("/metrics").body
        }
        #expect(metrics.contains("fanout_shard_checkpoint_age_seconds{shard="), "\(metrics)")
        #expect(metrics.contains("fanout_stream_stalled_shards 0"))
        #expect(metrics.contains("fanout_records_read_total 1"), "\(metrics)")
        #expect(metrics.contains("# HELP fanout_records_read_total Stream records read.\n# TYPE fanout_records_read_total counter"), "\(metrics)")
        #expect(metrics.contains("fanout_kafka_producer_rebuilds_total 0"), "\(metrics)")
        #expect(metrics.contains("fanout_routes_info{"))
        #expect(metrics.contains(#"fanout_records_routed_total{topic="orders.events"} 1"#))
        #expect(metrics.contains(#"fanout_route_records_total{route="orders"} 1"#), "\(metrics)")
        #expect(metrics.contains("fanout_delivery_latency_seconds_count 1"), "\(metrics)")
        #expect(metrics.contains(#"fanout_delivery_latency_seconds_bucket{le="+Inf"} 1"#))
        #expect(metrics.contains(#"fanout_aws_requests_total{operation="DynamoDBStreams.GetRecords"}"#))
        #expect(metrics.contains(#"fanout_aws_requests_total{operation="DynamoDB.DescribeTable"} 1"#))
        // Every attempt's duration, in the finer buckets set for AWS calls.
        #expect(metrics.contains(#"fanout_aws_request_duration_seconds_count{operation="DynamoDB.DescribeTable"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"fanout_aws_request_duration_seconds_bucket{operation="DynamoDBStreams.GetRecords",le="0.075"}"#), "\(metrics)")
        #expect(try await get("/nope").status == 404)

        process.terminate()
        #expect(await process.exited() == .exited(0))
    }
}
