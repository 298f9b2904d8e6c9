import Contracts
import Delivery
import FanoutApp
import Foundation
import Kafka
import Logging
import Router
import Settings
import StreamReader
import TestSupport
import Testing

/// The operator commands and the configuration layer, run as the `fanout` binary against the real broker.
@Suite(.timeLimit(.minutes(3))) struct OperatorCommandsTests {
    static let awsEnvironment = ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"]

    static func writeFile(_ text: String, suffix: String = "json") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestServices.uniqueName("cfg")).\(suffix)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: configuration

    @Test func flagsWinOverEnvironmentWhichWinsOverTheFileAndSecretsNeverShow() async throws {
        let config = try Self.writeFile("""
            {"brokers": "file-host:9092", "application": "from-file", "httpPort": 9501, "logLevel": "debug",
             "kafka": {"securityProtocol": "sasl_ssl", "saslMechanism": "SCRAM-SHA-512", "saslUsername": "svc", "saslPassword": "hunter2-file"}}
            """)
        let result = try await CommandLineTests.run(
            ["config", "--config", config, "--table", "t", "--application", "from-flag", "-X", "ssl.key.password=pem-secret", "-X", "linger.ms=7"],
            environment: Self.awsEnvironment.merging(["FANOUT_APPLICATION": "from-env", "FANOUT_HTTP_PORT": "9600", "FANOUT_KAFKA_SASL_PASSWORD": "hunter2-env"]) { $1 }
        )
        #expect(result.status == 0, "\(result.standardError)")
        let lines = Set(result.standardOutput.split(separator: "\n").map(String.init))
        #expect(lines.contains("brokers = file-host:9092 (\(config): brokers)"))
        #expect(lines.contains("application = from-flag (--application)"))
        #expect(lines.contains("httpPort = 9600 (FANOUT_HTTP_PORT)"))
        #expect(lines.contains("logLevel = debug (\(config): logLevel)"))
        #expect(lines.contains("kafka.saslMechanism = SCRAM-SHA-512 (\(config): kafka.saslMechanism)"))
        #expect(lines.contains("kafka.saslPassword = <redacted> (FANOUT_KAFKA_SASL_PASSWORD)"))
        #expect(lines.contains("kafka.properties = ssl.key.password=<redacted>,linger.ms=7 (-X)"))
        #expect(lines.contains("routes = routes.json (default)"))
        for secret in ["hunter2", "pem-secret"] {
            #expect(!result.standardOutput.contains(secret) && !result.standardError.contains(secret))
        }
    }

    @Test func everyUnknownKeyAndVariableIsNamedInOneLine() async throws {
        let config = try Self.writeFile(#"{"brokers": "h:1", "tabel": "t", "kafka": {"saslPasword": "x"}}"#)
        let file = try await CommandLineTests.run(["config", "--config", config], environment: Self.awsEnvironment)
        #expect(file.status == 1)
        #expect(file.standardError == "fanout: error: \(config): \"kafka.saslPasword\" is not a Fanout setting (did you mean \"kafka.saslPassword\"?); \"tabel\" is not a Fanout setting (did you mean \"table\"?); docs/configuration.md lists them all\n")
        let environment = try await CommandLineTests.run(
            ["config", "--brokers", "h:1", "--table", "t"], environment: Self.awsEnvironment.merging(["FANOUT_BROKER": "h:2", "FANOUT_TABEL": "t"]) { $1 })
        #expect(environment.status == 1)
        #expect(environment.standardError == "fanout: error: environment: FANOUT_BROKER is not a Fanout setting (did you mean FANOUT_BROKERS?); FANOUT_TABEL is not a Fanout setting (did you mean FANOUT_TABLE?); docs/configuration.md lists them all\n")
    }

    @Test func aBackslashPutsACommaInAKafkaPropertyFromTheEnvironment() async throws {
        let escaped = try await CommandLineTests.run(
            ["config", "--brokers", "h:1", "--table", "t"], environment: Self.awsEnvironment.merging(["FANOUT_KAFKA_PROPERTIES": #"debug=broker\,topic,linger.ms=5"#]) { $1 })
        #expect(escaped.status == 0, "\(escaped.standardError)")
        #expect(escaped.standardOutput.split(separator: "\n").contains(#"kafka.properties = debug=broker\,topic,linger.ms=5 (FANOUT_KAFKA_PROPERTIES)"#), "\(escaped.standardOutput)")
        // Without the backslash the comma separates two properties, and "topic" is not one.
        let plain = try await CommandLineTests.run(
            ["config", "--brokers", "h:1", "--table", "t"], environment: Self.awsEnvironment.merging(["FANOUT_KAFKA_PROPERTIES": "debug=broker,topic"]) { $1 })
        #expect(plain.status == 1)
        #expect(plain.standardError == "fanout: error: FANOUT_KAFKA_PROPERTIES: \"topic\" is not key=value\n")
    }

    @Test func dashXAddsToTheKafkaPropertiesOfTheFileAndTheEnvironment() async throws {
        let config = try Self.writeFile(#"{"brokers": "h:1", "table": "t", "kafka": {"properties": ["linger.ms=7", "acks=all"]}}"#)
        let result = try await CommandLineTests.run(
            ["config", "--config", config, "-X", "linger.ms=9"],
            environment: Self.awsEnvironment.merging(["FANOUT_KAFKA_PROPERTIES": "compression.type=lz4"]) { $1 })
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.split(separator: "\n").contains(
            "kafka.properties = linger.ms=7,acks=all,compression.type=lz4,linger.ms=9 (\(config): kafka.properties, FANOUT_KAFKA_PROPERTIES, -X)"), "\(result.standardOutput)")
        // A bad value is named by where it came from: here the file.
        let bad = try Self.writeFile(#"{"brokers": "h:1", "table": "t", "kafka": {"properties": ["acks=some"]}}"#)
        let refused = try await CommandLineTests.run(["config", "--config", bad, "-X", "linger.ms=9"], environment: Self.awsEnvironment)
        #expect(refused.status == 1)
        #expect(refused.standardError.hasPrefix("fanout: error: \(bad): kafka.properties: acks=some: invalid value 'some' for configuration property 'acks'"), "\(refused.standardError)")
    }

    @Test func anUnknownEnvironmentVariableIsRefusedWithASuggestion() async throws {
        let result = try await CommandLineTests.run(["config", "--brokers", "h:1", "--table", "t"], environment: Self.awsEnvironment.merging(["FANOUT_BROKER": "h:2"]) { $1 })
        #expect(result.status == 1)
        #expect(result.standardError == "fanout: error: environment: FANOUT_BROKER is not a Fanout setting (did you mean FANOUT_BROKERS?); docs/configuration.md lists them all\n")
    }

    @Test func anUnknownKeyInTheFileIsRefusedWithItsPath() async throws {
        let config = try Self.writeFile(#"{"brokers": "h:1", "kafka": {"saslPasword": "x"}}"#)
        let result = try await CommandLineTests.run(["config", "--config", config], environment: Self.awsEnvironment)
        #expect(result.status == 1)
        #expect(result.standardError == "fanout: error: \(config): \"kafka.saslPasword\" is not a Fanout setting (did you mean \"kafka.saslPassword\"?); docs/configuration.md lists them all\n")
    }

    @Test(arguments: [
        (#"{"brokers": "h:1", "httpPort": "soon"}"#, #"httpPort: "soon" is not a whole number"#),
        (#"{"brokers": "h:1", "exactlyOnce": "maybe"}"#, #"exactlyOnce: "maybe" is not true or false"#),
        (#"{"brokers": "h:1", "kafka": {"saslPassword": 5}}"#, "kafka.saslPassword: expected text"),
        (#"["brokers"]"#, "the configuration file must be a JSON object of settings"),
    ])
    func aValueOfTheWrongTypeNamesTheFileAndKey(file: String, message: String) async throws {
        let config = try Self.writeFile(file)
        let result = try await CommandLineTests.run(["config", "--config", config], environment: Self.awsEnvironment)
        #expect(result.status == 1)
        #expect(result.standardError == "fanout: error: \(config): \(message)\n", "\(result.standardError)")
    }

    @Test func aMissingConfigFileAndBadEnvironmentValuesAreOneLine() async throws {
        let missing = try await CommandLineTests.run(["config"], environment: Self.awsEnvironment.merging(["FANOUT_CONFIG": "/nonexistent/fanout.json"]) { $1 })
        #expect(missing.status == 1)
        #expect(missing.standardError == "fanout: error: /nonexistent/fanout.json: cannot read the configuration file (set by --config or FANOUT_CONFIG)\n")
        let port = try await CommandLineTests.run(["config", "--brokers", "h:1", "--table", "t"], environment: Self.awsEnvironment.merging(["FANOUT_HTTP_PORT": "ninety"]) { $1 })
        #expect(port.status == 1)
        #expect(port.standardError == "fanout: error: FANOUT_HTTP_PORT: \"ninety\" is not a whole number\n")
        let sasl = try await CommandLineTests.run(
            ["config", "--brokers", "h:1", "--kafka-security-protocol", "sasl_ssl", "--kafka-sasl-mechanism", "PLAIN"],
            environment: Self.awsEnvironment
        )
        #expect(sasl.status == 1)
        #expect(sasl.standardError == "fanout: error: --kafka-security-protocol: SASL needs a user name and a password: set --kafka-sasl-username and FANOUT_KAFKA_SASL_PASSWORD\n")
        let ca = try await CommandLineTests.run(["config", "--brokers", "h:1", "--kafka-ssl-ca-location", "/nonexistent/ca.pem"], environment: Self.awsEnvironment)
        #expect(ca.status == 1)
        #expect(ca.standardError == "fanout: error: --kafka-ssl-ca-location: \"/nonexistent/ca.pem\" is not a readable file\n")
    }

    @Test func badLeaseSettingsAreRefusedInOneLine() async throws {
        let base = ["run", "--brokers", "h:1", "--table", "t"]
        let word = try await CommandLineTests.run(base + ["--leases", "yes"], environment: Self.awsEnvironment)
        #expect(word.status == 1)
        #expect(word.standardError == "fanout: error: --leases: \"yes\" is not on or off\n")
        let duration = try await CommandLineTests.run(base + ["--leases", "on"], environment: Self.awsEnvironment.merging(["FANOUT_LEASE_DURATION": "0.5"]) { $1 })
        #expect(duration.status == 1)
        #expect(duration.standardError == "fanout: error: FANOUT_LEASE_DURATION: 0.5 is not a number of seconds between 1 and 3600\n")
        let worker = try await CommandLineTests.run(base + ["--leases", "on", "--worker-id", "a#b"], environment: Self.awsEnvironment)
        #expect(worker.status == 1)
        #expect(worker.standardError == "fanout: error: --worker-id: \"a#b\" must be non-empty and without '#'\n")
    }

    @Test func thePollIntervalDefaultsToFiveCallsASecondAndRefusesNonsense() async throws {
        let shown = try await CommandLineTests.run(["config", "--brokers", "h:1", "--table", "t"], environment: Self.awsEnvironment)
        #expect(shown.status == 0, "\(shown.standardError)")
        #expect(shown.standardOutput.split(separator: "\n").contains("pollInterval = 0.2 (default)"), "\(shown.standardOutput)")
        let set = try await CommandLineTests.run(["config", "--brokers", "h:1", "--table", "t"], environment: Self.awsEnvironment.merging(["FANOUT_POLL_INTERVAL": "0.5"]) { $1 })
        #expect(set.standardOutput.split(separator: "\n").contains("pollInterval = 0.5 (FANOUT_POLL_INTERVAL)"), "\(set.standardOutput)")
        let zero = try await CommandLineTests.run(["run", "--brokers", "h:1", "--table", "t", "--poll-interval", "0"], environment: Self.awsEnvironment)
        #expect(zero.status == 1)
        #expect(zero.standardError == "fanout: error: --poll-interval: 0.0 is not a number of seconds between 0.01 and 60\n")
    }

    @Test func runLogsItsSettingsWithSecretsRedacted() async throws {
        let result = try await CommandLineTests.run(
            ["run", "--brokers", "127.0.0.1:1", "--table", "t", "--log-format", "json",
             "--kafka-security-protocol", "sasl_plaintext", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "svc",
             "--routes", TestServices.packageRoot.appendingPathComponent("routes.json").path],
            environment: Self.awsEnvironment.merging(["FANOUT_KAFKA_SASL_PASSWORD": "hunter2", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"]) { $1 }
        )
        #expect(result.status == 1)
        #expect(!result.standardError.contains("hunter2"))
        let settingsLine = result.standardError.split(separator: "\n").first { $0.contains(#""message":"settings""#) }
        #expect(settingsLine?.contains("kafka.saslPassword=<redacted>") == true, "\(result.standardError)")
        #expect(settingsLine?.contains("kafka.saslUsername=svc") == true)
    }

    // MARK: topics ensure

    @Test func topicsEnsureCreatesThenReportsDriftAndFixesPartitions() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let application = TestServices.uniqueName("ensure")
        let orders = "\(application).orders"
        let audit = "\(application).audit"
        func routes(ordersPartitions: Int, auditRetention: Int, auditPartitions: Int = 6) throws -> String {
            try Self.writeFile("""
                {"version": 1, "deadLetterTopic": "\(application).dead",
                 "topics": {"\(orders)": {"partitions": \(ordersPartitions)}, "\(audit)": {"retentionMs": \(auditRetention), "partitions": \(auditPartitions)}},
                 "routes": [{"name": "o", "events": ["Order*"], "to": ["\(orders)"]}, {"name": "a", "events": ["*"], "to": ["\(audit)"]}]}
                """)
        }
        let first = try await CommandLineTests.run(
            ["topics", "ensure", "--routes", try routes(ordersPartitions: 2, auditRetention: 86_400_000), "--brokers", brokers, "--application", application])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.split(separator: "\n").map(String.init) == [
            "created \(orders): 2 partitions, replication 1, retention.ms=604800000",
            "created \(audit): 6 partitions, replication 1, retention.ms=86400000",
            "created \(application).dead: 6 partitions, replication 1, retention.ms=604800000",
            "created fanout.checkpoints.\(application): 1 partition, replication 1, cleanup.policy=compact",
        ])

        let same = try await CommandLineTests.run(
            ["topics", "ensure", "--routes", try routes(ordersPartitions: 2, auditRetention: 86_400_000), "--brokers", brokers, "--application", application])
        #expect(same.status == 0, "\(same.standardError)")
        #expect(same.standardOutput.split(separator: "\n").allSatisfy { $0.hasPrefix("ok ") }, "\(same.standardOutput)")

        let changed = try routes(ordersPartitions: 4, auditRetention: 172_800_000, auditPartitions: 8)
        let drift = try await CommandLineTests.run(["topics", "ensure", "--routes", changed, "--brokers", brokers, "--application", application])
        #expect(drift.status == 2)
        let driftLines = drift.standardOutput.split(separator: "\n").map(String.init)
        #expect(driftLines.contains("drift \(orders): 2 partitions, the file asks for 4 (--fix --allow-repartition adds them)"), "\(drift.standardOutput)")
        #expect(driftLines.contains("drift \(audit): 6 partitions, the file asks for 8 (--fix --allow-repartition adds them); retention.ms is 86400000, the file asks for 172800000"))

        // Adding partitions moves keys: --fix alone refuses, naming the first topic, and changes nothing.
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Logger(label: "t"))
        defer { admin.close() }
        let refused = try await CommandLineTests.run(["topics", "ensure", "--fix", "--routes", changed, "--brokers", brokers, "--application", application])
        #expect(refused.status == 1)
        #expect(refused.standardError == "fanout: error: --fix would add partitions to \(orders) (2 -> 4): Kafka places a key by the partition count, so an aggregate's new events would go to another partition than its earlier ones and per-aggregate order breaks for what is already in the topic; add --allow-repartition to do it anyway\n", "\(refused.standardError)")
        #expect(refused.standardOutput.isEmpty)
        #expect(try await admin.listTopics()[orders] == 2)

        let fixed = try await CommandLineTests.run(
            ["topics", "ensure", "--fix", "--allow-repartition", "--routes", changed, "--brokers", brokers, "--application", application])
        #expect(fixed.status == 2, "the retention still differs")
        let fixedLines = fixed.standardOutput.split(separator: "\n").map(String.init)
        #expect(fixedLines.contains("fixed \(orders): partitions 2 -> 4"), "\(fixed.standardOutput)")
        #expect(fixedLines.contains("fixed \(audit): partitions 6 -> 8; still differs: retention.ms is 86400000, the file asks for 172800000"), "\(fixed.standardOutput)")
        #expect(!fixed.standardOutput.contains("drift"))
        #expect(try await admin.listTopics()[orders] == 4)
        #expect(try await admin.listTopics()[audit] == 8)
    }

    @Test func topicsEnsureDryRunCreatesNothing() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("dry")
        let routes = try Self.writeFile(#"{"version": 1, "deadLetterTopic": "\#(topic).dead", "topics": {"\#(topic)": {}}, "routes": [{"name": "a", "events": ["*"], "to": ["\#(topic)"]}]}"#)
        let result = try await CommandLineTests.run(["topics", "ensure", "--dry-run", "--routes", routes, "--brokers", brokers, "--application", topic])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.hasPrefix("missing \(topic): 6 partitions"))
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Logger(label: "t"))
        defer { admin.close() }
        #expect(try await admin.listTopics()[topic] == nil)
    }

    // MARK: tail

    static func produce(_ records: [KafkaProducerRecord], brokers: String) async throws {
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Logger(label: "t"))
        _ = try await producer.send(records)
        try await producer.flush(timeout: .seconds(10))
    }

    static func event(_ topic: String, _ name: String, _ aggregate: String) -> KafkaProducerRecord {
        KafkaProducerRecord(
            topic: topic, key: Array(aggregate.utf8),
            value: Array(#"{"eventName":"\#(name)","aggregateId":"\#(aggregate)","payload":{"n":1}}"#.utf8),
            headers: [
                KafkaHeader(key: "fanout-event-name", string: name), KafkaHeader(key: "fanout-aggregate-id", string: aggregate),
                KafkaHeader(key: "fanout-route", string: "orders"), KafkaHeader(key: "fanout-source", string: "arn|shard-1|100"),
            ]
        )
    }

    @Test func tailDecodesFanoutRecordsFromTheBeginningAsTextAndJSON() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("tail")
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Logger(label: "t"))
        defer { admin.close() }
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 1)])
        try await Self.produce(
            [Self.event(topic, "OrderPlaced", "o-1"), Self.event(topic, "OrderShipped", "o-1"),
             KafkaProducerRecord(topic: topic, key: nil, value: Array("not json".utf8), headers: [])],
            brokers: brokers
        )
        let text = try await CommandLineTests.run(["tail", topic, "--from", "beginning", "--count", "3", "--brokers", brokers])
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput.split(separator: "\n").map(String.init) == [
            #"\#(topic)/0@0 OrderPlaced aggregate=o-1 route=orders source=arn|shard-1|100 {"eventName":"OrderPlaced","aggregateId":"o-1","payload":{"n":1}}"#,
            #"\#(topic)/0@1 OrderShipped aggregate=o-1 route=orders source=arn|shard-1|100 {"eventName":"OrderShipped","aggregateId":"o-1","payload":{"n":1}}"#,
            "\(topic)/0@2 (not JSON, 8 bytes) not json",
        ])
        let json = try await CommandLineTests.run(["tail", topic, "--from", "beginning", "--count", "1", "--format", "json", "--brokers", brokers])
        #expect(json.status == 0, "\(json.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        #expect(object["offset"] as? Int == 0)
        #expect(object["key"] as? String == "o-1")
        #expect((object["headers"] as? [String: String])?["fanout-route"] == "orders")
        #expect((object["value"] as? [String: Any])?["eventName"] as? String == "OrderPlaced")
    }

    @Test func tailStartsAtATimeAndStopsWhenIdle() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let topic = TestServices.uniqueName("tailtime")
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Logger(label: "t"))
        defer { admin.close() }
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 2)])
        try await Self.produce([Self.event(topic, "Old", "a"), Self.event(topic, "Old", "b")], brokers: brokers)
        try await Task.sleep(for: .milliseconds(1500))
        let cut = Date()
        try await Task.sleep(for: .milliseconds(500))
        try await Self.produce([Self.event(topic, "New", "a"), Self.event(topic, "New", "b")], brokers: brokers)
        let from = ISO8601DateFormatter().string(from: cut)
        let result = try await CommandLineTests.run(["tail", topic, "--from", from, "--idle", "4", "--brokers", brokers])
        #expect(result.status == 0, "\(result.standardError)")
        let names = result.standardOutput.split(separator: "\n").map { $0.split(separator: " ").dropFirst().first ?? "" }
        #expect(names == ["New", "New"], "\(result.standardOutput)")

        let missing = try await CommandLineTests.run(["tail", "\(topic).missing", "--brokers", brokers])
        #expect(missing.status == 1)
        #expect(missing.standardError == "fanout: error: topic \"\(topic).missing\" does not exist\n")
    }

    // MARK: checkpoints

    /// A new application's checkpoint topic (created, as `fanout.checkpoints.<application>`), a producer and the store
    /// on it, and a stream ARN for its records.
    static func checkpointTopic(
        _ prefix: String
    ) async throws -> (brokers: String, application: String, arn: String, producer: KafkaProducer, store: KafkaCheckpointStore) {
        let brokers = try TestServices.kafkaBrokers()
        let application = TestServices.uniqueName(prefix)
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        let admin = try KafkaAdmin(configuration: configuration, logger: Logger(label: "t"))
        defer { admin.close() }
        let producer = try KafkaProducer(configuration: configuration, logger: Logger(label: "t"))
        let store = KafkaCheckpointStore(
            topic: "fanout.checkpoints.\(application)", configuration: configuration, producer: producer, logger: Logger(label: "t")
        )
        try await store.ensureTopic(admin: admin)
        return (brokers, application, "arn:aws:dynamodb:us-east-1:000000000000:table/\(application)/stream/2026-01-01T00:00:00.000", producer, store)
    }

    @Test func checkpointsListsEveryShardAndResetsOneWithConfirmation() async throws {
        let (brokers, application, arn, producer, store) = try await Self.checkpointTopic("cps")
        try await store.save(streamARN: arn, shardID: "shardId-1", checkpoint: Checkpoint(sequenceNumber: "100"))
        try await store.save(streamARN: arn, shardID: "shardId-1", checkpoint: Checkpoint(sequenceNumber: "250", isFinished: true))
        try await store.save(streamARN: arn, shardID: "shardId-2", checkpoint: Checkpoint(sequenceNumber: "300"))
        try await producer.flush(timeout: .seconds(10))

        let list = try await CommandLineTests.run(["checkpoints", "list", "--application", application, "--brokers", brokers])
        #expect(list.status == 0, "\(list.standardError)")
        let rows = list.standardOutput.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.count == 3)
        #expect(rows.first?.prefix(5) == ["STREAM", "SHARD", "SEQUENCE", "STATE", "EPOCH"])
        #expect(rows.dropFirst().map { Array($0.prefix(4)) } == [[arn, "shardId-1", "250", "finished"], [arn, "shardId-2", "300", "open"]])

        let refused = try await CommandLineTests.run(["checkpoints", "reset", "--shard", "shardId-2", "--application", application, "--brokers", brokers])
        #expect(refused.status == 1)
        #expect(refused.standardError == "fanout: error: refusing to reset without --yes: standard input is not a terminal\n")
        let unknown = try await CommandLineTests.run(["checkpoints", "reset", "--shard", "shardId-9", "--yes", "--application", application, "--brokers", brokers])
        #expect(unknown.status == 1)
        #expect(unknown.standardError.contains("has no checkpoint for shard \"shardId-9\""))

        let reset = try await CommandLineTests.run(["checkpoints", "reset", "--shard", "shardId-2", "--yes", "--application", application, "--brokers", brokers])
        #expect(reset.status == 0, "\(reset.standardError)")
        let loaded = try await store.load(streamARN: arn)
        #expect(loaded["shardId-2"] == Checkpoint(sequenceNumber: nil))
        #expect(loaded["shardId-1"] == Checkpoint(sequenceNumber: "250", isFinished: true))

        let to = try await CommandLineTests.run(["checkpoints", "reset", "--shard", "shardId-2", "--to", "280", "--yes", "--application", application, "--brokers", brokers])
        #expect(to.status == 0, "\(to.standardError)")
        #expect(try await store.load(streamARN: arn)["shardId-2"] == Checkpoint(sequenceNumber: "280"))
    }
}

