import AWS
import AsyncHTTPClient
import CQRSCore
import ExampleDomain
import Foundation
import Kafka
import Logging
import Router
import Subscribers
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The driver of `scripts/demo`:
///   fanout-demo create-table TABLE   creates the events table with its stream
///   fanout-demo drive TABLE ROUTES   sends commands, subscribes to every topic, checks what arrived
/// Reads FANOUT_BROKERS and the AWS_* settings from the environment.
@main
struct Demo {
    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["FANOUT_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
            return handler
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            switch (arguments.first, arguments.count) {
            case ("create-table", 2): try await createTable(arguments[1])
            case ("drive", 3): try await drive(table: arguments[1], routesPath: arguments[2])
            case ("subscribe", 3): try await subscribe(group: arguments[1], topic: arguments[2])
            default:
                fail("usage: fanout-demo create-table TABLE | fanout-demo drive TABLE ROUTES_FILE | fanout-demo subscribe GROUP TOPIC")
            }
        } catch {
            fail("fanout-demo: error: \(error)")
        }
    }

    static func fail(_ line: String) -> Never {
        // Nothing is left to report a failed write to: the exit status says it.
        _ = write(line + "\n", to: STDERR_FILENO)
        exit(1)
    }

    /// Writes `text` (a whole line) to standard output; a write that fails for good ends the process
    /// with exit status 1 (whoever reads the lines has gone, and a missing line would mislead them).
    static func printLine(_ text: String) {
        if let failure = write(text, to: STDOUT_FILENO) {
            fail("fanout-demo: error: cannot write to standard output: \(failure)")
        }
    }

    /// Writes all of `text` to `fd`, retrying when a signal interrupts the call; the error otherwise.
    /// (FileHandle's `write(_:)` traps on any error.)
    static func write(_ text: String, to fd: Int32) -> String? {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                offset += written
            }
            return nil
        }
    }

    static let logger = Logger(label: "fanout-demo")

    static func withStore<T>(table: String, _ body: (DynamoDBEventStore) async throws -> T) async throws -> T {
        let httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .forAWS())
        do {
            let aws = try AWSConfiguration.fromEnvironment()
            let store = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: httpClient, logger: logger), tableName: table)
            let result = try await body(store)
            try await httpClient.shutdown()
            return result
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
    }

    static func createTable(_ table: String) async throws {
        let arn = try await withStore(table: table) { try await $0.createTableIfMissing() }
        print("events table \(table) ready, stream \(arn ?? "?")")
    }

    /// The commands of the demo: two orders (one shipped, one cancelled) and their payments.
    static func commands(run: String) throws -> [GenericCommandMessage] {
        let a = "order-\(run)-a"
        let b = "order-\(run)-b"
        return [
            try GenericCommandMessage(PlaceOrder(orderId: a, customerId: "alice", total: 120.5, items: ["book", "lamp"])),
            try GenericCommandMessage(PlaceOrder(orderId: b, customerId: "bob", total: 42, items: ["mug"])),
            try GenericCommandMessage(ReceivePayment(paymentId: "payment-\(run)-a", orderId: a, amount: 120.5)),
            try GenericCommandMessage(ShipOrder(orderId: a, carrier: "ups")),
            try GenericCommandMessage(CancelOrder(orderId: b, reason: "changed mind")),
            try GenericCommandMessage(ReceivePayment(paymentId: "payment-\(run)-b", orderId: b, amount: 42)),
            try GenericCommandMessage(RefundPayment(paymentId: "payment-\(run)-b")),
        ]
    }

    static func drive(table: String, routesPath: String) async throws {
        guard let brokers = ProcessInfo.processInfo.environment["FANOUT_BROKERS"] else {
            fail("fanout-demo: error: FANOUT_BROKERS is not set")
        }
        let routes = CompiledRoutes(try RoutesFile.load(path: routesPath))
        let run = String(UUID().uuidString.prefix(6)).lowercased()

        // 1. Commands through the Dispatcher; their events land in the events table.
        let stored: [GenericDomainEventMessage] = try await withStore(table: table) { store in
            let dispatcher = makeExampleDispatcher(store: store)
            var stored: [GenericDomainEventMessage] = []
            print("== commands")
            for command in try commands(run: run) {
                let events = try await dispatcher.dispatch(command)
                print("  \(command.commandName) -> \(events.map { "\($0.eventName)(\($0.aggregateID) #\($0.sequenceNumber))" }.joined(separator: ", "))")
                stored += events
            }
            // A command that breaks the rules is refused with every violation named.
            do {
                try await dispatcher.dispatch(try GenericCommandMessage(PlaceOrder(orderId: "", customerId: "carol", total: -1, items: [])))
            } catch let error as CQRSCore.ValidationError {
                print("  PlaceOrder (invalid) -> refused: \(error)")
            }
            return stored
        }

        // 2. What routes.json says each topic must receive.
        var expected: [String: [GenericDomainEventMessage]] = [:]
        for topic in routes.file.topics.map(\.name) { expected[topic] = [] }
        for event in stored {
            for target in routes.targets(for: event) { expected[target.topic, default: []].append(event) }
        }

        // 3. One subscriber group per topic, each seeing only its topic.
        let received = Mutex<[String: [GenericDomainEventMessage]]>([:])
        let kafka = KafkaConfiguration(bootstrapServers: brokers)
        let groups = expected.keys.sorted().map { topic in
            SubscriberGroup(
                name: "fanout-demo-\(run)-\(topic)",
                configuration: kafka,
                subscriptions: [
                    Subscription(topic: topic) { event, context in
                        received.withLock { $0[context.topic, default: []].append(event) }
                    }
                ],
                logger: logger
            )
        }
        let wanted = expected
        let complete: @Sendable () -> Bool = {
            received.withLock { received in
                wanted.allSatisfy { topic, events in
                    Set(received[topic, default: []].map(\.messageID)).isSuperset(of: events.map(\.messageID))
                }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for subscriber in groups { group.addTask { try await subscriber.run() } }
            let deadline = ContinuousClock.now + .seconds(60)
            while !complete(), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
            // Anything extra would arrive now; give it a moment before judging.
            try await Task.sleep(for: .seconds(1))
            group.cancelAll()
        }

        // 4. Show and check.
        // The topics are routes.json's, on whatever broker this is: they may hold events of earlier runs
        // (or of the test suite). Only this run's events are judged; the others are counted.
        let ours = Set(stored.map(\.messageID))
        let result = received.withLock { $0 }
        var problems: [String] = []
        print("== what each subscriber group received (routes: \(routesPath))")
        for topic in expected.keys.sorted() {
            let all = result[topic, default: []]
            let got = all.filter { ours.contains($0.messageID) }
            let earlier = all.count - got.count
            print("  \(topic) (\(got.count) events of this run\(earlier > 0 ? "; \(earlier) older records in the topic not shown" : ""))")
            for event in got {
                print("    \(event.eventName.padding(toLength: 16, withPad: " ", startingAt: 0)) \(event.aggregateID) #\(event.sequenceNumber)")
            }
            let want = expected[topic, default: []]
            if got.map(\.messageID).sorted() != want.map(\.messageID).sorted() {
                problems.append("\(topic): expected \(want.map(\.eventName)) but received \(got.map(\.eventName))")
            }
            // Per-aggregate order.
            var last: [String: Int64] = [:]
            for event in got {
                if let previous = last[event.aggregateID], previous >= event.sequenceNumber {
                    problems.append("\(topic): \(event.aggregateID) #\(event.sequenceNumber) arrived after #\(previous)")
                }
                last[event.aggregateID] = event.sequenceNumber
            }
        }
        if problems.isEmpty {
            print("== ok: every topic received exactly what \(routesPath) routes to it, in per-aggregate order")
        } else {
            fail("== FAILED:\n  " + problems.joined(separator: "\n  "))
        }
    }
}
