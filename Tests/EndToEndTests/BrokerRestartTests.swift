import AWS
import AsyncHTTPClient
import CQRSCore
import Contracts
import Foundation
import JSON
import Kafka
import Logging
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// `fanout run` routing while its Kafka broker (a noida-db of the test's own, on its own port and data
/// directory) is killed with SIGKILL and started again on the same data 8 s later, while events keep coming:
/// every event written before, during and after the outage must end up in the topic, in order per aggregate,
/// with no duplicate in exactly-once mode.
///
/// Killed in the middle of the traffic, noida-db drops what it acknowledged in its last second, and the
/// at-least-once producer's next batch then breaks the sequence: librdkafka raises a fatal error ("out of order
/// sequence number ... sequence desynchronization"). Before the producer replaced its handle on a fatal error,
/// the sidecar retried every page forever and routed nothing more.
@Suite(.serialized, .timeLimit(.minutes(5))) struct BrokerRestartTests {
    static let logger = Logger(label: "broker-restart-test")

    /// A noida-db of the test's own: killed and started again on the same port and data directory.
    final class OwnBroker: @unchecked Sendable {
        let port: Int
        let dataDirectory: URL
        let log: URL
        private(set) var process: ChildProcess?

        init(name: String) throws {
            port = try TestServices.freePort()
            dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("noida-\(name)")
            try? FileManager.default.removeItem(at: dataDirectory)
            try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
            log = dataDirectory.appendingPathExtension("log")
        }

        var brokers: String { "127.0.0.1:\(port)" }

        func start() async throws {
            // The server binary itself: the `noida-db` on PATH is a Python wrapper whose death leaves the server running.
            let process = try ChildProcess(
                try await Self.serverBinary(), ["start", "--data-dir", dataDirectory.path, "--only", "kafka", "--kafka-port", String(port)],
                standardOutput: .file(log), standardError: .file(log)
            )
            self.process = process
            // Ready when it answers a metadata request.
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, process.isRunning {
                if let admin = try? KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: BrokerRestartTests.logger) {
                    defer { admin.close() }
                    if (try? await admin.listTopics(timeout: .seconds(2))) != nil { return }
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            throw TestFailure("noida-db (the Kafka-protocol broker) did not answer on \(brokers) within 30 s; its log: \(log.path)")
        }

        func kill() async {
            guard let process else { return }
            process.kill()
            _ = await process.exited()
            self.process = nil
        }

        /// The noida-db server binary inside its Python package.
        static func serverBinary() async throws -> String {
            let (run, _) = try await ChildProcess.run(
                "/usr/bin/env", ["python3", "-c", #"from importlib.resources import files; print(files("noida_db").joinpath("noida-db"))"#],
                timeout: .seconds(30)
            )
            let path = run.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            guard run.status == 0, FileManager.default.isExecutableFile(atPath: path) else {
                throw TestFailure("noida-db (the Kafka-protocol broker) is not installed for python3: run scripts/install-deps")
            }
            return path
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func read(_ topic: String, brokers: String) async throws -> [GenericDomainEventMessage] {
        var reading = KafkaConfiguration(bootstrapServers: brokers)
        reading["isolation.level"] = "read_committed"
        return try await KafkaTopicReader.readToEnd(topic: topic, configuration: reading, timeout: .seconds(20), logger: logger)
            .map { try GenericDomainEventMessage(jsonBytes: $0.value) }
    }

    /// - Parameter crash: kill the broker in the middle of the sidecar's traffic, as a user would: noida-db then drops
    ///   what it acknowledged in its last second (it writes its data about once a second; measured), which breaks the
    ///   idempotent producer's sequence (a fatal error) and loses those records for any client. Without `crash`, the
    ///   sidecar is frozen (SIGSTOP) until the broker has persisted all it acknowledged, the broker is killed, and the
    ///   sidecar goes on at once with its pages and producer session in flight: nothing acknowledged can be lost.
    static func run(exactlyOnce: Bool, crash: Bool, outage: Duration = .seconds(8)) async throws {
        let suffix = TestServices.uniqueName(exactlyOnce ? "restart-eos" : "restart-alo") + (crash ? "-crash" : "")
        let moto = try await MotoServer(name: suffix)
        let endpoint = moto.endpoint
        let broker = try OwnBroker(name: suffix)
        try await broker.start()
        defer {
            broker.process?.kill()
            moto.process.kill()
        }

        let setup = try await TickSetup(suffix: suffix, endpoint: endpoint, logger: logger)
        let (topic, routesPath, store) = (setup.topic, setup.routesPath, setup.store)

        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanout-\(suffix).log")
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in [
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": endpoint,
            "FANOUT_LOG_LEVEL": "info",
        ] { environment[key] = value }
        let fanout = try ChildProcess(
            CommandLineTests.binary.path,
            ["run", "--brokers", broker.brokers, "--table", suffix, "--routes", routesPath, "--application", suffix, "--http-port", "0"]
                + (exactlyOnce ? ["--exactly-once"] : []),
            environment: environment, standardError: .file(log)
        )
        defer { fanout.kill() }
        func fanoutLog() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        // Events flow all along: 10 aggregates, in order within each, about 40 a second.
        let total = 400
        let written = Counter()
        let writer = Task {
            for index in 0..<total {
                let event = GenericDomainEventMessage(
                    eventName: "Tick", aggregateID: "clock-\(index % 10)", aggregateType: "Clock",
                    sequenceNumber: Int64(index / 10 + 1), payload: ["n": .number(index)]
                )
                try await store.appendRetrying(event)
                written.increment()
                try await Task.sleep(for: .milliseconds(25))
            }
        }
        defer { writer.cancel() }

        // The outage lands mid-flight: the sidecar has routed records, and events keep coming during it.
        let routedBefore = try await waitFor("records routed before the outage", seconds: 60) {
            let count = try await read(topic, brokers: broker.brokers).count
            return count >= 60 ? count : nil
        }
        if !crash {
            fanout.signal(SIGSTOP)
            try await Task.sleep(for: .seconds(2))
        }
        let writtenAtKill = written.value
        await broker.kill()
        if !crash { fanout.signal(SIGCONT) }
        try await Task.sleep(for: outage)
        #expect(written.value > writtenAtKill, "no event was written during the outage")
        try await broker.start()
        try await writer.value
        #expect(fanout.isRunning, "fanout exited during the outage: \(fanoutLog().suffix(2_000))")

        // Every event arrives after the restart (with `crash`, every one the broker did not drop: those written after the kill).
        let expected = crash ? Set((writtenAtKill..<total).map { "n\($0)" }) : Set((0..<total).map { "n\($0)" })
        let seen = Counter()
        do {
            _ = try await waitFor("every event routed after the restart", seconds: 120) {
                let present = Set(try await read(topic, brokers: broker.brokers).map(Self.tag))
                seen.set(present.intersection(expected).count)
                return present.isSuperset(of: expected) ? true : nil
            }
        } catch {
            let interesting = fanoutLog().split(separator: "\n").filter { !$0.contains("_TRANSPORT") && !$0.contains("Connect to") && !$0.contains("brokers are down") }
            // Where it stands: the shard's state and position, the producer, the counts.
            let status = (try? await Self.statusJSON(log: fanoutLog())).map { "\($0)" } ?? "no /status"
            // Committed but hidden (a transaction left open holds the last stable offset back) or not there at all?
            var uncommitted = KafkaConfiguration(bootstrapServers: broker.brokers)
            uncommitted["isolation.level"] = "read_uncommitted"
            let all = (try? await KafkaTopicReader.readToEnd(topic: topic, configuration: uncommitted, timeout: .seconds(20), logger: logger)) ?? []
            let allTags = Set(all.compactMap { try? GenericDomainEventMessage(jsonBytes: $0.value) }.map(Self.tag))
            Issue.record("read_uncommitted: \(all.count) records, \(allTags.intersection(expected).count) of \(expected.count) events")
            Issue.record("\(seen.value) of \(expected.count) events routed; /status: \(status); fanout's log: \(interesting.suffix(40).joined(separator: "\n"))")
            throw error
        }
        // What the status endpoint says of the producers (read before the sidecar stops).
        let status = try await Self.statusJSON(log: fanoutLog())
        // In flight then, a late duplicate would show here.
        try await Task.sleep(for: .seconds(2))
        fanout.terminate()
        let termination = await fanout.exited()
        #expect(termination == .exited(0), "fanout ended with \(termination): \(fanoutLog().suffix(2_000))")

        let events = try await read(topic, brokers: broker.brokers)
        let distinct = Set(events.map(\.messageID)).count
        let text = fanoutLog()
        let replaced = text.components(separatedBy: "replaced it with a new one").count - 1
        let missing = Set((0..<total).map { "n\($0)" }).subtracting(events.map(Self.tag))
        print("broker restart (\(crash ? "SIGKILL mid-flight" : "SIGKILL once the broker persisted all it acknowledged")), "
            + "\(exactlyOnce ? "exactly-once" : "at-least-once"): \(total) events, \(events.count) records, \(routedBefore) routed before the kill, "
            + "\(missing.count) missing (dropped by the broker), producer replaced \(replaced) times")
        #expect(routedBefore >= 60 && routedBefore < total, "routed before the outage: \(routedBefore)")
        // Per aggregate, the first delivery of each event comes in order (an at-least-once redelivery may repeat older
        // ones); with `crash`, past the gap the broker left.
        for aggregate in Set(events.map(\.aggregateID)) {
            var highest: Int64 = 0
            for event in events where event.aggregateID == aggregate {
                #expect(event.sequenceNumber > highest || crash || !exactlyOnce, "\(aggregate): \(event.sequenceNumber) after \(highest)")
                #expect(event.sequenceNumber <= highest + 1 || crash, "\(aggregate): \(event.sequenceNumber) after \(highest)")
                highest = max(highest, event.sequenceNumber)
            }
        }
        let producer = status["producer"] as? [String: Any]
        #expect(producer?["ok"] as? Bool == true, "status: \(status)")
        // Each stream record counts once, when Kafka acknowledged its whole page: every event was acknowledged.
        // (So an event missing from the topic below was acknowledged by the broker, then dropped by it.)
        #expect((status["counts"] as? [String: Any])?["recordsRead"] as? Int == total, "status: \(status)")
        if crash {
            // The case the producer's replacement exists for: when the broker's lost second broke the sequence (a
            // fatal error: most runs, not all, since a kill between two batches loses nothing of the producer's), the
            // producer was replaced and routing went on; either way only what the broker dropped is missing. The
            // replacement itself is asserted deterministically by KafkaProducerRecoveryTests (fatal-error injection).
            #expect((producer?["rebuilds"] as? Int ?? -1) == replaced, "status: \(status); log: \(text.suffix(3_000))")
            #expect(missing.allSatisfy { Int($0.dropFirst())! < writtenAtKill }, "missing after the kill: \(missing.sorted())")
            // At most what the broker acknowledged in its last unsaved second: about 40 events.
            #expect(missing.count <= 80, "missing: \(missing.sorted())")
        } else {
            #expect(distinct == total, "lost \(total - distinct) events: \(missing.sorted())")
            if exactlyOnce {
                #expect(events.count == total, "\(events.count - distinct) duplicates under read_committed")
            }
        }
    }

    /// `n<index>`: which written event a record carries (its payload's `n`).
    static func tag(_ event: GenericDomainEventMessage) -> String {
        if case .number(let n)? = event.payload["n"] { return "n\(n)" }
        return "?"
    }

    /// `GET /status` of the sidecar whose log is given (the port is in its "status endpoint listening" line).
    static func statusJSON(log: String) async throws -> [String: Any] {
        guard let range = log.range(of: "fanout.http.port="), let port = Int(log[range.upperBound...].prefix { $0.isNumber }) else {
            throw TestFailure("no status endpoint port in the sidecar's log")
        }
        let response = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(port)/status").get()
        let body = Data(response.body.map { Array(buffer: $0) } ?? [])
        return (try JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:]
    }

    /// Polls `probe` every 500 ms until it returns a value, or fails after `seconds`.
    static func waitFor<T>(_ what: String, seconds: Int, _ probe: () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let value = try? await probe() { return value }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw TestFailure("timed out after \(seconds) s waiting for \(what)")
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func increment() { lock.withLock { count += 1 } }
        func set(_ value: Int) { lock.withLock { count = value } }
        var value: Int { lock.withLock { count } }
    }

    @Test func atLeastOnceRoutesEveryEventThroughABrokerRestart() async throws {
        try await Self.run(exactlyOnce: false, crash: false)
    }

    @Test func exactlyOnceRoutesEveryEventOnceThroughABrokerRestart() async throws {
        try await Self.run(exactlyOnce: true, crash: false)
    }

    @Test func atLeastOnceReplacesTheProducerAndGoesOnAfterABrokerCrashBreaksItsSequence() async throws {
        try await Self.run(exactlyOnce: false, crash: true)
    }
}
