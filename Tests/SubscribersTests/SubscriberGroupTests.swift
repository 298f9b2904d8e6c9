import CQRSCore
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
    static func publish(_ events: [GenericDomainEventMessage], to topic: String, brokers: String) async throws {
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger)
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 2, replicationFactor: 1, configs: [:])])
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

    @Test func aHandlerThatKeepsFailingStopsTheGroupWithoutCommitting() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("poison")
        try await Self.publish([Self.event("Placed", "p", 1)], to: topic, brokers: brokers)
        struct Broken: Error {}
        let groupName = TestServices.uniqueName("group")
        let failing = SubscriberGroup(
            name: groupName,
            configuration: KafkaConfiguration(bootstrapServers: brokers),
            subscriptions: [Subscription(topic: topic) { _, _ in throw Broken() }],
            maximumAttempts: 2,
            logger: Self.logger
        )
        let task = Task { try await failing.run() }
        await #expect(throws: HandlerFailedError.self) { try await task.value }

        // Nothing was committed: a healthy handler in the same group receives the event.
        let seen = Mutex<[String]>([])
        let healthy = SubscriberGroup(
            name: groupName,
            configuration: KafkaConfiguration(bootstrapServers: brokers),
            subscriptions: [Subscription(topic: topic) { event, _ in seen.withLock { $0.append(event.aggregateID) } }],
            logger: Self.logger
        )
        _ = try await Self.run(healthy) { !seen.withLock { $0 }.isEmpty }
        #expect(seen.withLock { $0 } == ["p"])
    }
}
