import AWS
import AsyncHTTPClient
import CQRSCore
import ExampleDomain
import FanoutApp
import Foundation
import JSON
import Kafka
import Logging
import Settings
import Subscribers
import Synchronization
import TestSupport
import Testing

/// Commands → events table (moto) → Fanout → topics (noida-db) → subscriber groups, with
/// a failing handler, a retry, dead letters, a parked aggregate and its resolution through
/// `fanout dead-letters`, and a replay through `fanout replay`.
@Suite(.serialized, .timeLimit(.minutes(3))) struct SubscriberPipelineTests {
    static let logger = Logger(label: "e2e-subscribers")

    @Test func failuresAreRetriedDeadLetteredParkedResolvedAndReplayed() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try PipelineTests.awsConfiguration()
        let topics = PipelineTests.Topics()
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
        let dispatcher = makeExampleDispatcher(store: store)

        // The warehouse handler: o-1's shipment keeps failing while the warehouse is down;
        // o-2's placement fails once (then a retry succeeds).
        struct WarehouseDown: Error, CustomStringConvertible { var description: String { "warehouse is down" } }
        let isDown = Mutex(true)
        let flakyOnce = Mutex(true)
        let handled = Mutex<[String]>([])
        let attempts = Mutex<[String: Int]>([:])
        let groupName = TestServices.uniqueName("warehouse")
        let makeGroup = {
            SubscriberGroup(
                name: groupName, configuration: KafkaConfiguration(bootstrapServers: brokers),
                subscriptions: [Subscription(topic: topics.orders) { event, _ in
                    let label = "\(event.aggregateID)#\(event.sequenceNumber)"
                    attempts.withLock { $0[label, default: 0] += 1 }
                    if event.aggregateID == "o-1", event.eventName == OrderShipped.eventName, isDown.withLock({ $0 }) { throw WarehouseDown() }
                    if label == "o-2#1", flakyOnce.withLock({ let f = $0; $0 = false; return f }) { throw WarehouseDown() }
                    handled.withLock { $0.append(label) }
                }],
                maximumAttempts: 3, sequencedParking: true, retryBackoff: .milliseconds(20),
                logger: Self.logger
            )
        }
        let group = makeGroup()
        let subscriber = Task { try await group.run() }

        for command in [
            try GenericCommandMessage(PlaceOrder(orderId: "o-1", customerId: "alice", total: 10, items: ["a"])),
            try GenericCommandMessage(PlaceOrder(orderId: "o-2", customerId: "bob", total: 20, items: ["b"])),
            try GenericCommandMessage(ShipOrder(orderId: "o-1", carrier: "dhl")),
            try GenericCommandMessage(CancelOrder(orderId: "o-2", reason: "late")),
        ] {
            try await dispatcher.dispatch(command)
        }
        try await Self.waitUntil { handled.withLock { Set($0).isSuperset(of: ["o-1#1", "o-2#1", "o-2#2"]) } }
        #expect(attempts.withLock { $0["o-2#1"] } == 2)   // failed once, retried
        try await Self.waitUntil { attempts.withLock { $0["o-1#2"] } == 3 }

        // o-1#2 is dead-lettered after 3 attempts; o-1's next event is parked behind it.
        try await store.append([GenericDomainEventMessage(eventName: "OrderNoted", aggregateID: "o-1", aggregateType: "Order", sequenceNumber: 3, payload: ["note": "gift wrap"])])
        let listing = { () async throws -> [String] in
            let result = try await Self.fanout(["dead-letters", "list", "--brokers", brokers, "--group", groupName])
            #expect(result.status == 0, "\(result.standardError)")
            return result.standardOutput.split(separator: "\n").map(String.init)
        }
        try await Self.waitUntilAsync { (try? await listing().contains { $0.contains("parked") && $0.contains("event=OrderNoted#3") }) == true }
        var lines = try await listing()
        #expect(lines.contains { $0.contains("failed") && $0.contains("key=o-1") && $0.contains("origin=\(topics.orders)[") && $0.contains("event=OrderShipped#2") && $0.contains("attempts=3") && $0.contains("reason=warehouse is down") })
        #expect(lines.contains { $0.hasPrefix("unresolved: o-1: ") })
        #expect(!handled.withLock { $0 }.contains("o-1#3"))

        // The warehouse is back: a retry through the command line resolves o-1 in order.
        isDown.withLock { $0 = false }
        let retry = try await Self.fanout(["dead-letters", "retry", "--brokers", brokers, "--group", groupName, "--key", "o-1", "--execute"])
        #expect(retry.status == 0, "\(retry.standardError)")
        try await Self.waitUntil { handled.withLock { $0.contains("o-1#3") } }
        #expect(handled.withLock { $0 }.filter { $0.hasPrefix("o-1") } == ["o-1#1", "o-1#2", "o-1#3"])
        try await Self.waitUntilAsync { (try? await listing().contains("unresolved: none")) == true }
        lines = try await listing()
        #expect(lines.contains { $0.contains("resolved") && $0.contains("key=o-1") })

        // A stream record that is not an event goes to the Router's dead-letter topic, which
        // `fanout dead-letters list --topic` lists too.
        try await store.dynamoDB.putItem(table: table, item: ["aggregateId": .s("junk-1"), "sequenceNumber": .n("1")])
        let routerListing = { () async throws -> [String] in
            let result = try await Self.fanout(["dead-letters", "list", "--brokers", brokers, "--topic", topics.deadLetter])
            return result.status == 0 ? result.standardOutput.split(separator: "\n").map(String.init) : []
        }
        try await Self.waitUntilAsync { (try? await routerListing().contains { $0.contains("router") && $0.contains("key=junk-1") }) == true }
        #expect(try await routerListing().contains { $0.contains("router") && $0.contains("key=junk-1") && $0.contains("reason=not an event") })

        subscriber.cancel()
        try await subscriber.value
        sidecar.requestStop()
        try await running.value

        // Replay the group from the beginning: every event of the topic again, in order per order.
        let replay = try await Self.fanout(["replay", "--brokers", brokers, "--group", groupName, "--topic", topics.orders, "--from", "earliest", "--execute"])
        #expect(replay.status == 0, "\(replay.standardError)")
        let replayLines = replay.standardOutput.split(separator: "\n")
        #expect(replayLines.count == 5)   // one line per partition (before -> after), then what was done
        #expect(replayLines.last?.hasPrefix("committed") == true)
        handled.withLock { $0 = [] }
        let again = Task { try await makeGroup().run() }
        try await Self.waitUntil { handled.withLock { $0.count } >= 5 }
        try await Task.sleep(for: .seconds(1))
        again.cancel()
        try await again.value
        #expect(handled.withLock { $0 }.sorted() == ["o-1#1", "o-1#2", "o-1#3", "o-2#1", "o-2#2"])
        #expect(handled.withLock { $0 }.filter { $0.hasPrefix("o-1") } == ["o-1#1", "o-1#2", "o-1#3"])

        let bad = try await Self.fanout(["replay", "--brokers", brokers, "--group", groupName, "--topic", topics.orders, "--from", "yesterday"])
        #expect(bad.status == 1)
        #expect(bad.standardError.contains("--from: \"yesterday\" is not earliest, latest, an offset or an ISO-8601 time"))
    }

    @Test func listingATopicThatDoesNotExistIsAnError() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("no-such-dlq")
        let result = try await Self.fanout(["dead-letters", "list", "--brokers", brokers, "--topic", topic])
        #expect(result.status == 1)
        #expect(result.standardError.contains("topic '\(topic)' does not exist"))
        let neither = try await Self.fanout(["dead-letters", "list", "--brokers", brokers])
        #expect(neither.status == 1)
        #expect(neither.standardError.contains("give either --group or --topic"))
    }

    struct Output: Sendable {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// Runs the built `fanout` binary to its end (at most 30 s) without blocking the cooperative pool.
    static func fanout(_ arguments: [String]) async throws -> Output {
        let (result, timedOut) = try await ChildProcess.run(CommandLineTests.binary.path, arguments, timeout: .seconds(30))
        if timedOut {
            Issue.record("fanout \(arguments.joined(separator: " ")) did not end within 30 s")
        }
        return Output(status: result.status, standardOutput: result.standardOutput, standardError: result.standardError)
    }

    static func waitUntilAsync(_ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !(await condition()) {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met within 30 s")
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met within 30 s")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
