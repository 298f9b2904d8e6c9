import AWS
import AsyncHTTPClient
import CQRSCore
import Contracts
import Delivery
import Foundation
import JSON
import Kafka
import Logging
import StreamReader
import TestSupport
import Testing

/// The tools that change what others read (`replay`, `dead-letters retry`, `checkpoints reset`) look before they
/// leap: unknown groups and topics are refused, a dry run is the default; listings print JSON; `tail` pipes into
/// `routes explain`. The `fanout` binary against the real broker (and moto for the stream).
@Suite(.timeLimit(.minutes(3))) struct LookBeforeLeapingTests {
    static let logger = Logger(label: "look-before-leaping")

    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    /// A dead-letter topic of one partition holding one `failed` entry for o-1, with `header` besides its kind.
    static func makeDeadLetterTopic(_ topic: String, admin: KafkaAdmin, brokers: String, header: KafkaHeader) async throws {
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 1)])
        try await OperatorCommandsTests.produce([
            KafkaProducerRecord(
                topic: topic, key: Array("o-1".utf8), value: Array(#"{"eventName":"OrderShipped","aggregateId":"o-1","sequenceNumber":2}"#.utf8),
                headers: [KafkaHeader(key: DeadLetterHeader.kind, string: "failed"), header],
                partition: 0
            ),
        ], brokers: brokers)
    }

    /// The group's committed offsets in `topic`, by partition (nil: none), read without changing them.
    static func committed(group: String, topic: String, brokers: String) async throws -> [Int64?] {
        try await KafkaGroupOffsets.plan(
            group: group, topic: topic, to: .earliest, configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger
        ).moves.map(\.current)
    }

    @Test func replayRefusesUnknownGroupsAndTopicsDryRunsByDefaultAndActsWithExecute() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("replay")
        let group = TestServices.uniqueName("replay-group")
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        let admin = try KafkaAdmin(configuration: configuration, logger: Self.logger)
        defer { admin.close() }
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 2)])
        try await OperatorCommandsTests.produce(
            (0..<6).map { KafkaProducerRecord(topic: topic, key: nil, value: Array("r\($0)".utf8), partition: Int32($0 % 2)) }, brokers: brokers
        )

        // A group the broker does not know: refused, and still unknown afterwards.
        let unknown = try await CommandLineTests.run(["replay", "--group", group, "--topic", topic, "--from", "earliest", "--execute", "--brokers", brokers])
        #expect(unknown.status == 1)
        #expect(unknown.standardError.hasPrefix("fanout: error: consumer group '\(group)' does not exist"), "\(unknown.standardError)")
        #expect(unknown.standardError.contains("add --create"))
        #expect(Self.lines(unknown.standardError).count == 1)
        #expect(try await Self.committed(group: group, topic: topic, brokers: brokers) == [nil, nil])
        let missingTopic = try await CommandLineTests.run(["replay", "--group", group, "--topic", "\(topic).missing", "--from", "earliest", "--brokers", brokers])
        #expect(missingTopic.status == 1)
        #expect(missingTopic.standardError.hasPrefix("fanout: error: topic '\(topic).missing' does not exist"), "\(missingTopic.standardError)")

        // --create: a new group, at the end of the topic.
        let created = try await CommandLineTests.run(["replay", "--group", group, "--topic", topic, "--from", "latest", "--create", "--execute", "--brokers", brokers])
        #expect(created.status == 0, "\(created.standardError)")
        #expect(Self.lines(created.standardOutput).prefix(2) == ["\(group) \(topic)[0]: none -> 3", "\(group) \(topic)[1]: none -> 3"])
        #expect(try await Self.committed(group: group, topic: topic, brokers: brokers) == [3, 3])

        // A dry run shows before -> after and changes nothing.
        let dry = try await CommandLineTests.run(["replay", "--group", group, "--topic", topic, "--from", "1", "--brokers", brokers])
        #expect(dry.status == 0, "\(dry.standardError)")
        #expect(Self.lines(dry.standardOutput) == [
            "\(group) \(topic)[0]: 3 -> 1", "\(group) \(topic)[1]: 3 -> 1", "dry run: nothing changed; add --execute to commit these offsets",
        ])
        #expect(try await Self.committed(group: group, topic: topic, brokers: brokers) == [3, 3])

        // --execute moves them, and says so.
        let executed = try await CommandLineTests.run(["replay", "--group", group, "--topic", topic, "--from", "earliest", "--execute", "--brokers", brokers])
        #expect(executed.status == 0, "\(executed.standardError)")
        #expect(Self.lines(executed.standardOutput).prefix(2) == ["\(group) \(topic)[0]: 3 -> 0", "\(group) \(topic)[1]: 3 -> 0"])
        #expect(Self.lines(executed.standardOutput).last?.hasPrefix("committed") == true)
        #expect(try await Self.committed(group: group, topic: topic, brokers: brokers) == [0, 0])
    }

    @Test func deadLettersRetryRefusesAGroupWithoutADeadLetterTopicAndDryRunsByDefault() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        let admin = try KafkaAdmin(configuration: configuration, logger: Self.logger)
        defer { admin.close() }
        let group = TestServices.uniqueName("retry-group")
        let topic = "\(group).dead-letter"

        let unknown = try await CommandLineTests.run(["dead-letters", "retry", "--group", group, "--key", "o-1", "--execute", "--brokers", brokers])
        #expect(unknown.status == 1)
        #expect(unknown.standardError.hasPrefix("fanout: error: subscriber group '\(group)' has no dead-letter topic \(topic)"), "\(unknown.standardError)")
        #expect(Self.lines(unknown.standardError).count == 1)
        #expect(try await admin.listTopics()[topic] == nil)

        // The group's dead-letter topic, with one failed event of o-1.
        try await Self.makeDeadLetterTopic(topic, admin: admin, brokers: brokers, header: KafkaHeader(key: DeadLetterHeader.reason, string: "down"))
        func records() async throws -> [KafkaConsumerMessage] {
            try await KafkaTopicReader.readToEnd(topic: topic, configuration: configuration, timeout: .seconds(10), logger: Self.logger)
        }

        let nothing = try await CommandLineTests.run(["dead-letters", "retry", "--group", group, "--key", "o-9", "--execute", "--brokers", brokers])
        #expect(nothing.status == 1)
        #expect(nothing.standardError.contains("has no unresolved dead letters of key 'o-9'"), "\(nothing.standardError)")

        let dry = try await CommandLineTests.run(["dead-letters", "retry", "--group", group, "--key", "o-1", "--brokers", brokers])
        #expect(dry.status == 0, "\(dry.standardError)")
        #expect(Self.lines(dry.standardOutput) == [
            "o-1: 1 unresolved dead letter(s) in \(topic) at offset(s) 0",
            "\(topic)[0]: 1 -> 2 (a retry request for o-1)",
            "dry run: nothing written; add --execute to request the retry",
        ])
        #expect(try await records().count == 1)

        let executed = try await CommandLineTests.run(["dead-letters", "retry", "--group", group, "--key", "o-1", "--execute", "--brokers", brokers])
        #expect(executed.status == 0, "\(executed.standardError)")
        #expect(Self.lines(executed.standardOutput).dropFirst().first == "\(topic)[0]: 1 -> 2 (a retry request for o-1)")
        let written = try await records()
        #expect(written.count == 2)
        #expect(written.last?.headers.first { $0.key == DeadLetterHeader.kind }?.stringValue == "retry")

        // --create: a group that has not started yet gets its topic, and the request waits for it.
        let newGroup = TestServices.uniqueName("retry-new")
        let created = try await CommandLineTests.run(["dead-letters", "retry", "--group", newGroup, "--key", "o-1", "--create", "--execute", "--brokers", brokers])
        #expect(created.status == 0, "\(created.standardError)")
        #expect(Self.lines(created.standardOutput).contains("\(newGroup).dead-letter[0]: 0 -> 1 (a retry request for o-1)"), "\(created.standardOutput)")
        #expect(try await admin.listTopics()["\(newGroup).dead-letter"] == 1)
    }

    @Test func listingsPrintOneJSONDocument() async throws {
        let (brokers, application, arn, producer, store) = try await OperatorCommandsTests.checkpointTopic("cps-json")
        try await store.save(streamARN: arn, shardID: "shardId-1", checkpoint: Checkpoint(sequenceNumber: "100", epoch: 4))
        try await store.save(streamARN: arn, shardID: "shardId-2", checkpoint: Checkpoint(sequenceNumber: nil))
        try await producer.flush(timeout: .seconds(10))
        await producer.shutdown()

        let list = try await CommandLineTests.run(["checkpoints", "list", "--format", "json", "--application", application, "--brokers", brokers])
        #expect(list.status == 0, "\(list.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(list.standardOutput.utf8)) as? [String: Any])
        #expect(document["topic"] as? String == "fanout.checkpoints.\(application)")
        let checkpoints = try #require(document["checkpoints"] as? [[String: Any]])
        #expect(checkpoints.map { $0["shardId"] as? String } == ["shardId-1", "shardId-2"])
        #expect(checkpoints.map { $0["streamArn"] as? String } == [arn, arn])
        #expect(checkpoints[0]["sequenceNumber"] as? String == "100")
        #expect(checkpoints[0]["epoch"] as? Int == 4)
        #expect(checkpoints[0]["finished"] as? Bool == false)
        #expect(checkpoints[1]["sequenceNumber"] is NSNull)

        let group = TestServices.uniqueName("json-group")
        let topic = "\(group).dead-letter"
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Self.logger)
        defer { admin.close() }
        try await Self.makeDeadLetterTopic(topic, admin: admin, brokers: brokers, header: KafkaHeader(key: DeadLetterHeader.attempts, string: "3"))
        let letters = try await CommandLineTests.run(["dead-letters", "list", "--group", group, "--format", "json", "--brokers", brokers])
        #expect(letters.status == 0, "\(letters.standardError)")
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(letters.standardOutput.utf8)) as? [String: Any])
        #expect(listed["topic"] as? String == topic)
        let record = try #require((listed["records"] as? [[String: Any]])?.first)
        #expect(record["kind"] as? String == "failed")
        #expect(record["key"] as? String == "o-1")
        #expect(record["eventName"] as? String == "OrderShipped")
        #expect(record["attempts"] as? Int == 3)
        #expect((record["value"] as? [String: Any])?["aggregateId"] as? String == "o-1")
        #expect((listed["unresolved"] as? [[String: Any]])?.first?["key"] as? String == "o-1")

        let refused = try await CommandLineTests.run(["checkpoints", "list", "--format", "yaml", "--application", application, "--brokers", brokers])
        #expect(refused.status == 1)
        #expect(refused.standardError == "fanout: error: --format: \"yaml\" is not text or json\n")
    }

    @Test func checkpointsResetToLatestResumesAfterTheShardsNewestRecord() async throws {
        let endpoint = try TestServices.awsEndpoint()
        let aws = AWSConfiguration(
            region: "us-east-1", credentialProvider: StaticCredentialProvider(accessKeyID: "x", secretAccessKey: "y"), endpoint: URL(string: endpoint)!
        )
        let httpClient = HTTPClient.forTests
        let events = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: httpClient, logger: Self.logger), tableName: TestServices.uniqueName("latest"))
        let arn = try #require(try await events.createTableIfMissing())
        for sequence in 1...3 {
            try await events.appendRetrying(GenericDomainEventMessage(eventName: "Tick", aggregateID: "t-1", aggregateType: "Tick", sequenceNumber: Int64(sequence), payload: [:]))
        }
        // The shard and its records, as the reader would see them.
        let streams = DynamoDBStreams(configuration: aws, httpClient: httpClient, logger: Self.logger)
        let shard = try #require(try await streams.describeAllShards(streamARN: arn).shards.first)
        let iterator = try await streams.getShardIterator(streamARN: arn, shardID: shard.shardID, type: .trimHorizon)
        let sequences = try await streams.getRecords(shardIterator: iterator).records.map(\.sequenceNumber)
        try #require(sequences.count == 3)

        let (brokers, application, _, producer, store) = try await OperatorCommandsTests.checkpointTopic("cps-latest")
        try await store.save(streamARN: arn, shardID: shard.shardID, checkpoint: Checkpoint(sequenceNumber: sequences[0]))
        try await producer.flush(timeout: .seconds(10))
        await producer.shutdown()

        let reset = try await CommandLineTests.run(
            ["checkpoints", "reset", "--shard", shard.shardID, "--to", "latest", "--yes", "--application", application, "--brokers", brokers],
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": endpoint]
        )
        #expect(reset.status == 0, "\(reset.standardError)")
        #expect(reset.standardOutput.contains("its newest record now is \(sequences[2])"), "\(reset.standardOutput)")
        #expect(try await store.load(streamARN: arn)[shard.shardID] == Checkpoint(sequenceNumber: sequences[2]))

        let bad = try await CommandLineTests.run(["checkpoints", "reset", "--shard", shard.shardID, "--to", "newest", "--yes", "--application", application, "--brokers", brokers])
        #expect(bad.status == 1)
        #expect(bad.standardError == "fanout: error: --to: \"newest\" is not a sequence number (decimal digits) or latest\n")
    }

    @Test func tailsJSONPipesIntoRoutesExplain() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("explain")
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Self.logger)
        defer { admin.close() }
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 1)])
        try await OperatorCommandsTests.produce(
            [OperatorCommandsTests.event(topic, "OrderShipped", "o-1"), OperatorCommandsTests.event(topic, "PaymentReceived", "p-1")], brokers: brokers
        )
        let tail = try await CommandLineTests.run(["tail", topic, "--from", "beginning", "--count", "2", "--format", "json", "--brokers", brokers])
        #expect(tail.status == 0, "\(tail.standardError)")
        #expect(Self.lines(tail.standardOutput).count == 2)

        let routes = TestServices.packageRoot.appendingPathComponent("routes.json").path
        let piped = try await CommandLineTests.run(["routes", "explain", routes], input: tail.standardOutput)
        #expect(piped.status == 0, "\(piped.standardError)")
        let lines = Self.lines(piped.standardOutput)
        #expect(lines.first == "\(topic)/0@0:")
        #expect(lines.dropFirst().first == "  OrderShipped -> orders.events, shipping.events, audit.all", "\(piped.standardOutput)")
        #expect(lines.contains("\(topic)/0@1:"))
        #expect(lines.contains("  PaymentReceived -> billing.events, audit.all"))

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(topic).jsonl").path
        try tail.standardOutput.write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = try await CommandLineTests.run(["routes", "explain", routes, "--events", file])
        #expect(fromFile.status == 0, "\(fromFile.standardError)")
        #expect(fromFile.standardOutput == piped.standardOutput)

        let bad = try await CommandLineTests.run(["routes", "explain", routes], input: tail.standardOutput + "{\"topic\": \"t\", \"offset\": 9, \"value\": \"not json\"}\n")
        #expect(bad.status == 1)
        #expect(bad.standardError == "fanout: error: event on line 3 (t/?@9): $: expected a JSON object, found string\n", "\(bad.standardError)")
        #expect(bad.standardOutput.isEmpty)
    }

    @Test func tailsHelpSaysEachDefaultOnce() async throws {
        let help = try await CommandLineTests.run(["tail", "--help"])
        #expect(help.status == 0)
        let text = help.standardOutput.replacingOccurrences(of: "\n", with: " ").split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        #expect(text.components(separatedBy: "(default: end)").count == 2, "\(help.standardOutput)")
        #expect(text.components(separatedBy: "(default: text)").count == 2, "\(help.standardOutput)")
    }
}
