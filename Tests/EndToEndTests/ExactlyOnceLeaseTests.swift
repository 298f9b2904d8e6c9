import AWS
import AsyncHTTPClient
import CQRSCore
import Contracts
import Foundation
import Kafka
import Logging
import TestSupport
import Testing

/// Three `fanout run --exactly-once --leases on` processes on one Kinesis stream of six shards (moto),
/// routing to noida-db; one is SIGKILLed while events flow. Under read_committed every event is in the
/// topic exactly once: the new owners' per-shard transactional producers fenced the dead one's open
/// transactions, and they resumed after the checkpoints committed with the records.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ExactlyOnceLeaseTests {
    static let logger = Logger(label: "e2e-eos-leases")

    /// How many times each event (message id) is in the topic, read with isolation.level=read_committed.
    static func committedCounts(_ topic: String, brokers: String) async throws -> [String: Int] {
        let configuration = KafkaConfiguration(bootstrapServers: brokers, properties: ["isolation.level": "read_committed"])
        let messages = try await KafkaTopicReader.readToEnd(topic: topic, configuration: configuration, logger: logger)
        var counts: [String: Int] = [:]
        for message in messages { counts[try GenericDomainEventMessage(jsonBytes: message.value).messageID, default: 0] += 1 }
        return counts
    }

    /// Expects every event in the topic exactly once; returns how many were lost and how many duplicated.
    static func expectEachOnce(_ all: [String], _ counts: [String: Int]) -> (lost: [String], duplicated: [String]) {
        let lost = all.filter { counts[$0] == nil }
        let duplicated = all.filter { (counts[$0] ?? 0) > 1 }
        #expect(lost.isEmpty, "\(lost.count) events lost")
        #expect(duplicated.isEmpty, "\(duplicated.count) events routed twice under read_committed")
        return (lost, duplicated)
    }

    /// Waits (hang guard: 45 s) until every id is committed in the topic.
    static func waitForAll(_ ids: [String], in topic: String, brokers: String) async throws -> [String: Int] {
        let deadline = ContinuousClock.now + .seconds(45)
        var counts: [String: Int] = [:]
        repeat {
            counts = try await committedCounts(topic, brokers: brokers)
            if ids.allSatisfy({ counts[$0] != nil }) { break }
            try await Task.sleep(for: .milliseconds(300))
        } while ContinuousClock.now < deadline
        return counts
    }

    /// Puts 10 events every 200 ms for `rounds` rounds (batches b0, b1, …), in the background; their ids.
    static func keepPutting(_ setup: LeaseTests.Setup, rounds: Int) -> Task<[String], any Error> {
        Task {
            var ids: [String] = []
            for round in 0..<rounds {
                ids += try await setup.put(10, batch: "b\(round)")
                try await Task.sleep(for: .milliseconds(200))
            }
            return ids
        }
    }

    /// Signals the process and waits for it to exit without blocking the cooperative pool: its exit
    /// status, or the signal that ended it; -1 if it still runs 40 s later.
    static func stop(_ instance: LeaseTests.Instance, signal: Int32) async throws -> Int32 {
        instance.process.signal(signal)
        switch await instance.process.exited(timeout: .seconds(40)) {
        case .exited(let status): return status
        case .signalled(let signal): return signal
        case nil: return -1
        }
    }

    @Test func threeExactlyOnceInstancesRouteEveryEventExactlyOnceAcrossASIGKILL() async throws {
        let setup = try await LeaseTests.makeSetup()
        let application = TestServices.uniqueName("eos-leases")
        let topic = "ticks.\(application)"
        let arguments = try LeaseTests.arguments(setup, application: application, topic: topic) + ["--exactly-once"]
        let first = try await setup.put(40, batch: "a")

        let instances = try ["e1", "e2", "e3"].map { try LeaseTests.Instance(worker: $0, arguments: arguments) }
        defer { for instance in instances { instance.process.kill() } }
        let balanced = try await LeaseTests.waitForBalance(instances, counts: [2, 2, 2])
        let firstCounts = try await Self.waitForAll(first, in: topic, brokers: setup.brokers)
        #expect(first.filter { firstCounts[$0] == nil }.isEmpty, "lost before any failure")
        // Each instance routes through one transactional producer per shard it holds.
        for instance in instances {
            #expect(instance.logText.contains("kafka.transactionalID=fanout.\(application).shardId-"), "\(instance.worker): \(instance.logText.suffix(2000))")
        }

        // Events keep flowing while one instance is killed (its transactions may be open).
        let flowing = Self.keepPutting(setup, rounds: 8)
        try await Task.sleep(for: .milliseconds(600))
        let killed = balanced[2]
        #expect(try await Self.stop(instances[2], signal: SIGKILL) == SIGKILL)
        let second = try await flowing.value
        let afterKill = try await LeaseTests.waitForBalance(Array(instances[0..<2]), counts: [3, 3])
        for (shard, epoch) in killed {
            let newEpoch = afterKill.compactMap { $0[shard] }.first
            #expect(newEpoch.map { $0 > epoch } == true, "shard \(shard) epoch \(epoch) → \(newEpoch.map(String.init) ?? "not held")")
        }
        let third = try await setup.put(40, batch: "c")
        let all = first + second + third
        let counts = try await Self.waitForAll(all, in: topic, brokers: setup.brokers)
        let (lost, duplicated) = Self.expectEachOnce(all, counts)
        #expect(counts.count == all.count, "the topic holds \(counts.count) distinct events, \(all.count) were written")
        print("exactly-once leases e2e: \(all.count) events, \(counts.values.reduce(0, +)) committed records, \(duplicated.count) duplicates, \(lost.count) lost after a SIGKILL")

        for instance in instances[0..<2] {
            let status = try await Self.stop(instance, signal: SIGTERM)
            #expect(status == 0, "\(instance.worker) exited \(status): \(instance.logText.suffix(2000))")
        }
        try? await setup.kinesis.deleteStream(name: setup.stream)
    }

    /// A paused process (SIGSTOP: a long GC pause, a frozen VM) is a zombie: its leases expire and are taken while
    /// its transactions may be open. When it resumes (SIGCONT) the new owners' per-shard producers have fenced it:
    /// it commits nothing more for those shards, stops only them, and later takes its share again. Every event
    /// is in the topic exactly once under read_committed.
    @Test func aPausedZombieIsFencedAndRejoinsWithoutDuplicatingAnything() async throws {
        let setup = try await LeaseTests.makeSetup()
        let application = TestServices.uniqueName("eos-zombie")
        let topic = "ticks.\(application)"
        let arguments = try LeaseTests.arguments(setup, application: application, topic: topic) + ["--exactly-once"]
        let instances = try ["z1", "z2"].map { try LeaseTests.Instance(worker: $0, arguments: arguments) }
        defer {
            for instance in instances {
                instance.process.signal(SIGCONT)
                instance.process.kill()
            }
        }
        _ = try await LeaseTests.waitForBalance(instances, counts: [3, 3])
        let first = try await setup.put(30, batch: "a")
        _ = try await Self.waitForAll(first, in: topic, brokers: setup.brokers)

        // Paused while events flow; the other instance takes its leases after they expire (3 s).
        let flowing = Self.keepPutting(setup, rounds: 6)
        try await Task.sleep(for: .milliseconds(400))
        let zombie = instances[1]
        zombie.process.signal(SIGSTOP)
        let second = try await flowing.value
        _ = try await LeaseTests.waitForBalance([instances[0]], counts: [6])
        let secondCounts = try await Self.waitForAll(second, in: topic, brokers: setup.brokers)
        #expect(second.filter { secondCounts[$0] == nil }.isEmpty, "lost while the zombie was paused")

        // Resumed: fenced for the shards it held, it stays up and takes its share again.
        zombie.process.signal(SIGCONT)
        _ = try await LeaseTests.waitForBalance(instances, counts: [3, 3])
        #expect(zombie.process.isRunning, "the zombie exited: \(zombie.logText.suffix(2000))")
        let third = try await setup.put(30, batch: "c")
        let all = first + second + third
        let counts = try await Self.waitForAll(all, in: topic, brokers: setup.brokers)
        let (lost, duplicated) = Self.expectEachOnce(all, counts)
        let fencedLines = zombie.logText.split(separator: "\n").filter { $0.contains("fenced") || $0.contains("self-fencing") }.count
        let producerFenced = zombie.logText.split(separator: "\n").filter { $0.contains("fenced by a newer owner") }.count
        print("exactly-once zombie e2e: \(all.count) events, \(counts.values.reduce(0, +)) committed records, \(duplicated.count) duplicates, \(lost.count) lost; the zombie logged \(fencedLines) fencing lines (\(producerFenced) of its producer)")
        for instance in instances {
            let status = try await Self.stop(instance, signal: SIGTERM)
            #expect(status == 0, "\(instance.worker) exited \(status): \(instance.logText.suffix(2000))")
        }
        try? await setup.kinesis.deleteStream(name: setup.stream)
    }
}
