import AWS
import AsyncHTTPClient
import CQRSCore
import Contracts
import Foundation
import JSON
import Kafka
import Logging
import TestSupport
import Testing

/// `fanout run` killed with SIGKILL at random moments while events flow, and restarted each time.
/// At the end every source event must be in its topic (zero lost); in exactly-once mode also exactly
/// once under read_committed; in at-least-once mode duplicates are counted and reported.
@Suite(.serialized, .timeLimit(.minutes(5))) struct CrashTests {
    static let logger = Logger(label: "crash-test")
    static let rounds = 20

    struct Outcome {
        var total: Int
        var distinct: Int
        var records: Int
        var perAggregateOrderHolds: Bool
    }

    static func startFanout(arguments: [String], environment: [String: String]) throws -> ChildProcess {
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        return try ChildProcess(CommandLineTests.binary.path, arguments, environment: env)
    }

    static func run(exactlyOnce: Bool) async throws -> Outcome {
        let brokers = try TestServices.kafkaBrokers()
        let suffix = TestServices.uniqueName(exactlyOnce ? "crash-eos" : "crash-alo")
        // Its own moto: 21 sidecars in a row poll the stream while events are written.
        let moto = try await MotoServer(name: suffix)
        defer { moto.process.kill() }
        let endpoint = moto.endpoint
        let setup = try await TickSetup(suffix: suffix, endpoint: endpoint, logger: logger)
        let (topic, routesPath, store) = (setup.topic, setup.routesPath, setup.store)

        let arguments = ["run", "--brokers", brokers, "--table", suffix, "--routes", routesPath, "--application", suffix, "--http-port", "0"]
            + (exactlyOnce ? ["--exactly-once"] : [])
        let environment = [
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL": endpoint, "FANOUT_LOG_LEVEL": "warning",
        ]

        // Events keep flowing through all rounds: 8 aggregates, in order within each.
        let total = 400
        let writer = Task {
            for index in 0..<total {
                let aggregate = "clock-\(index % 8)"
                try await store.appendRetrying(GenericDomainEventMessage(
                    eventName: "Tick", aggregateID: aggregate, aggregateType: "Clock",
                    sequenceNumber: Int64(index / 8 + 1), payload: ["n": .number(index)]
                ))
                try await Task.sleep(for: .milliseconds(40))
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<rounds {
            let fanout = try startFanout(arguments: arguments, environment: environment)
            defer { fanout.kill() }
            try await Task.sleep(for: .milliseconds(Int64.random(in: 300...1500, using: &generator)))
            fanout.kill()
            #expect(await fanout.exited().signal != nil)
        }
        try await writer.value

        // A last run to the end, stopped gracefully.
        let final = try startFanout(arguments: arguments, environment: environment)
        // Never left running (it would hold its stream and topics) when an expectation below throws.
        defer { final.kill() }
        var reading = KafkaConfiguration(bootstrapServers: brokers)
        reading["isolation.level"] = "read_committed"
        var messages: [KafkaConsumerMessage] = []
        let deadline = ContinuousClock.now + .seconds(90)
        repeat {
            try await Task.sleep(for: .milliseconds(500))
            messages = try await KafkaTopicReader.readToEnd(topic: topic, configuration: reading, logger: logger)
        } while Set(messages.map(\.value)).count < total && ContinuousClock.now < deadline
        try await Task.sleep(for: .seconds(1))
        final.terminate()
        #expect(await final.exited() == .exited(0))
        messages = try await KafkaTopicReader.readToEnd(topic: topic, configuration: reading, logger: logger)

        let events = try messages.map { try GenericDomainEventMessage(jsonBytes: $0.value) }
        // Per aggregate, the first delivery of each event comes in order (a redelivery may repeat older ones).
        var orderHolds = true
        for aggregate in Set(events.map(\.aggregateID)) {
            var highest: Int64 = 0
            for event in events where event.aggregateID == aggregate {
                if event.sequenceNumber > highest + 1 { orderHolds = false }
                highest = max(highest, event.sequenceNumber)
            }
        }
        return Outcome(total: total, distinct: Set(events.map(\.messageID)).count, records: events.count, perAggregateOrderHolds: orderHolds)
    }

    @Test func atLeastOnceLosesNothingAcrossTwentyKills() async throws {
        let outcome = try await Self.run(exactlyOnce: false)
        #expect(outcome.distinct == outcome.total, "lost \(outcome.total - outcome.distinct) events")
        #expect(outcome.perAggregateOrderHolds)
        // Duplicates are allowed here: only records in flight at a kill. Reported, not asserted.
        print("crash test, at-least-once: \(outcome.total) events, \(outcome.records) records, \(outcome.records - outcome.distinct) duplicates after \(Self.rounds) SIGKILLs")
    }

    @Test func exactlyOnceLosesAndDuplicatesNothingAcrossTwentyKills() async throws {
        let outcome = try await Self.run(exactlyOnce: true)
        #expect(outcome.distinct == outcome.total, "lost \(outcome.total - outcome.distinct) events")
        #expect(outcome.records == outcome.total, "\(outcome.records - outcome.distinct) duplicates under read_committed")
        #expect(outcome.perAggregateOrderHolds)
        print("crash test, exactly-once: \(outcome.total) events, \(outcome.records) records, \(outcome.records - outcome.distinct) duplicates after \(Self.rounds) SIGKILLs")
    }
}
