import CQRSCore
import Contracts
import Foundation
import JSON
import Kafka
import Logging
import Subscribers
import Synchronization
import TestSupport
import Testing

/// Subscriber groups against the real broker (noida-db).
@Suite(.timeLimit(.minutes(2))) struct SubscriberGroupTests {
    static let logger = Logger(label: "subscribers-test")

    static func event(_ name: String, _ aggregate: String, _ sequence: Int64) -> GenericDomainEventMessage {
        GenericDomainEventMessage(eventName: name, aggregateID: aggregate, aggregateType: "T", sequenceNumber: sequence, payload: ["n": .number(sequence)])
    }

    /// Publishes events as Fanout does (key = aggregate id, value = the event JSON).
    static func publish(_ events: [GenericDomainEventMessage], to topic: String, brokers: String, partitions: Int32 = 2) async throws {
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger)
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: partitions, replicationFactor: 1, configs: [:])])
        admin.close()
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger)
        _ = try await producer.send(events.map {
            KafkaProducerRecord(topic: topic, key: Array($0.aggregateID.utf8), value: $0.jsonBytes(), headers: [KafkaHeader(key: "fanout-event-name", string: $0.eventName)])
        })
        await producer.shutdown()
    }

    /// Runs the group until `condition` holds (or 30 s), then cancels it; returns how `run()` ended.
    static func run(_ group: SubscriberGroup, until condition: @escaping @Sendable () -> Bool) async throws -> (any Error)? {
        let task = Task { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition(), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(500))
        task.cancel()
        do {
            try await task.value
            return nil
        } catch {
            return error
        }
    }

    @Test func handlersReceiveOnlyTheirEventsInOrderAndCommitsSurviveARestart() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("sub")
        let events = (1...4).flatMap { sequence in
            [Self.event(sequence % 2 == 0 ? "Shipped" : "Placed", "a", sequence), Self.event("Placed", "b\(sequence)", 1)]
        }
        try await Self.publish(events, to: topic, brokers: brokers)

        let all = Mutex<[GenericDomainEventMessage]>([])
        let shippedOnly = Mutex<[String]>([])
        let groupName = TestServices.uniqueName("group")
        let makeGroup = {
            SubscriberGroup(
                name: groupName,
                configuration: KafkaConfiguration(bootstrapServers: brokers),
                subscriptions: [
                    Subscription(topic: topic) { event, context in
                        #expect(context.key == event.aggregateID)
                        all.withLock { $0.append(event) }
                    },
                    Subscription(topic: topic, eventNames: ["Shipped"]) { event, _ in shippedOnly.withLock { $0.append(event.eventName) } },
                ],
                logger: Self.logger
            )
        }
        let ended = try await Self.run(makeGroup()) { all.withLock { $0.count } >= events.count }
        #expect(ended == nil)
        let received = all.withLock { $0 }
        #expect(received.map(\.messageID).sorted() == events.map(\.messageID).sorted())
        #expect(received.filter { $0.aggregateID == "a" }.map(\.sequenceNumber) == [1, 2, 3, 4])
        #expect(shippedOnly.withLock { $0 } == ["Shipped", "Shipped"])

        // The same group again: everything was committed, so nothing comes twice.
        try await Self.publish([Self.event("Placed", "c", 1)], to: topic, brokers: brokers)
        all.withLock { $0 = [] }
        _ = try await Self.run(makeGroup()) { all.withLock { !$0.isEmpty } }
        #expect(all.withLock { $0 }.map(\.aggregateID) == ["c"])
    }

    @Test func aFailingHandlerIsRetriedThenSucceeds() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("retry")
        try await Self.publish([Self.event("Placed", "r", 1)], to: topic, brokers: brokers)
        struct Flaky: Error {}
        let calls = Mutex(0)
        let group = SubscriberGroup(
            name: TestServices.uniqueName("group"),
            configuration: KafkaConfiguration(bootstrapServers: brokers),
            subscriptions: [Subscription(topic: topic) { _, _ in
                let call = calls.withLock { $0 += 1; return $0 }
                if call < 3 { throw Flaky() }
            }],
            logger: Self.logger
        )
        let ended = try await Self.run(group) { calls.withLock { $0 } >= 3 }
        #expect(ended == nil)
        #expect(calls.withLock { $0 } == 3)
    }

    @Test func aHandlerThatKeepsFailingDeadLettersTheEventAndTheGroupMovesOn() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("poison")
        try await Self.publish([Self.event("Placed", "p", 1), Self.event("Placed", "q", 1)], to: topic, brokers: brokers, partitions: 1)
        struct Broken: Error, CustomStringConvertible { var description: String { "broken handler" } }
        let groupName = TestServices.uniqueName("group")
        let calls = Mutex<[String]>([])
        let makeGroup = {
            SubscriberGroup(
                name: groupName,
                configuration: KafkaConfiguration(bootstrapServers: brokers),
                subscriptions: [Subscription(topic: topic) { event, _ in
                    calls.withLock { $0.append(event.aggregateID) }
                    if event.aggregateID == "p" { throw Broken() }
                }],
                maximumAttempts: 2,
                retryBackoff: .milliseconds(10),
                logger: Self.logger
            )
        }
        let ended = try await Self.run(makeGroup()) { calls.withLock { $0.count } >= 3 }
        #expect(ended == nil)
        // p and q are different keys: they run concurrently, so only the counts are fixed.
        #expect(calls.withLock { $0 }.sorted() == ["p", "p", "q"])

        let letters = try await DeadLetterTopic.read(topic: DeadLetterTopic.name(forGroup: groupName), configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Self.logger)
        #expect(letters.count == 1)
        let letter = try #require(letters.first)
        #expect(letter.kind == .failed)
        #expect(letter.key == "p")
        #expect(letter.attempts == 2)
        #expect(letter.reason == "broken handler")
        #expect(letter.group == groupName)
        #expect(letter.originTopic == topic)
        #expect(letter.originPartition == 0)
        #expect(letter.originOffset == 0)
        #expect(try GenericDomainEventMessage(jsonBytes: letter.value).aggregateID == "p")

        // Both were committed: a new run of the group receives only what comes next.
        try await Self.publish([Self.event("Placed", "r", 1)], to: topic, brokers: brokers, partitions: 1)
        calls.withLock { $0 = [] }
        _ = try await Self.run(makeGroup()) { calls.withLock { !$0.isEmpty } }
        #expect(calls.withLock { $0 } == ["r"])
    }

    @Test func aRecordThatIsNotAnEventGoesToTheDeadLetters() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("garbage")
        try await Self.publishRaw([(key: "g", value: Array("not json".utf8))], to: topic, brokers: brokers)
        try await Self.publish([Self.event("Placed", "ok", 1)], to: topic, brokers: brokers, partitions: 1)
        let groupName = TestServices.uniqueName("group")
        let seen = Mutex<[String]>([])
        let group = SubscriberGroup(
            name: groupName, configuration: KafkaConfiguration(bootstrapServers: brokers),
            subscriptions: [Subscription(topic: topic) { event, _ in seen.withLock { $0.append(event.aggregateID) } }],
            logger: Self.logger
        )
        _ = try await Self.run(group) { !seen.withLock { $0 }.isEmpty }
        #expect(seen.withLock { $0 } == ["ok"])
        let letters = try await DeadLetterTopic.read(topic: group.deadLetterTopic, configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Self.logger)
        #expect(letters.map(\.kind) == [.notAnEvent])
        #expect(letters.first?.value == Array("not json".utf8))
        #expect(letters.first?.reason?.hasPrefix("not a Fanout event") == true)
    }

    @Test func differentKeysRunConcurrentlyInOrderPerKeyAndCommitsStopAtTheFirstUnfinishedEvent() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("keys")
        // One partition: a1 b1 b2 b3 a2 a3.
        let events = [Self.event("E", "a", 1)] + (1...3).map { Self.event("E", "b", $0) } + [Self.event("E", "a", 2), Self.event("E", "a", 3)]
        try await Self.publish(events, to: topic, brokers: brokers, partitions: 1)
        struct Crash: Error {}
        let seen = Mutex<[String]>([])
        let groupName = TestServices.uniqueName("group")
        // a1 waits until every b event was handled: only possible when keys run concurrently.
        // It then fails while the group stops, so it is never finished.
        let first = SubscriberGroup(
            name: groupName, configuration: KafkaConfiguration(bootstrapServers: brokers),
            subscriptions: [Subscription(topic: topic) { event, _ in
                if event.aggregateID == "a", event.sequenceNumber == 1 {
                    let deadline = ContinuousClock.now + .seconds(15)
                    while seen.withLock({ $0.filter { $0.hasPrefix("b") }.count }) < 3, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    try await Task.sleep(for: .seconds(1))
                    throw Crash()
                }
                seen.withLock { $0.append("\(event.aggregateID)\(event.sequenceNumber)") }
            }],
            maximumAttempts: 3,
            logger: Self.logger
        )
        let task = Task { try await first.run() }
        let deadline = ContinuousClock.now + .seconds(20)
        while seen.withLock({ $0.count }) < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        // b's events ran while a1 was still running; a2 and a3 wait behind a1.
        #expect(seen.withLock { $0 } == ["b1", "b2", "b3"])
        task.cancel()
        try await task.value

        // a1 was never finished, so nothing at or after it was committed: a1 is not lost.
        seen.withLock { $0 = [] }
        let second = SubscriberGroup(
            name: groupName, configuration: KafkaConfiguration(bootstrapServers: brokers),
            subscriptions: [Subscription(topic: topic) { event, _ in seen.withLock { $0.append("\(event.aggregateID)\(event.sequenceNumber)") } }],
            logger: Self.logger
        )
        _ = try await Self.run(second) { seen.withLock { $0.count } >= 6 }
        let received = seen.withLock { $0 }
        #expect(received.filter { $0.hasPrefix("a") } == ["a1", "a2", "a3"])
        #expect(received.filter { $0.hasPrefix("b") } == ["b1", "b2", "b3"])
    }

    @Test func sequencedParkingHoldsTheAggregateAcrossARestartUntilARetryResolvesIt() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        let topic = TestServices.uniqueName("park")
        try await Self.publish([Self.event("E", "k", 1), Self.event("E", "k", 2), Self.event("E", "x", 1), Self.event("E", "k", 3)], to: topic, brokers: brokers, partitions: 1)
        struct Down: Error, CustomStringConvertible { var description: String { "downstream is down" } }
        let isBroken = Mutex(true)
        let handled = Mutex<[String]>([])
        let groupName = TestServices.uniqueName("group")
        let makeGroup = {
            SubscriberGroup(
                name: groupName, configuration: configuration,
                subscriptions: [Subscription(topic: topic) { event, _ in
                    if event.aggregateID == "k", isBroken.withLock({ $0 }) { throw Down() }
                    handled.withLock { $0.append("\(event.aggregateID)\(event.sequenceNumber)") }
                }],
                maximumAttempts: 2, sequencedParking: true, retryBackoff: .milliseconds(10),
                logger: Self.logger
            )
        }
        let deadLetters = { try await DeadLetterTopic.read(topic: DeadLetterTopic.name(forGroup: groupName), configuration: configuration, logger: Self.logger) }
        let first = makeGroup()
        let firstRun = Task { try await first.run() }
        try await Self.waitUntil { handled.withLock { $0.contains("x1") } }
        var letters: [DeadLetterEntry] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while letters.count < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            letters = try await deadLetters()
        }
        firstRun.cancel()
        try await firstRun.value
        #expect(letters.map(\.kind) == [.failed, .parked, .parked])
        #expect(letters.compactMap { try? GenericDomainEventMessage(jsonBytes: $0.value).sequenceNumber } == [1, 2, 3])
        #expect(letters.dropFirst().allSatisfy { $0.parkedBehind == letters[0].offset })
        #expect(handled.withLock { $0 } == ["x1"])

        // A restart: the parked aggregate is rebuilt from the dead-letter topic, so k4 is parked too.
        try await Self.publish([Self.event("E", "k", 4), Self.event("E", "y", 1)], to: topic, brokers: brokers, partitions: 1)
        isBroken.withLock { $0 = false }
        let group = makeGroup()
        let running = Task { try await group.run() }
        try await Self.waitUntil { handled.withLock { $0.contains("y1") } }
        let parkedDeadline = ContinuousClock.now + .seconds(20)
        while letters.count < 4, ContinuousClock.now < parkedDeadline {
            try await Task.sleep(for: .milliseconds(200))
            letters = try await deadLetters()
        }
        #expect(letters.map(\.kind) == [.failed, .parked, .parked, .parked])
        #expect(handled.withLock { $0 } == ["x1", "y1"])

        // The retry runs k1..k4 in order through the handler, and unparks k.
        try await DeadLetterTopic.requestRetry(group: groupName, key: "k", configuration: configuration, logger: Self.logger)
        try await Self.waitUntil { handled.withLock { $0.count } >= 6 }
        #expect(handled.withLock { $0 } == ["x1", "y1", "k1", "k2", "k3", "k4"])
        try await Self.publish([Self.event("E", "k", 5)], to: topic, brokers: brokers, partitions: 1)
        try await Self.waitUntil { handled.withLock { $0.contains("k5") } }
        running.cancel()
        try await running.value
        letters = try await deadLetters()
        #expect(letters.map(\.kind) == [.failed, .parked, .parked, .parked, .retry, .resolved])
        #expect(letters.last?.resolves == letters.prefix(4).map(\.offset))
    }

    @Test func replayMovesOnlyThatGroupToTheBeginningAnOffsetOrATime() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        let topic = TestServices.uniqueName("replay")
        try await Self.publish((1...3).map { Self.event("E", "a", $0) }, to: topic, brokers: brokers, partitions: 1)
        try await Task.sleep(for: .milliseconds(1500))
        let middle = Date()
        try await Task.sleep(for: .milliseconds(500))
        try await Self.publish((4...5).map { Self.event("E", "a", $0) }, to: topic, brokers: brokers, partitions: 1)

        let seen = Mutex<[Int64]>([])
        let makeGroup = { (name: String) in
            SubscriberGroup(
                name: name, configuration: configuration,
                subscriptions: [Subscription(topic: topic) { event, _ in seen.withLock { $0.append(event.sequenceNumber) } }],
                logger: Self.logger
            )
        }
        let replayed = TestServices.uniqueName("group")
        let other = TestServices.uniqueName("group")
        for name in [replayed, other] {
            seen.withLock { $0 = [] }
            _ = try await Self.run(makeGroup(name)) { seen.withLock { $0.count } >= 5 }
            #expect(seen.withLock { $0 } == [1, 2, 3, 4, 5])
        }

        for (position, expected) in [(KafkaGroupOffsets.Position.earliest, [Int64(1), 2, 3, 4, 5]), (.offset(3), [4, 5]), (.timestamp(middle), [4, 5])] {
            let offsets = try await makeGroup(replayed).replay(topic: topic, from: position)
            #expect(offsets.map(\.offset) == [expected[0] - 1], "\(position)")
            seen.withLock { $0 = [] }
            _ = try await Self.run(makeGroup(replayed)) { seen.withLock { $0.count } >= expected.count }
            #expect(seen.withLock { $0 } == expected, "\(position)")
        }

        // The other group was not moved: it has nothing new to read.
        try await Self.publish([Self.event("E", "a", 6)], to: topic, brokers: brokers, partitions: 1)
        seen.withLock { $0 = [] }
        _ = try await Self.run(makeGroup(other)) { !seen.withLock { $0 }.isEmpty }
        #expect(seen.withLock { $0 } == [6])
    }

    @Test func replayRefusesAGroupThatIsRunning() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("busy")
        try await Self.publish([Self.event("E", "a", 1)], to: topic, brokers: brokers, partitions: 1)
        let seen = Mutex(0)
        let group = SubscriberGroup(
            name: TestServices.uniqueName("group"), configuration: KafkaConfiguration(bootstrapServers: brokers),
            subscriptions: [Subscription(topic: topic) { _, _ in seen.withLock { $0 += 1 } }],
            logger: Self.logger
        )
        let running = Task { try await group.run() }
        try await Self.waitUntil { seen.withLock { $0 } == 1 }
        await #expect(throws: KafkaError.self) { try await group.replay(topic: topic, from: .earliest) }
        running.cancel()
        try await running.value
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met within 20 s")
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func publishRaw(_ records: [(key: String, value: [UInt8])], to topic: String, brokers: String) async throws {
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger)
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 1, replicationFactor: 1, configs: [:])])
        admin.close()
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger)
        _ = try await producer.send(records.map { KafkaProducerRecord(topic: topic, key: Array($0.key.utf8), value: $0.value) })
        await producer.shutdown()
    }
}
