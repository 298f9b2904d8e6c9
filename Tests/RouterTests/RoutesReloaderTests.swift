import CQRSCore
import Foundation
import JSON
import Logging
import Metrics
import MetricsTestKit
@testable import Router
import ServiceLifecycleTestKit
import TestSupport
import Testing

/// Hot reload of the routes file, without Kafka (topic creation is covered end to end).
@Suite(.serialized) struct RoutesReloaderTests {
    static let metrics: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)  // once per test process; no other suite bootstraps metrics
        return metrics
    }()

    static func routes(_ eventPattern: String, to topic: String = "t") -> String {
        #"{"version": 1, "topics": {"\#(topic)": {}}, "routes": [{"name": "r", "events": ["\#(eventPattern)"], "to": ["\#(topic)"]}]}"#
    }

    struct Fixture {
        let directory: URL
        let path: String
        let live: LiveRoutes
        let reloader: RoutesReloader

        init(_ text: String) throws {
            _ = RoutesReloaderTests.metrics
            directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("reload"))
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            path = directory.appendingPathComponent("routes.json").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            live = LiveRoutes(CompiledRoutes(try RoutesFile.load(path: path)), path: path)
            reloader = RoutesReloader(path: path, live: live, pollInterval: .milliseconds(20), logger: Logger(label: "reload-test"))
        }

        func write(_ text: String) throws {
            // A new inode each time, as editors and ConfigMaps do; the mtime alone may not move within a second.
            let temporary = path + ".tmp"
            try text.write(toFile: temporary, atomically: false, encoding: .utf8)
            #expect(rename(temporary, path) == 0)
        }
    }

    static func topics(_ live: LiveRoutes, _ name: String) -> [String] {
        live.current.targets(for: GenericDomainEventMessage(eventName: name, aggregateID: "a", aggregateType: "T", sequenceNumber: 1, payload: [:])).map(\.topic)
    }

    @Test func aChangedFileIsSwappedInAndItsHashShown() async throws {
        let fixture = try Fixture(Self.routes("A"))
        let before = fixture.live.status
        #expect(Self.topics(fixture.live, "B").isEmpty)
        let reloadsBefore = Self.metrics.counterTotal(label: "fanout_routes_reloads_total")

        try fixture.write(Self.routes("B"))
        await fixture.reloader.checkForChanges()

        #expect(Self.topics(fixture.live, "B") == ["t"])
        #expect(Self.topics(fixture.live, "A").isEmpty)
        let after = fixture.live.status
        #expect(after.hash != before.hash)
        #expect(after.hash == (try RoutesFile.load(path: fixture.path)).contentHash)
        #expect(after.reloads == 1)
        #expect(after.lastError == nil)
        #expect(Self.metrics.counterTotal(label: "fanout_routes_reloads_total") == reloadsBefore + 1)
        let info = try Self.metrics.expectGauge("fanout_routes_info", [("hash", String(after.hash.prefix(12))), ("version", "1")])
        #expect(info.lastValue == 1)
        // The previous file's series is gone (one series, however many reloads).
        #expect(throws: (any Error).self) {
            try Self.metrics.expectGauge("fanout_routes_info", [("hash", String(before.hash.prefix(12))), ("version", "1")])
        }
    }

    @Test func anInvalidFileLeavesTheLastGoodRoutesAndIsReportedOncePerVersion() async throws {
        let fixture = try Fixture(Self.routes("A"))
        let failuresBefore = Self.metrics.counterTotal(label: "fanout_routes_reload_failures_total")

        try fixture.write(#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["B"], "to": ["nope"]}]}"#)
        #expect(await fixture.reloader.reloadNow() == false)
        #expect(await fixture.reloader.reloadNow() == false)  // the same bad file again: not a new failure

        #expect(Self.topics(fixture.live, "A") == ["t"])
        let status = fixture.live.status
        #expect(status.lastError?.contains("$.routes[0].to[0]: topic \"nope\" is not declared") == true)
        #expect(status.lastError?.hasPrefix(fixture.path + ":1:") == true)
        #expect(status.reloadFailures == 1)
        #expect(Self.metrics.counterTotal(label: "fanout_routes_reload_failures_total") == failuresBefore + 1)
        #expect(try Self.metrics.expectGauge("fanout_routes_reload_failing").lastValue == 1)

        // A good file clears the error.
        try fixture.write(Self.routes("C"))
        #expect(await fixture.reloader.reloadNow() == true)
        #expect(Self.topics(fixture.live, "C") == ["t"])
        #expect(fixture.live.status.lastError == nil)
        #expect(try Self.metrics.expectGauge("fanout_routes_reload_failing").lastValue == 0)
    }

    @Test func aSymlinkSwapLikeAConfigMapIsSeen() async throws {
        // Kubernetes mounts routes.json -> ..data/routes.json, ..data -> ..2026_11_27_1; an update swaps ..data.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("configmap"))
        let first = root.appendingPathComponent("..v1")
        let second = root.appendingPathComponent("..v2")
        try FileManager.default.createDirectory(at: first, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: second, withIntermediateDirectories: true)
        try Self.routes("A").write(to: first.appendingPathComponent("routes.json"), atomically: true, encoding: .utf8)
        try Self.routes("B").write(to: second.appendingPathComponent("routes.json"), atomically: true, encoding: .utf8)
        let data = root.appendingPathComponent("..data")
        try FileManager.default.createSymbolicLink(atPath: data.path, withDestinationPath: "..v1")
        let path = root.appendingPathComponent("routes.json").path
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "..data/routes.json")

        let live = LiveRoutes(CompiledRoutes(try RoutesFile.load(path: path)), path: path)
        let reloader = RoutesReloader(path: path, live: live, pollInterval: .milliseconds(20), logger: Logger(label: "t"))
        let watching = Task { await reloader.run() }
        #expect(Self.topics(live, "A") == ["t"])

        let swap = root.appendingPathComponent("..data_tmp")
        try FileManager.default.createSymbolicLink(atPath: swap.path, withDestinationPath: "..v2")
        #expect(rename(swap.path, data.path) == 0)

        let deadline = ContinuousClock.now + .seconds(10)
        while Self.topics(live, "B").isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        watching.cancel()
        #expect(Self.topics(live, "B") == ["t"])
        #expect(Self.topics(live, "A").isEmpty)
    }

    /// The reloader is a lifecycle service: it reloads while it runs, and a graceful shutdown ends its run (no
    /// cancellation needed), as the sidecar's ServiceGroup relies on.
    @Test(.timeLimit(.minutes(1))) func theReloaderServiceEndsOnGracefulShutdown() async throws {
        let fixture = try Fixture(Self.routes("A"))
        let reloader = RoutesReloader(path: fixture.path, live: fixture.live, pollInterval: .milliseconds(20), logger: Logger(label: "t"))
        try await testGracefulShutdown { trigger in
            let running = Task { await reloader.run() }
            try fixture.write(Self.routes("B"))
            let deadline = ContinuousClock.now + .seconds(20)
            while Self.topics(fixture.live, "B").isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(Self.topics(fixture.live, "B") == ["t"], "the running service did not reload the changed file")
            trigger.triggerGracefulShutdown()
            await running.value
            #expect(!running.isCancelled)
        }
    }

    @Test func anUnchangedFileIsNotReloaded() async throws {
        let fixture = try Fixture(Self.routes("A"))
        await fixture.reloader.checkForChanges()
        #expect(fixture.live.status.reloads == 0)
        // Touching the file with the same content is not a reload either.
        try fixture.write(Self.routes("A"))
        await fixture.reloader.checkForChanges()
        #expect(fixture.live.status.reloads == 0)
    }
}