extension OperatorCommandsTests {
    /// `fanout checkpoints list` resolves the topic by the sidecar's own rule (`CheckpointRecords`): a later record of an
    /// older lease epoch (a fenced zombie's) does not win, a tombstone removes its shard, an unreadable record is named.
    @Test func checkpointsListShowsTheCheckpointTheSidecarResumesFrom() async throws {
        let (brokers, application, arn, producer, store) = try await Self.checkpointTopic("cps-rule")
        let topic = store.topic
        func record(_ shard: String, _ checkpoint: Checkpoint) -> KafkaProducerRecord {
            CheckpointRecords.record(topic: topic, streamARN: arn, shardID: shard, checkpoint: checkpoint)
        }
        _ = try await producer.send([
            record("shardId-A", Checkpoint(sequenceNumber: "500", epoch: 3)),
            // Written after, by a zombie of epoch 2: the latest record, but not the checkpoint.
            record("shardId-A", Checkpoint(sequenceNumber: "900", epoch: 2)),
            record("shardId-B", Checkpoint(sequenceNumber: "120", epoch: 1)),
            KafkaProducerRecord(topic: topic, key: Array("\(arn)|shardId-B".utf8), value: []),
            record("shardId-C", Checkpoint(sequenceNumber: "70", epoch: 1)),
            KafkaProducerRecord(topic: topic, key: Array("\(arn)|shardId-C".utf8), value: Array(#"{"shardId": "shardId-C", "finished": "no"}"#.utf8)),
        ])
        try await producer.flush(timeout: .seconds(10))
        await producer.shutdown()

        let resumed = try await store.load(streamARN: arn)
        #expect(resumed == ["shardId-A": Checkpoint(sequenceNumber: "500", epoch: 3), "shardId-C": Checkpoint(sequenceNumber: "70", epoch: 1)])
        let list = try await CommandLineTests.run(["checkpoints", "list", "--application", application, "--brokers", brokers])
        #expect(list.status == 0, "\(list.standardError)")
        let rows = list.standardOutput.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        let listed = Dictionary(uniqueKeysWithValues: rows.map { row in
            (row[1], Checkpoint(sequenceNumber: row[2] == "-" ? nil : row[2], isFinished: row[3] == "finished", epoch: Int64(row[4])))
        })
        #expect(listed == resumed, "listed: \(listed)")
        #expect(rows.allSatisfy { $0[0] == arn })
        #expect(list.standardError.contains("shardId-A epoch 2 is older than epoch 3"), "\(list.standardError)")
        #expect(list.standardError.contains("finished is missing"), "\(list.standardError)")
    }
}

// MARK: signals

extension OperatorCommandsTests {
    /// Starts `Tests/StreamServer/stream_server.py` with a scenario; returns the process and its endpoint.
    static func startStreamServer(scenario: String) async throws -> (ChildProcess, String) {
        let path = try writeFile(scenario)
        let process = try ChildProcess(
            "/usr/bin/env", ["python3", TestServices.packageRoot.appendingPathComponent("Tests/StreamServer/stream_server.py").path, path],
            standardOutput: .capture, standardError: .inherit)
        let line = await process.firstLine(timeout: .seconds(30)) ?? ""
        guard let range = line.range(of: "listening on ") else {
            process.terminate()
            throw SettingsTestError("stream_server.py did not start: \(line)")
        }
        return (process, "http://" + line[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func aSecondSignalExitsAtOnceWhileTheFirstIsStillDraining() async throws {
        let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/signals/stream/2026-01-01T00:00:00.000"
        // Every GetRecords takes 25 s: the graceful drain after the first SIGTERM waits for the one in flight.
        let (server, endpoint) = try await Self.startStreamServer(scenario: """
            {"streamArn": "\(arn)", "getRecordsDelay": 25,
             "shards": [{"id": "shardId-1", "records": [{"item": {"aggregateId": {"S": "a"}, "sequenceNumber": {"N": "1"}, "eventName": {"S": "OrderPlaced"},
               "aggregateType": {"S": "Order"}, "messageId": {"S": "m-1"}, "timestamp": {"S": "2026-01-01T00:00:00.000Z"}}}]}]}
            """)
        defer { server.terminate() }
        let application = TestServices.uniqueName("signals")
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("\(application).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let arguments = [
            "run", "--brokers", try TestServices.kafkaBrokers(), "--stream-arn", arn, "--application", application, "--http-port", "0",
            "--routes", TestServices.packageRoot.appendingPathComponent("routes.json").path,
        ]
        var environment = ProcessInfo.processInfo.environment
        environment.merge(Self.awsEnvironment) { $1 }
        environment["AWS_ENDPOINT_URL"] = endpoint
        let process = try ChildProcess(CommandLineTests.binary.path, arguments, environment: environment, standardError: .file(log))
        defer { process.terminate() }
        func logText() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        let deadline = ContinuousClock.now + .seconds(30)
        while !logText().contains("shard opened"), ContinuousClock.now < deadline, process.isRunning {
            try await Task.sleep(for: .milliseconds(100))
        }
        try #require(logText().contains("shard opened"), "\(logText())")
        try await Task.sleep(for: .seconds(1))
        process.terminate()
        try await Task.sleep(for: .seconds(2))
        try #require(process.isRunning, "the first SIGTERM should still be draining the GetRecords in flight: \(logText())")
        let second = ContinuousClock.now
        process.terminate()
        while process.isRunning, ContinuousClock.now - second < .seconds(15) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!process.isRunning)
        #expect(ContinuousClock.now - second < .seconds(5))
        #expect(await process.exited() == .exited(128 + SIGTERM), "\(logText())")
        #expect(logText().contains("second signal: exiting at once without draining"))
    }
}

struct SettingsTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension OperatorCommandsTests {
    @Test func docsConfigurationListsEverySettingWithItsFlagAndVariable() throws {
        let docs = try String(contentsOf: TestServices.packageRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        for setting in Setting.all + [Setting.configFile] {
            let row = docs.split(separator: "\n").first { $0.hasPrefix("|") && $0.contains("`\(setting.environmentName)`") }
            #expect(row != nil, "docs/configuration.md does not list \(setting.environmentName)")
            #expect(row?.contains("`\(setting.flagName)") == true, "the row of \(setting.environmentName) does not name \(setting.flagName)")
        }
    }
}
