import AWS
import AsyncHTTPClient
import CQRSCore
import ExampleDomain
import FanoutApp
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Prometheus
import Router
import ServiceLifecycle
import Settings
import TestSupport
import Testing

/// The operator endpoint: `/healthz`, `/readyz`, `/status`, `/metrics`.
@Suite(.timeLimit(.minutes(2))) struct HTTPEndpointTests {
    static let logger = Logger(label: "http-test")

    static let loadedAt = Date(timeIntervalSince1970: 1_735_787_045)  // 2025-01-02T03:04:05Z

    /// A status as a running sidecar would report it, with a failed reload.
    static let handBuiltStatus = SidecarStatus(
        mode: "exactly-once",
        application: "orders",
        streamARN: "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2025-01-01T00:00:00.000",
        routes: .init(
            path: "/etc/fanout/routes.json", hash: "ab12cd", version: 3, routeCount: 5, topicCount: 4, loadedAt: loadedAt,
            reloads: 2, reloadFailures: 1, lastError: "routes[2].to: topic \"x\" is not declared", lastErrorAt: loadedAt.addingTimeInterval(60)
        ),
        counts: .init(recordsRead: 7, routedByTopic: ["orders": 4, "billing": 3], unroutedByEventName: ["Ping": 1], deadLettered: 1, ignored: 2)
    )

    static let ready = Readiness(checks: [
        .init(name: "routes", ok: true, detail: "5 routes, hash ab12cd"),
        .init(name: "kafka", ok: true, detail: "1 broker"),
    ])

    static func makeApp(
        port: Int = 0,
        host: String = "127.0.0.1",
        status: SidecarStatus = handBuiltStatus,
        readiness: Readiness = ready,
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        makeStatusApplication(
            port: port, host: host, status: { status }, readiness: { readiness }, metrics: metrics, logger: logger,
            onServerRunning: onServerRunning
        )
    }

    static func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
        return try #require(object as? [String: Any], "not a JSON object: \(String(buffer: buffer))")
    }

    @Test func healthzSaysOK() async throws {
        try await Self.makeApp().test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok")
            }
        }
    }

    @Test func unknownPathIsNotFound() async throws {
        try await Self.makeApp().test(.router) { client in
            for uri in ["/", "/health", "/status/extra"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .notFound, "\(uri)")
                }
            }
        }
    }

    @Test func readyzIs200WithTheChecksWhenReady() async throws {
        try await Self.makeApp().test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                let body = try Self.json(response.body)
                #expect(body["isReady"] as? Bool == true)
                let checks = try #require(body["checks"] as? [[String: Any]])
                #expect(checks.map { $0["name"] as? String } == ["routes", "kafka"])
                #expect(checks.allSatisfy { $0["ok"] as? Bool == true })
            }
        }
    }

    @Test func readyzIs503NamingTheFailingCheck() async throws {
        let notReady = Readiness(checks: [
            .init(name: "routes", ok: true, detail: "5 routes"),
            .init(name: "kafka", ok: false, detail: "no broker answered within 5 s"),
            .init(name: "aws", ok: true, detail: "stream ENABLED"),
        ])
        #expect(!notReady.isReady)
        try await Self.makeApp(readiness: notReady).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = try Self.json(response.body)
                #expect(body["isReady"] as? Bool == false)
                let checks = try #require(body["checks"] as? [[String: Any]])
                let failing = checks.filter { $0["ok"] as? Bool == false }
                #expect(failing.map { $0["name"] as? String } == ["kafka"])
                #expect(failing.first?["detail"] as? String == "no broker answered within 5 s")
            }
        }
    }

    @Test func statusIsStableJSONWithISO8601Dates() async throws {
        try await Self.makeApp().test(.router) { client in
            let first = try await client.execute(uri: "/status", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                return String(buffer: response.body)
            }
            let second = try await client.execute(uri: "/status", method: .get) { String(buffer: $0.body) }
            #expect(first == second)

            // Keys sorted, so the output is the same on every request and every run.
            let topLevel = ["\"application\"", "\"counts\"", "\"mode\"", "\"routes\"", "\"shards\"", "\"streamARN\""]
            let offsets = topLevel.compactMap { first.range(of: $0)?.lowerBound }
            #expect(offsets.count == topLevel.count && offsets == offsets.sorted(), "\(first)")

            let body = try Self.json(ByteBuffer(string: first))
            #expect(body["mode"] as? String == "exactly-once")
            #expect(body["application"] as? String == "orders")
            #expect(body["streamARN"] as? String == Self.handBuiltStatus.streamARN)
            #expect((body["shards"] as? [Any])?.isEmpty == true)
            let routes = try #require(body["routes"] as? [String: Any])
            #expect(routes["path"] as? String == "/etc/fanout/routes.json")
            #expect(routes["hash"] as? String == "ab12cd")
            #expect(routes["version"] as? Int == 3)
            #expect(routes["routeCount"] as? Int == 5)
            #expect(routes["topicCount"] as? Int == 4)
            #expect(routes["loadedAt"] as? String == "2025-01-02T03:04:05Z")
            #expect(routes["reloads"] as? Int == 2)
            #expect(routes["reloadFailures"] as? Int == 1)
            #expect(routes["lastError"] as? String == "routes[2].to: topic \"x\" is not declared")
            #expect(routes["lastErrorAt"] as? String == "2025-01-02T03:05:05Z")
            let counts = try #require(body["counts"] as? [String: Any])
            #expect(counts["recordsRead"] as? Int == 7)
            #expect(counts["routedByTopic"] as? [String: Int] == ["orders": 4, "billing": 3])
            #expect(counts["unroutedByEventName"] as? [String: Int] == ["Ping": 1])
            #expect(counts["deadLettered"] as? Int == 1)
            #expect(counts["ignored"] as? Int == 2)
        }
    }

    @Test func statusWritesNullForNoReloadError() async throws {
        var status = Self.handBuiltStatus
        status.routes.lastError = nil
        status.routes.lastErrorAt = nil
        try await Self.makeApp(status: status).test(.router) { client in
            try await client.execute(uri: "/status", method: .get) { response in
                let routes = try #require(try Self.json(response.body)["routes"] as? [String: Any])
                #expect(routes["lastError"] is NSNull)
                #expect(routes["lastErrorAt"] is NSNull)
            }
        }
    }

    @Test func metricsExposesTheRegistryInPrometheusTextFormat() async throws {
        // A swift-metrics counter, as the router makes them, through a Prometheus factory passed
        // explicitly: MetricsSystem allows one bootstrap per process and another suite owns it.
        let registry = PrometheusCollectorRegistry()
        let counter = Counter(
            label: "fanout_records_routed_total", dimensions: [("topic", "orders")], factory: PrometheusMetricsFactory(registry: registry)
        )
        counter.increment(by: 3)
        try await Self.makeApp(metrics: registry).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
                let text = String(buffer: response.body)
                #expect(text.contains("# TYPE fanout_records_routed_total counter"), "\(text)")
                #expect(text.contains(#"fanout_records_routed_total{topic="orders"} 3"#), "\(text)")
            }
            counter.increment()
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(String(buffer: response.body).contains(#"fanout_records_routed_total{topic="orders"} 4"#))
            }
        }
    }

    @Test func everyMetricHasAHelpLine() async throws {
        let factory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
        let registry = factory.registry
        Counter(label: "fanout_records_read_total", factory: factory).increment()
        Gauge(label: "fanout_shard_stalled", dimensions: [("shard", "s-1")], factory: factory).record(0)
        Metrics.Timer(label: "fanout_delivery_latency_seconds", factory: factory).recordSeconds(0.5)
        Counter(label: "fanout_not_yet_documented_total", factory: factory).increment()
        try await Self.makeApp(metrics: registry).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                let lines = String(buffer: response.body).split(separator: "\n").map(String.init)
                let types = lines.indices.filter { lines[$0].hasPrefix("# TYPE ") }
                #expect(types.count == 4, "\(lines)")
                for index in types {
                    let name = lines[index].split(separator: " ")[2]
                    #expect(index > 0 && lines[index - 1].hasPrefix("# HELP \(name) "), "\(lines)")
                }
                #expect(lines.contains("# HELP fanout_records_read_total Stream records read."))
                #expect(lines.contains("# HELP fanout_not_yet_documented_total Fanout metric fanout_not_yet_documented_total (docs/operations.md)."))
                #expect(lines.filter { $0.hasPrefix("# HELP ") }.count == 4)
            }
        }
    }

    @Test func everyDocumentedMetricHasItsOwnHelpText() throws {
        let operations = try String(contentsOf: TestServices.packageRoot.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let documented = operations.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `fanout_") else { return nil }
            return String(line.dropFirst(3).prefix { $0 != "`" && $0 != "{" })
        }
        #expect(documented.count > 20)
        #expect(documented.filter { MetricsHelp.texts[$0] == nil } == [])
    }

    @Test func liveServerAnswersAHTTPClient() async throws {
        try await Self.makeApp().test(.live) { client in
            let port = try #require(client.port)
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://localhost:\(port)/healthz"), timeout: .seconds(10))
            #expect(response.status == .ok)
            #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "ok")
        }
    }

    /// As the sidecar runs it: a service in a `ServiceGroup`, on port 0, reporting the port it bound.
    @Test func runsAsAServiceOnPortZeroAndReportsTheBoundPort() async throws {
        let (ports, portsContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Self.makeApp(port: 0, onServerRunning: { port in portsContinuation.yield(port) })
        let group = ServiceGroup(configuration: .init(services: [app], logger: Self.logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let reported = await iterator.next()
            let port = try #require(reported)
            #expect(port > 0)
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/readyz"), timeout: .seconds(10))
            #expect(response.status == .ok)
            let body = try Self.json(try await response.body.collect(upTo: 64 * 1024))
            #expect(body["isReady"] as? Bool == true)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// `/status` of a real sidecar (moto + noida-db) after it routed one event.
    @Test func statusOfARealSidecar() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try PipelineTests.awsConfiguration()
        let topics = PipelineTests.Topics()
        let routesPath = try topics.write()
        let table = TestServices.uniqueName("http-events")
        let httpClient = HTTPClient.forTests
        let store = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: httpClient, logger: Self.logger), tableName: table)
        let streamARN = try #require(try await store.createTableIfMissing())

        let sidecar = try await Sidecar.make(
            configuration: SidecarConfiguration(brokers: brokers, routesPath: routesPath, tableName: table, application: "http-test", aws: aws),
            logger: Self.logger
        )
        let running = Task { try await sidecar.run() }
        let stopped: @Sendable () async throws -> Void = {
            sidecar.requestStop()
            try await running.value
        }
        do {
            _ = try await makeExampleDispatcher(store: store).dispatch(
                try GenericCommandMessage(PlaceOrder(orderId: "o-1", customerId: "alice", total: 10.5, items: ["a"]))
            )
            let deadline = ContinuousClock.now + .seconds(60)
            while sidecar.status.counts.routedByTopic[topics.orders] != 1, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            let app = makeStatusApplication(
                port: 0, status: { sidecar.status }, readiness: { Readiness(checks: []) }, metrics: PrometheusCollectorRegistry(),
                logger: Self.logger
            )
            try await app.test(.router) { client in
                try await client.execute(uri: "/status", method: .get) { response in
                    #expect(response.status == .ok)
                    let body = try Self.json(response.body)
                    #expect(body["mode"] as? String == "at-least-once")
                    #expect(body["application"] as? String == "http-test")
                    #expect(body["streamARN"] as? String == streamARN)
                    let routes = try #require(body["routes"] as? [String: Any])
                    #expect(routes["path"] as? String == routesPath)
                    #expect(routes["hash"] as? String == sidecar.routes.status.hash)
                    #expect((routes["hash"] as? String)?.count == 64)
                    #expect(routes["version"] as? Int == 1)
                    #expect(routes["routeCount"] as? Int == 5)
                    #expect(routes["topicCount"] as? Int == 5)  // four topics and the dead-letter topic
                    #expect(routes["reloads"] as? Int == 0)
                    #expect(routes["lastError"] is NSNull)
                    let loadedAt = try #require(routes["loadedAt"] as? String)
                    #expect(ISO8601DateFormatter().date(from: loadedAt) != nil, "\(loadedAt)")
                    let counts = try #require(body["counts"] as? [String: Any])
                    #expect(counts["recordsRead"] as? Int == 1)
                    // OrderPlaced goes to the orders and billing topics.
                    #expect(counts["routedByTopic"] as? [String: Int] == [topics.orders: 1, topics.billing: 1])
                    #expect(counts["deadLettered"] as? Int == 0)
                }
            }
        } catch {
            try? await stopped()
            throw error
        }
        try await stopped()
    }
}
