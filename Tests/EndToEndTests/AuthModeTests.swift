import AWS
import AsyncHTTPClient
import CQRSCore
import ExampleDomain
import FanoutApp
import Foundation
import Kafka
import Logging
import Settings
import Subscribers
import Synchronization
import TestSupport
import Testing

/// The sidecar against a server that verifies SigV4 (moto in auth mode): its
/// signed DynamoDB and Streams calls are accepted with the real key, and a
/// wrong secret stops it at start with an error naming the key, never the secret.
@Suite(.serialized, .timeLimit(.minutes(2))) struct AuthModeTests {
    static let logger = Logger(label: "e2e-auth")

    static func routes(topic: String) throws -> String {
        let text = """
            { "version": 1, "topics": { "\(topic)": { "partitions": 1 } },
              "routes": [ { "name": "orders", "events": ["Order*"], "to": ["\(topic)"] } ] }
            """
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(topic).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func eventsWrittenWithTheRealKeyArriveInKafka() async throws {
        let server = try await startOffPool { try VerifyingMotoServer() }
        defer { server.stop() }
        let brokers = try TestServices.kafkaBrokers()
        let aws = try AWSConfiguration.fromEnvironment(server.environment(secret: server.secretAccessKey))
        let topic = "orders.\(TestServices.uniqueName("auth"))"
        let table = TestServices.uniqueName("auth-events")

        let httpClient = HTTPClient.forTests
        let store = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: httpClient, logger: Self.logger), tableName: table)
        try await store.createTableIfMissing()

        let sidecar = try await Sidecar.make(
            configuration: SidecarConfiguration(brokers: brokers, routesPath: try Self.routes(topic: topic), tableName: table, aws: aws),
            logger: Self.logger
        )
        let running = Task { try await sidecar.run() }

        let dispatcher = makeExampleDispatcher(store: store)
        var stored: [GenericDomainEventMessage] = []
        for command in [
            try GenericCommandMessage(PlaceOrder(orderId: "auth-1", customerId: "alice", total: 10.5, items: ["a"])),
            try GenericCommandMessage(ShipOrder(orderId: "auth-1", carrier: "dhl")),
        ] {
            stored += try await dispatcher.dispatch(command)
        }

        let received = Mutex<[String]>([])
        let group = SubscriberGroup(
            name: "g-\(topic)",
            configuration: KafkaConfiguration(bootstrapServers: brokers),
            subscriptions: [Subscription(topic: topic) { event, _ in
                received.withLock { $0.append("\(event.aggregateID)#\(event.sequenceNumber) \(event.eventName)") }
            }],
            logger: Self.logger
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(60)
            while received.withLock({ $0.count }) < stored.count, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            tasks.cancelAll()
        }
        sidecar.requestStop()
        try await running.value
        #expect(received.withLock { $0 }.sorted() == ["auth-1#1 OrderPlaced", "auth-1#2 OrderShipped"])
    }

    @Test func aWrongSecretFailsAtStartNamingTheKeyNotTheSecret() async throws {
        let server = try await startOffPool { try VerifyingMotoServer() }
        defer { server.stop() }
        let brokers = try TestServices.kafkaBrokers()
        let table = TestServices.uniqueName("auth-events")
        // The table exists (made with the real key), so only the signature can fail.
        let real = try AWSConfiguration.fromEnvironment(server.environment(secret: server.secretAccessKey))
        let httpClient = HTTPClient.forTests
        try await DynamoDBEventStore(
            dynamoDB: DynamoDB(configuration: real, httpClient: httpClient, logger: Self.logger), tableName: table
        ).createTableIfMissing()

        let wrongSecret = "WRONG" + String(server.secretAccessKey.dropFirst(5))
        let wrong = try AWSConfiguration.fromEnvironment(server.environment(secret: wrongSecret))
        let topic = "orders.\(TestServices.uniqueName("auth"))"
        do {
            _ = try await Sidecar.make(
                configuration: SidecarConfiguration(brokers: brokers, routesPath: try Self.routes(topic: topic), tableName: table, aws: wrong),
                logger: Self.logger
            )
            Issue.record("Sidecar.make accepted a wrong secret")
        } catch {
            let text = "\(error)"
            #expect(text.contains(server.accessKeyID), "\(text)")
            #expect(text.contains("SignatureDoesNotMatch"), "\(text)")
            #expect(!text.contains(wrongSecret))
            #expect(!text.contains(server.secretAccessKey))
        }
    }
}
