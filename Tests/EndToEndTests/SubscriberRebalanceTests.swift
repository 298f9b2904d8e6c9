import CQRSCore
import Contracts
import Foundation
import JSON
import Kafka
import Logging
import TestSupport
import Testing

/// Two subscriber processes (`fanout-demo subscribe`) of one group: the second joins while
/// the first is busy, the partitions are rebalanced, both stop with SIGTERM; every event
/// is handled exactly once across the two, in order per aggregate.
@Suite(.serialized, .timeLimit(.minutes(3))) struct SubscriberRebalanceTests {
    static let logger = Logger(label: "e2e-rebalance")

    /// A running `fanout-demo subscribe`, its standard output collected.
    final class Subscriber: @unchecked Sendable {
        let process: ChildProcess

        init(group: String, topic: String, brokers: String) throws {
            let binary = CommandLineTests.binary.deletingLastPathComponent().appendingPathComponent("fanout-demo")
            var environment = ProcessInfo.processInfo.environment
            environment["FANOUT_BROKERS"] = brokers
            environment["FANOUT_DEMO_HANDLER_DELAY_MS"] = "30"
            environment["FANOUT_LOG_LEVEL"] = environment["FANOUT_LOG_LEVEL"] ?? "warning"
            process = try ChildProcess(
                binary.path, ["subscribe", group, topic], environment: environment, standardOutput: .capture, standardError: .inherit)
        }

        /// `committed` lines: the offsets (next to read) committed per partition, in order.
        var commits: [Int32: [Int64]] {
            var commits: [Int32: [Int64]] = [:]
            for line in completeLines {
                let fields = line.split(separator: " ")
                guard fields.count == 4, fields[0] == "committed", let partition = Int32(fields[2]), let offset = Int64(fields[3]) else { continue }
                commits[partition, default: []].append(offset)
            }
            return commits
        }

        var completeLines: [Substring] {
            let text = process.standardOutput
            let complete = text.lastIndex(of: "\n").map { text[..<$0] } ?? ""
            return complete.split(separator: "\n")
        }

        /// `handled` lines: (partition, offset, aggregate, sequence, message id).
        var handled: [(partition: Int32, offset: Int64, aggregate: String, sequence: Int64, messageID: String)] {
            completeLines.compactMap { line in
                let fields = line.split(separator: " ")
                guard fields.count == 7, fields[0] == "handled", let partition = Int32(fields[2]), let offset = Int64(fields[3]),
                    let sequence = Int64(fields[5])
                else { return nil }
                return (partition, offset, String(fields[4]), sequence, String(fields[6]))
            }
        }

        func stop() async throws -> Int32 {
            process.terminate()  // SIGTERM
            if await process.exited(timeout: .seconds(40)) == nil {
                Issue.record("fanout-demo subscribe did not stop within 40 s of SIGTERM")
                process.kill()
            }
            switch await process.exited() {
            case .exited(let status): return status
            case .signalled(let signal): return signal
            }
        }
    }

    static func publish(_ events: [GenericDomainEventMessage], to topic: String, brokers: String) async throws {
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger)
        _ = try await producer.send(events.map { KafkaProducerRecord(topic: topic, key: Array($0.aggregateID.utf8), value: $0.jsonBytes()) })
        await producer.shutdown()
    }

    static func events(_ sequences: ClosedRange<Int64>) -> [GenericDomainEventMessage] {
        sequences.flatMap { sequence in
            (0..<8).map { GenericDomainEventMessage(eventName: "Tick", aggregateID: "agg-\($0)", aggregateType: "T", sequenceNumber: sequence, payload: [:]) }
        }
    }

    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("\(what): not within 60 s")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    @Test func aRebalanceBetweenTwoProcessesLosesAndRepeatsNothing() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("rebalance")
        let group = TestServices.uniqueName("group")
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Self.logger)
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 4)])
        admin.close()
        let first = Self.events(1...10)
        try await Self.publish(first, to: topic, brokers: brokers)

        let a = try Subscriber(group: group, topic: topic, brokers: brokers)
        try await Self.waitUntil("the first process handles events") { a.handled.count >= 10 }
        // The second joins while the first is in the middle of the backlog. Its join can take longer than
        // the first needs for a batch (seen in a fresh-clone run: the second handled nothing), so batches
        // follow until the second has handled some (at most 5).
        let b = try Subscriber(group: group, topic: topic, brokers: brokers)
        var published = first
        var next: Int64 = 11
        repeat {
            let batch = Self.events(next...(next + 9))
            next += 10
            try await Self.publish(batch, to: topic, brokers: brokers)
            published += batch
            let ids = Set(published.map(\.messageID))
            try await Self.waitUntil("every event is handled") { Set(a.handled.map(\.messageID) + b.handled.map(\.messageID)).isSuperset(of: ids) }
        } while b.handled.isEmpty && next <= 51
        let all = Set(published.map(\.messageID))
        try await Task.sleep(for: .seconds(1))
        #expect(try await a.stop() == 0)
        #expect(try await b.stop() == 0)

        let handled = a.handled + b.handled
        #expect(!b.handled.isEmpty, "the second process took over some partitions")
        // Nothing lost.
        #expect(Set(handled.map(\.messageID)) == all)
        // Nothing acknowledged is repeated: the second process starts each partition it takes
        // exactly at the first process's last commit there, and the first process commits only
        // offsets below which every event is finished. Only events the first process had not
        // acknowledged yet (finished after its last commit) may be handled by both.
        let aCommits = a.commits
        for partition in Set(b.handled.map(\.partition)) {
            let start = b.handled.filter { $0.partition == partition }.map(\.offset).min()!
            #expect(start == (aCommits[partition]?.max() ?? 0), "partition \(partition): the second process started at \(start); the first committed \(aCommits[partition] ?? [])")
        }
        let twice = Dictionary(grouping: handled, by: \.messageID).filter { $0.value.count > 1 }
        #expect(twice.values.allSatisfy { $0.count == 2 })
        print("rebalance: \(handled.count) handled lines for \(all.count) events; \(twice.count) events were handled again because they were finished but not yet acknowledged (committed) when the group rebalanced")
        for output in [a.handled, b.handled] {
            for aggregate in Set(output.map(\.aggregate)) {
                // In order: each event follows the one before, except one restart from the last
                // commit when the process lost the partition in the rebalance and got it back.
                let sequences = output.filter { $0.aggregate == aggregate }.map(\.sequence)
                let steps = zip(sequences, sequences.dropFirst())
                #expect(steps.allSatisfy { $1 == $0 + 1 || $1 <= $0 }, "order of \(aggregate): \(sequences)")
                #expect(steps.filter { $1 <= $0 }.count <= 1, "order of \(aggregate): \(sequences)")
            }
        }

        // Everything was committed at shutdown: a new process receives only new events.
        let c = try Subscriber(group: group, topic: topic, brokers: brokers)
        let third = Self.events(next...next)
        try await Self.publish(third, to: topic, brokers: brokers)
        try await Self.waitUntil("the new events are handled") { c.handled.count >= third.count }
        try await Task.sleep(for: .seconds(1))
        #expect(try await c.stop() == 0)
        #expect(Set(c.handled.map(\.messageID)) == Set(third.map(\.messageID)))
        #expect(c.handled.count == third.count)
    }
}
