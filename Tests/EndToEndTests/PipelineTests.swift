import AWS
import AsyncHTTPClient
import CQRSCore
import Contracts
import Delivery
import ExampleDomain
import FanoutApp
import Foundation
import JSON
import Kafka
import Logging
import Router
import Settings
import Subscribers
import Synchronization
import TestSupport
import Testing

/// The whole pipe on real servers: commands → DynamoDB events table (moto) →
/// its stream → `Sidecar` with a routes file → Kafka topics (noida-db) →
/// subscriber groups.
@Suite(.serialized, .timeLimit(.minutes(2))) struct PipelineTests {
    static let logger = Logger(label: "e2e")

    /// A routes file with topics unique to this test run.
    struct Topics {
        let suffix = TestServices.uniqueName("e2e")
        var orders: String { "orders.\(suffix)" }
        var billing: String { "billing.\(suffix)" }
        var shipping: String { "shipping.\(suffix)" }
        var audit: String { "audit.\(suffix)" }
        var deadLetter: String { "dead-letter.\(suffix)" }
        var all: [String] { [orders, billing, shipping, audit] }

        func write() throws -> String {
            let text = """
                {
                  "version": 1,
                  "defaults": { "partitions": 3 },
                  "topics": { "\(orders)": { "partitions": 4 }, "\(billing)": {}, "\(shipping)": {}, "\(audit)": {} },
                  "routes": [
                    { "name": "orders", "events": ["Order*"], "to": ["\(orders)"] },
                    { "name": "billing", "events": ["OrderPlaced", "Payment*"], "to": ["\(billing)"] },
                    { "name": "shipping", "events": ["OrderShipped"], "to": ["\(shipping)"] },
                    { "name": "audit-payments", "events": ["Payment*"], "to": ["\(audit)"] },
                    { "name": "audit-cancellations", "events": ["*Cancelled"], "to": ["\(audit)"] }
                  ],
                  "deadLetterTopic": "\(deadLetter)"
                }
                """
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(suffix).json").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    static func awsConfiguration() throws -> AWSConfiguration {
        AWSConfiguration(
            region: "us-east-1",
            credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: try TestServices.awsEndpoint())!
        )
    }

    /// The fields in which two events differ (the timestamp compared to the millisecond the JSON form keeps).
    static func differences(_ a: GenericDomainEventMessage, _ b: GenericDomainEventMessage) -> [String] {
        var differences: [String] = []
        if a.messageID != b.messageID { differences.append("messageID") }
        if a.eventName != b.eventName { differences.append("eventName") }
        if a.aggregateID != b.aggregateID { differences.append("aggregateID") }
        if a.aggregateType != b.aggregateType { differences.append("aggregateType") }
        if a.sequenceNumber != b.sequenceNumber { differences.append("sequenceNumber") }
        if abs(a.timestamp.timeIntervalSince(b.timestamp)) >= 0.001 { differences.append("timestamp \(a.timestamp.timeIntervalSince1970) vs \(b.timestamp.timeIntervalSince1970)") }
        if a.payload != b.payload { differences.append("payload") }
        if a.metadata != b.metadata { differences.append("metadata") }
        return differences
    }

    struct Received: Sendable {
        var event: GenericDomainEventMessage
        var context: EventContext
    }

    @Test func eachTopicHoldsExactlyTheEventsItsRoutesSelect() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try Self.awsConfiguration()
        let topics = Topics()
        let routesPath = try topics.write()
        let table = TestServices.uniqueName("events")
        let httpClient = HTTPClient.forTests
        let store = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: httpClient, logger: Self.logger), tableName: table)
        try await store.createTableIfMissing()

        let sidecar = try await Sidecar.make(
            configuration: SidecarConfiguration(brokers: brokers, routesPath: routesPath, tableName: table, aws: aws),
            logger: Self.logger
        )
        let running = Task { try await sidecar.run() }

        // Commands of two orders and a payment, interleaved.
        let dispatcher = makeExampleDispatcher(store: store)
        var stored: [GenericDomainEventMessage] = []
        for command in [
            try GenericCommandMessage(PlaceOrder(orderId: "o-1", customerId: "alice", total: 10.5, items: ["a"])),
            try GenericCommandMessage(PlaceOrder(orderId: "o-2", customerId: "bob", total: 99, items: ["b", "c"])),
            try GenericCommandMessage(ShipOrder(orderId: "o-1", carrier: "dhl")),
            try GenericCommandMessage(ReceivePayment(paymentId: "p-1", orderId: "o-2", amount: 99)),
            try GenericCommandMessage(CancelOrder(orderId: "o-2", reason: "late")),
            try GenericCommandMessage(RefundPayment(paymentId: "p-1")),
        ] {
            stored += try await dispatcher.dispatch(command)
        }
        #expect(stored.map(\.eventName) == ["OrderPlaced", "OrderPlaced", "OrderShipped", "PaymentReceived", "OrderCancelled", "PaymentRefunded"])

        // What the routes file says, written out by hand.
        let expected: [String: [String]] = [
            topics.orders: ["o-1#1 OrderPlaced", "o-2#1 OrderPlaced", "o-1#2 OrderShipped", "o-2#2 OrderCancelled"],
            topics.billing: ["o-1#1 OrderPlaced", "o-2#1 OrderPlaced", "p-1#1 PaymentReceived", "p-1#2 PaymentRefunded"],
            topics.shipping: ["o-1#2 OrderShipped"],
            topics.audit: ["p-1#1 PaymentReceived", "o-2#2 OrderCancelled", "p-1#2 PaymentRefunded"],
        ]
        let total = expected.values.reduce(0) { $0 + $1.count }

        // One subscriber group per topic.
        let result = try await Self.collect(topics.all, brokers: brokers, expected: total)
        sidecar.requestStop()
        try await running.value

        for topic in topics.all {
            let got = result[topic, default: []]
            // Exactly the routed events, each once.
            #expect(got.map { "\($0.event.aggregateID)#\($0.event.sequenceNumber) \($0.event.eventName)" }.sorted() == expected[topic]!.sorted(), "topic \(topic)")
            // A subscriber of one topic never sees another topic's records.
            #expect(got.allSatisfy { $0.context.topic == topic })
            // Per-aggregate order.
            for aggregate in Set(got.map(\.event.aggregateID)) {
                let sequence = got.filter { $0.event.aggregateID == aggregate }.map(\.event.sequenceNumber)
                #expect(sequence == sequence.sorted(), "order of \(aggregate) in \(topic)")
            }
            for item in got {
                let original = stored.first { $0.messageID == item.event.messageID }
                // The value is the stored event, payload and metadata as plain JSON.
                #expect(original.map { Self.differences($0, item.event) } == [], "value of \(item.event.eventName) in \(topic)")
                // Key and headers of DESIGN.md's contract.
                #expect(item.context.key == item.event.aggregateID)
                #expect(item.context.header("content-type") == "application/json")
                #expect(item.context.header("fanout-event-name") == item.event.eventName)
                #expect(item.context.header("fanout-message-id") == item.event.messageID)
                #expect(item.context.header("fanout-aggregate-id") == item.event.aggregateID)
                #expect(item.context.header("fanout-source")?.hasPrefix(sidecar.streamARN + "/") == true)
            }
        }
        // The route header names the routes that chose the topic.
        let audited = result[topics.audit, default: []]
        #expect(Set(audited.compactMap { $0.context.header("fanout-route") }) == ["audit-payments", "audit-cancellations"])
        let counts = sidecar.pipeline.currentCounts
        #expect(counts.recordsRead == 6)
        #expect(counts.routedByTopic == expected.mapValues(\.count))
    }

    /// Collects what subscriber groups receive from `topics` until `expected` records arrived (or 60 s), plus 2 s for extras.
    static func collect(_ topics: [String], brokers: String, expected: Int) async throws -> [String: [Received]] {
        let received = Mutex<[String: [Received]]>([:])
        let groups = topics.map { topic in
            SubscriberGroup(
                name: TestServices.uniqueName("g-\(topic)"),
                configuration: KafkaConfiguration(bootstrapServers: brokers),
                subscriptions: [Subscription(topic: topic) { event, context in
                    received.withLock { $0[topic, default: []].append(Received(event: event, context: context)) }
                }],
                logger: Self.logger
            )
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for subscriber in groups { group.addTask { try await subscriber.run() } }
            let deadline = ContinuousClock.now + .seconds(60)
            while received.withLock({ $0.values.reduce(0) { $0 + $1.count } }) < expected, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .seconds(2))
            group.cancelAll()
        }
        return received.withLock { $0 }
    }

    /// The stream sequence number of a routed record, from its `fanout-source` header.
    static func streamSequence(_ item: Received) -> String {
        String(item.context.header("fanout-source")?.split(separator: "/").last ?? "")
    }

    @Test func reloadingUnderALiveStreamLosesDuplicatesAndSplitsNothing() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try Self.awsConfiguration()
        let suffix = TestServices.uniqueName("reload")
        let first = "first.\(suffix)"
        let second = "second.\(suffix)"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(suffix).json").path
        func routes(_ targets: [String]) -> String {
            let list = targets.map { "\"\($0)\"" }.joined(separator: ", ")
            return #"{"version": 1, "topics": {"\#(first)": {"partitions": 2}, "\#(second)": {"partitions": 2}}, "routes": [{"name": "ticks", "events": ["Tick"], "to": [\#(list)]}]}"#
        }
        try routes([first]).write(toFile: path, atomically: true, encoding: .utf8)
        let table = TestServices.uniqueName("events")
        let httpClient = HTTPClient.forTests
        let store = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: httpClient, logger: Self.logger), tableName: table)
        try await store.createTableIfMissing()
        let sidecar = try await Sidecar.make(
            configuration: SidecarConfiguration(
                brokers: brokers, routesPath: path, tableName: table, pollInterval: .milliseconds(20),
                routesPollInterval: .milliseconds(50), aws: aws
            ),
            logger: Self.logger
        )
        let running = Task { try await sidecar.run() }

        // Events keep arriving while the routes change underneath.
        let total = 240
        let writer = Task {
            for index in 1...total {
                let aggregate = "clock-\(index % 4)"
                try await store.append([GenericDomainEventMessage(
                    eventName: "Tick", aggregateID: aggregate, aggregateType: "Clock", sequenceNumber: Int64((index + 3) / 4), payload: ["n": .number(index)]
                )])
            }
        }
        while sidecar.pipeline.currentCounts.recordsRead < total / 3 {
            try await Task.sleep(for: .milliseconds(10))
        }
        try routes([first, second]).write(toFile: path, atomically: true, encoding: .utf8)
        try await writer.value
        while sidecar.pipeline.currentCounts.recordsRead < total {
            try await Task.sleep(for: .milliseconds(20))
        }
        let reloaded = sidecar.routes.status
        let received = try await Self.collect([first, second], brokers: brokers, expected: total + 1)
        sidecar.requestStop()
        try await running.value

        #expect(reloaded.reloads == 1)
        let inFirst = received[first, default: []]
        let inSecond = received[second, default: []]
        // The first topic holds every event exactly once.
        #expect(inFirst.count == total)
        #expect(Set(inFirst.map(\.event.messageID)).count == total)
        // The second topic holds each event at most once, and exactly the events after some point of the stream:
        // every event was routed by the old table or the new one, never by a mix, and nothing after the swap was missed.
        #expect(Set(inSecond.map(\.event.messageID)).count == inSecond.count)
        #expect(!inSecond.isEmpty && inSecond.count < total, "the reload should land mid-stream; \(inSecond.count) of \(total) went to the second topic")
        // Sequence numbers are decimal strings: order by length, then text.
        let sequences: [String] = inFirst.map(Self.streamSequence)
        let order: [String] = sequences.sorted { (a: String, b: String) -> Bool in
            a.count != b.count ? a.count < b.count : a < b
        }
        let secondSet = Set(inSecond.map(Self.streamSequence))
        if let cut = order.firstIndex(where: secondSet.contains) {
            #expect(Set(order[cut...]) == secondSet, "after the first event routed by the new table, every event must be routed by it")
        }
        // Per-aggregate order holds in both topics.
        for items in [inFirst, inSecond] {
            for aggregate in Set(items.map(\.event.aggregateID)) {
                let sequence = items.filter { $0.event.aggregateID == aggregate }.map(\.event.sequenceNumber)
                #expect(sequence == sequence.sorted())
            }
        }
    }

    @Test func inExactlyOnceModeANewInstanceFencesTheOldOneWhichStopsWithAClearError() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try Self.awsConfiguration()
        let topics = Topics()
        let routesPath = try topics.write()
        let table = TestServices.uniqueName("fence")
        let httpClient = HTTPClient.forTests
        let store = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: httpClient, logger: Self.logger), tableName: table)
        try await store.createTableIfMissing()
        let configuration = SidecarConfiguration(
            brokers: brokers, routesPath: routesPath, tableName: table, pollInterval: .milliseconds(20),
            application: table, exactlyOnce: true, aws: aws
        )
        func place(_ id: String) async throws {
            try await store.append([GenericDomainEventMessage(eventName: "OrderPlaced", aggregateID: id, aggregateType: "Order", sequenceNumber: 1, payload: [:])])
        }

        let old = try await Sidecar.make(configuration: configuration, logger: Self.logger)
        let oldRun = Task { try await old.run() }
        try await place("o-1")
        while old.pipeline.currentCounts.recordsRead < 1 { try await Task.sleep(for: .milliseconds(20)) }

        // A second instance of the same application takes over the transactional id.
        let new = try await Sidecar.make(configuration: configuration, logger: Self.logger)
        let newRun = Task { try await new.run() }
        try await place("o-2")
        let ended = await oldRun.result
        guard case .failure(let error) = ended else {
            Issue.record("the fenced instance kept running")
            return
        }
        #expect("\(error)".contains("another instance with the same application name took over the transactional id"), "\(error)")
        // The new instance resumes after the old one's committed checkpoint: it routes only o-2.
        while new.pipeline.currentCounts.recordsRead < 1 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(new.pipeline.currentCounts.recordsRead == 1)
        new.requestStop()
        try await newRun.value

        // read_committed: each event once in the orders topic, whoever routed it.
        var reading = KafkaConfiguration(bootstrapServers: brokers)
        reading["isolation.level"] = "read_committed"
        let messages = try await KafkaTopicReader.readToEnd(topic: topics.orders, configuration: reading, logger: Self.logger)
        let ids = try messages.map { try GenericDomainEventMessage(jsonBytes: $0.value).aggregateID }.sorted()
        #expect(ids == ["o-1", "o-2"])
    }
}
