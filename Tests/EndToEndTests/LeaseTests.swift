import AWS
import AsyncHTTPClient
import CQRSCore
import Contracts
import Foundation
import JSON
import Kafka
import Logging
import NIOCore
import TestSupport
import Testing

/// Several `fanout run --leases on` processes on one Kinesis stream of six shards (moto), routing to
/// noida-db: balanced ownership, a SIGKILL, a graceful stop, an added instance, two applications.
@Suite(.serialized, .timeLimit(.minutes(4))) struct LeaseTests {
    static let logger = Logger(label: "e2e-leases")
    static let shardCount = 6

    /// One running `fanout run` and its status endpoint.
    final class Instance {
        let worker: String
        let process: ChildProcess
        let log: URL
        var port: Int?

        init(worker: String, arguments: [String]) throws {
            self.worker = worker
            log = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestServices.uniqueName(worker)).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            var environment = ProcessInfo.processInfo.environment
            environment["AWS_REGION"] = "us-east-1"
            environment["AWS_ACCESS_KEY_ID"] = "test"
            environment["AWS_SECRET_ACCESS_KEY"] = "test"
            environment["AWS_ENDPOINT_URL"] = try TestServices.awsEndpoint()
            process = try ChildProcess(
                CommandLineTests.binary.path, arguments + ["--worker-id", worker, "--http-port", "0"], environment: environment,
                standardError: .file(log))
        }

        var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        func get(_ path: String) async throws -> String {
            if port == nil, let range = logText.range(of: "fanout.http.port=") {
                port = Int(logText[range.upperBound...].prefix { $0.isNumber })
            }
            guard let port else { return "" }
            let response = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(port)\(path)").get()
            return response.body.map { String(buffer: $0) } ?? ""
        }

        /// The leases `/status` shows (shard id → epoch); nil while the endpoint is not up.
        func leases() async -> [String: Int]? {
            guard let body = try? await get("/status"), let data = body.data(using: .utf8),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let leases = object["leases"] as? [[String: Any]]
            else { return nil }
            var result: [String: Int] = [:]
            for lease in leases {
                if let id = lease["shardID"] as? String, let epoch = lease["epoch"] as? Int { result[id] = epoch }
            }
            return result
        }

        func stop(signal: Int32) {
            process.signal(signal)
            process.waitForExit(timeout: .seconds(60))
        }

        /// `stop(signal:)` without holding a cooperative thread while the process drains.
        func stopped(signal: Int32) async {
            process.signal(signal)
            await process.exited()
        }
    }

    struct Setup {
        var kinesis: Kinesis
        var stream: String
        var brokers: String
        var httpClient: HTTPClient

        func put(_ count: Int, batch: String) async throws -> [String] {
            var ids: [String] = []
            for index in 0..<count {
                let event = GenericDomainEventMessage(
                    eventName: "Tick", aggregateID: "\(batch)-\(index)", aggregateType: "Clock", sequenceNumber: 1, payload: ["n": .number("\(index)")]
                )
                _ = try await kinesis.putRecord(streamName: stream, partitionKey: event.aggregateID, data: KinesisPipelineTests.change(event))
                ids.append(event.messageID)
            }
            return ids
        }

        /// How many times each event (message id) is in the topic.
        func counts(_ topic: String) async throws -> [String: Int] {
            let messages = try await KafkaTopicReader.readToEnd(topic: topic, configuration: KafkaConfiguration(bootstrapServers: brokers), logger: LeaseTests.logger)
            var counts: [String: Int] = [:]
            for message in messages { counts[try GenericDomainEventMessage(jsonBytes: message.value).messageID, default: 0] += 1 }
            return counts
        }

        /// Waits (hang guard: 30 s) until every id is in the topic.
        func waitForAll(_ ids: [String], in topic: String) async throws -> [String: Int] {
            let deadline = ContinuousClock.now + .seconds(30)
            var counts: [String: Int] = [:]
            repeat {
                counts = try await self.counts(topic)
                if ids.allSatisfy({ counts[$0] != nil }) { break }
                try await Task.sleep(for: .milliseconds(300))
            } while ContinuousClock.now < deadline
            return counts
        }
    }

    static func makeSetup() async throws -> Setup {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try PipelineTests.awsConfiguration()
        let httpClient = HTTPClient.forTests
        let kinesis = Kinesis(configuration: aws, httpClient: httpClient, logger: logger)
        let stream = TestServices.uniqueName("leased")
        try await kinesis.createStream(name: stream, shardCount: shardCount)
        _ = try await kinesis.waitUntilActive(name: stream, timeout: .seconds(20))
        return Setup(kinesis: kinesis, stream: stream, brokers: brokers, httpClient: httpClient)
    }

    static func arguments(_ setup: Setup, application: String, topic: String) throws -> [String] {
        let routesPath = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(application).json").path
        try #"{"version": 1, "topics": {"\#(topic)": {"partitions": 2}}, "routes": [{"name": "ticks", "events": ["Tick"], "to": ["\#(topic)"]}]}"#
            .write(toFile: routesPath, atomically: true, encoding: .utf8)
        return [
            "run", "--brokers", setup.brokers, "--kinesis-stream", setup.stream, "--routes", routesPath, "--application", application,
            "--leases", "on", "--lease-duration", "3", "--log-level", "info",
        ]
    }

    /// Waits (hang guard: 30 s) until the instances hold these numbers of leases, sorted; returns what they hold.
    static func waitForBalance(_ instances: [Instance], counts expected: [Int]) async throws -> [[String: Int]] {
        let deadline = ContinuousClock.now + .seconds(30)
        var held: [[String: Int]] = []
        repeat {
            held = []
            for instance in instances { held.append(await instance.leases() ?? [:]) }
            if held.map(\.count).sorted() == expected.sorted(), Set(held.flatMap(\.keys)).count == expected.reduce(0, +) { return held }
            try await Task.sleep(for: .milliseconds(250))
        } while ContinuousClock.now < deadline
        Issue.record("leases never became \(expected): \(held.map { $0.keys.sorted() }); logs:\n\(instances.map { "\($0.worker):\n\($0.logText.suffix(3000))" }.joined(separator: "\n"))")
        return held
    }

    @Test func threeInstancesShareTheShardsAndSurviveAKillAndAGracefulStop() async throws {
        let setup = try await Self.makeSetup()
        let application = TestServices.uniqueName("leases")
        let topic = "ticks.\(application)"
        let arguments = try Self.arguments(setup, application: application, topic: topic)
        let first = try await setup.put(60, batch: "a")

        let instances = try ["w1", "w2", "w3"].map { try Instance(worker: $0, arguments: arguments) }
        defer { for instance in instances where instance.process.isRunning { instance.stop(signal: SIGKILL) } }

        // Balanced: two shards each, every shard held once.
        let balanced = try await Self.waitForBalance(instances, counts: [2, 2, 2])
        #expect(balanced.map(\.count) == [2, 2, 2])
        let metrics = try await instances[0].get("/metrics")
        #expect(metrics.contains("fanout_leases_held 2"), "\(metrics.split(separator: "\n").filter { $0.contains("lease") })")
        #expect(metrics.contains("fanout_leases_taken_total "), "\(metrics.split(separator: "\n").filter { $0.contains("lease") })")
        let firstCounts = try await setup.waitForAll(first, in: topic)
        #expect(first.filter { firstCounts[$0] == nil }.isEmpty, "lost before any failure")
        try await Task.sleep(for: .seconds(1))  // the last pages' checkpoints

        // SIGKILL: its two shards are taken over after the lease timeout (3 s), nothing lost.
        let killed = balanced[2]
        // The batch is written once the two survivors hold three leases each: while they race for the expired
        // leases moto can let both take one (docs/scaling.md, "Limits, known"), and copies made then are not
        // the handover's.
        await instances[2].stopped(signal: SIGKILL)
        let afterKill = try await Self.waitForBalance(Array(instances[0..<2]), counts: [3, 3])
        let second = try await setup.put(60, batch: "b")
        for (shard, epoch) in killed {
            let newEpoch = afterKill.compactMap { $0[shard] }.first
            #expect(newEpoch.map { $0 > epoch } == true, "shard \(shard) epoch \(epoch) → \(newEpoch.map(String.init) ?? "not held")")
        }
        let secondCounts = try await setup.waitForAll(second, in: topic)
        #expect(second.filter { secondCounts[$0] == nil }.isEmpty, "lost after the SIGKILL")
        try await Task.sleep(for: .seconds(1))

        // A graceful stop hands its leases over at once (well before the lease duration), with no duplicate.
        await instances[0].stopped(signal: SIGTERM)
        #expect(instances[0].process.termination == .exited(0))
        let stopped = ContinuousClock.now
        _ = try await Self.waitForBalance([instances[1]], counts: [6])
        let handoverTime = ContinuousClock.now - stopped
        #expect(handoverTime < .seconds(3), "handover took \(handoverTime)")
        let third = try await setup.put(60, batch: "c")
        let counts = try await setup.waitForAll(third, in: topic)
        #expect(third.filter { counts[$0] == nil }.isEmpty, "lost after the graceful stop")
        let duplicated = (second + third).filter { (counts[$0] ?? 0) > 1 }
        #expect(duplicated.isEmpty, "\(duplicated.count) events routed twice around the handover")
        let firstDuplicates = first.filter { (counts[$0] ?? 0) > 1 }.count
        print("leases e2e: \(first.count + second.count + third.count) events, \(firstDuplicates) duplicates of the first batch after the SIGKILL, handover in \(handoverTime)")
        await instances[1].stopped(signal: SIGTERM)
        #expect(instances[1].process.termination == .exited(0))
        try? await setup.kinesis.deleteStream(name: setup.stream)
    }

    @Test func anAddedInstanceTakesItsShareAndAnotherApplicationIsIsolated() async throws {
        let setup = try await Self.makeSetup()
        let application = TestServices.uniqueName("leases-x")
        let other = TestServices.uniqueName("leases-y")
        let topic = "ticks.\(application)", otherTopic = "ticks.\(other)"
        let arguments = try Self.arguments(setup, application: application, topic: topic)
        let first = try await setup.put(40, batch: "a")

        var instances = try ["x1", "x2"].map { try Instance(worker: $0, arguments: arguments) }
        let lone = try Instance(worker: "y1", arguments: try Self.arguments(setup, application: other, topic: otherTopic))
        defer { for instance in instances + [lone] where instance.process.isRunning { instance.stop(signal: SIGKILL) } }
        _ = try await Self.waitForBalance(instances, counts: [3, 3])
        _ = try await Self.waitForBalance([lone], counts: [6])
        _ = try await setup.waitForAll(first, in: topic)
        try await Task.sleep(for: .seconds(1))
        // What two instances starting together routed. moto's conditional writes are not atomic under
        // concurrent requests, so both may take the same free lease for a moment (real DynamoDB cannot):
        // copies made then are not the rebalance's.
        let beforeRebalance = try await setup.counts(topic)

        // An added instance asks for its share; the owners hand one lease each over.
        instances.append(try Instance(worker: "x3", arguments: arguments))
        let rebalanced = try await Self.waitForBalance(instances, counts: [2, 2, 2])
        // Per-shard series only for the shards an instance holds: the ones handed over leave its /metrics (the
        // gauges are refreshed every 5 s; 20 s is a hang guard).
        for (instance, held) in zip(instances, rebalanced) {
            func shardSeries() async throws -> Set<String> {
                let lines = try await instance.get("/metrics").split(separator: "\n").filter { $0.hasPrefix("fanout_shard_stalled{") }
                return Set(lines.compactMap { line in line.split(separator: "\"").dropFirst().first.map(String.init) })
            }
            let deadline = ContinuousClock.now + .seconds(20)
            var series = try await shardSeries()
            while series != Set(held.keys), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(500))
                series = try await shardSeries()
            }
            #expect(series == Set(held.keys), "\(instance.worker): series for \(series.sorted()), leases \(held.keys.sorted())")
        }
        let second = try await setup.put(40, batch: "b")
        let counts = try await setup.waitForAll(second, in: topic)
        #expect((first + second).filter { counts[$0] == nil }.isEmpty, "lost")
        let again = first.filter { counts[$0] != beforeRebalance[$0] } + second.filter { (counts[$0] ?? 0) > 1 }
        #expect(again.isEmpty, "\(again.count) events routed again around the rebalance")
        print("leases e2e, added instance: \(first.filter { (beforeRebalance[$0] ?? 0) > 1 }.count) of \(first.count) events routed twice while two instances started together")

        // The other application read every event once, into its own topic, holding all six leases throughout.
        let otherCounts = try await setup.waitForAll(first + second, in: otherTopic)
        #expect((first + second).allSatisfy { otherCounts[$0] == 1 }, "the other application: \(otherCounts.values.filter { $0 != 1 }.count) not once")
        #expect(await lone.leases()?.count == 6)
        for instance in instances + [lone] {
            await instance.stopped(signal: SIGTERM)
            #expect(instance.process.termination == .exited(0), "\(instance.worker) ended with \(instance.process.termination?.description ?? "nothing")")
        }
        try? await setup.kinesis.deleteStream(name: setup.stream)
    }
}
