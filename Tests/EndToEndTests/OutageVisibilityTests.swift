import AsyncHTTPClient
import CQRSCore
import Foundation
import JSON
import Logging
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// A Kafka outage seen from outside, as an operator sees it: `fanout run` routing, its broker (a noida-db of the
/// test's own) frozen with SIGSTOP while events keep coming. The log says when Kafka became unreachable and when
/// it is back (and for how long it was gone); the shard waiting on Kafka is flagged stalled after the stall
/// timeout (60 s); its lag is measured against now and grows; `/readyz` fails; and the metrics that the alerts
/// in docs/operations.md use say so. Then the broker thaws and every event arrives.
@Suite(.serialized, .timeLimit(.minutes(5))) struct OutageVisibilityTests {
    static let logger = Logger(label: "outage-visibility-test")

    static func get(_ port: Int, _ path: String) async throws -> (status: UInt, body: String) {
        let response = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(port)\(path)").get()
        return (response.status.code, response.body.map { String(buffer: $0) } ?? "")
    }

    /// The value of a Prometheus sample line `name{labels} value` or `name value` (the first one).
    static func sample(_ metrics: String, _ name: String) -> Double? {
        for line in metrics.split(separator: "\n") where line.hasPrefix(name + " ") || line.hasPrefix(name + "{") {
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { return value }
        }
        return nil
    }

    @Test func aFrozenBrokerIsLoggedStalledLaggingAndAlertedThenRecovered() async throws {
        let own = try await OwnBrokerSidecar("outage-visible", logger: Self.logger)
        defer { own.stop() }
        let (broker, setup) = (own.broker, own.setup)
        let (fanout, log) = try own.start("run")
        defer { fanout.kill() }
        try await own.write(0..<6)
        _ = try await BrokerRestartTests.waitFor("the first 6 events routed", seconds: 60) { () async throws -> Bool? in
            try await BrokerRestartTests.read(setup.topic, brokers: broker.brokers).count >= 6 ? true : nil
        }
        let port = try #require(log().range(of: "fanout.http.port=").flatMap { Int(log()[$0.upperBound...].prefix { $0.isNumber }) })
        func shard() async throws -> [String: Any]? {
            (try await BrokerRestartTests.statusJSON(log: log())["shards"] as? [[String: Any]])?.first
        }
        // Caught up: no lag.
        _ = try await BrokerRestartTests.waitFor("the shard caught up (lag 0)", seconds: 30) { () async throws -> Bool? in
            try await shard()?["lagSeconds"] as? Double == 0 ? true : nil
        }

        broker.process?.signal(SIGSTOP)
        let frozen = ContinuousClock.now
        try await own.write(6..<9)
        // The log says so (the background check asks Kafka every 10 s, with a 5 s timeout).
        _ = try await BrokerRestartTests.waitFor("a log line saying Kafka is unreachable", seconds: 40) {
            log().contains("Kafka is unreachable") ? true : nil
        }
        // Stalled once the shard waited the stall timeout (60 s) on Kafka; the lag grows, measured against now.
        let stalled = try await BrokerRestartTests.waitFor("the shard flagged stalled", seconds: 100) { () async throws -> [String: Any]? in
            let entry = try await shard()
            return entry?["stalled"] as? Bool == true ? entry : nil
        }
        let stalledAfter = ContinuousClock.now - frozen
        let lag = try #require(stalled["lagSeconds"] as? Double)
        #expect(lag >= 50, "lag when stalled: \(lag) s, \(stalledAfter) after the freeze")
        try await Task.sleep(for: .seconds(2))
        let laterLag = try #require(try await shard()?["lagSeconds"] as? Double)
        #expect(laterLag >= lag + 1.5, "the lag did not grow: \(lag) then \(laterLag)")
        #expect((stalled["newestRecordAgeSeconds"] as? Double ?? 0) >= 50, "newest record age: \(stalled)")
        // Readiness fails, naming the shards check (and the Kafka check, by now).
        let ready = try await Self.get(port, "/readyz")
        #expect(ready.status == 503 && ready.body.contains("stalled"), "readyz: \(ready)")
        // The alert expressions of docs/operations.md, on what the sidecar exposes (the gauges refresh every 5 s).
        _ = try await BrokerRestartTests.waitFor("the stall in /metrics", seconds: 15) { () async throws -> Bool? in
            (Self.sample(try await Self.get(port, "/metrics").body, "fanout_stream_stalled_shards") ?? 0) > 0 ? true : nil
        }
        let metrics = try await Self.get(port, "/metrics").body
        #expect(Self.sample(metrics, "fanout_shard_stalled") == 1, "fanout_shard_stalled")
        let lagMetric = try #require(Self.sample(metrics, "fanout_shard_lag_seconds"), "fanout_shard_lag_seconds missing: \(metrics)")
        #expect(lagMetric >= 50, "fanout_shard_lag_seconds \(lagMetric)")
        #expect(Self.sample(metrics, "fanout_shard_newest_record_age_seconds").map { $0 >= 50 } == true)
        let operations = try String(contentsOf: TestServices.packageRoot.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        #expect(operations.contains("fanout_stream_stalled_shards > 0") && operations.contains("max(fanout_shard_lag_seconds) >"), "the documented alerts changed; check them here")

        // Thawed: the end of the outage is logged with its length, every event arrives, the shard is no longer stalled.
        broker.process?.signal(SIGCONT)
        _ = try await BrokerRestartTests.waitFor("a log line saying Kafka is back", seconds: 40) {
            log().contains("Kafka is reachable again after") ? true : nil
        }
        _ = try await BrokerRestartTests.waitFor("all 9 events routed", seconds: 60) { () async throws -> Bool? in
            Set(try await BrokerRestartTests.read(setup.topic, brokers: broker.brokers).map(BrokerRestartTests.tag))
                .isSuperset(of: Set((0..<9).map { "n\($0)" })) ? true : nil
        }
        _ = try await BrokerRestartTests.waitFor("the shard no longer stalled and caught up", seconds: 30) { () async throws -> Bool? in
            let entry = try await shard()
            return entry?["stalled"] as? Bool == false && entry?["lagSeconds"] as? Double == 0 ? true : nil
        }
        fanout.terminate()
        #expect(await fanout.exited(timeout: .seconds(40)) == .exited(0))
    }
}
