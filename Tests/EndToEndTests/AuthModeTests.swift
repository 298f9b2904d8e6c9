import AWS
import AsyncHTTPClient
import CQRSCore
import ExampleDomain
import FanoutApp
import Foundation
import Kafka
import Logging
import Subscribers
import Synchronization
import TestSupport
import Testing

/// A private moto_server that checks every signature, with one IAM user and
/// its access key: what real AWS would accept or refuse.
final class AuthModeMotoServer {
    let process = Process()
    let input = Pipe()
    let port: Int
    let accessKeyID: String
    let secretAccessKey: String

    static let script = #"""
        import os, sys, socket, threading
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"   # the IAM set-up below; signatures are checked after it
        s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
        from moto.server import ThreadedMotoServer
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        import boto3
        url = f"http://127.0.0.1:{port}"
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="fanout")
        iam.put_user_policy(UserName="fanout", PolicyName="all",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}')
        key = iam.create_access_key(UserName="fanout")["AccessKey"]
        print(port, key["AccessKeyId"], key["SecretAccessKey"], flush=True)
        threading.Timer(170, lambda: os._exit(0)).start()   # never outlive a crashed test
        sys.stdin.read()                                      # ends when the test closes stdin
        os._exit(0)
        """#

    init() throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script]
        process.standardOutput = output
        process.standardInput = input
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        let fields = String(decoding: line, as: UTF8.self).split(separator: " ").map(String.init)
        guard fields.count == 3, let port = Int(fields[0]) else {
            try? input.fileHandleForWriting.close()
            throw Failure(description: "moto_server in auth mode did not start: pip install 'moto[server]==5.2.1' boto3")
        }
        self.port = port
        accessKeyID = fields[1]
        secretAccessKey = fields[2]
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    var url: String { "http://127.0.0.1:\(port)" }

    /// The environment a deployment would give Fanout, with these keys.
    func environment(secret: String) -> [String: String] {
        [
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": url, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": accessKeyID, "AWS_SECRET_ACCESS_KEY": secret,
        ]
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

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
        let server = try AuthModeMotoServer()
        defer { server.stop() }
        let brokers = try TestServices.kafkaBrokers()
        let aws = try AWSConfiguration.fromEnvironment(server.environment(secret: server.secretAccessKey))
        let topic = "orders.\(TestServices.uniqueName("auth"))"
        let table = TestServices.uniqueName("auth-events")

        let httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .forAWS())
        defer { _ = Task { try? await httpClient.shutdown() } }
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
        let server = try AuthModeMotoServer()
        defer { server.stop() }
        let brokers = try TestServices.kafkaBrokers()
        let table = TestServices.uniqueName("auth-events")
        // The table exists (made with the real key), so only the signature can fail.
        let real = try AWSConfiguration.fromEnvironment(server.environment(secret: server.secretAccessKey))
        let httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .forAWS())
        defer { _ = Task { try? await httpClient.shutdown() } }
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
