import Contracts
import Delivery
import Kafka
import Logging
import Router
import TestSupport
import Testing

/// What ensuring a routes file's topics does to topics that exist already (at start-up and on every reload).
@Suite struct TopicProvisionerTests {
    @Test func anExistingTopicWithOtherPartitionsThanTheFileIsAWarningAndIsLeftAlone() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let drifted = TestServices.uniqueName("drift")
        let matching = TestServices.uniqueName("same")
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Logger(label: "test"))
        defer { admin.close() }
        try await admin.createTopics([
            KafkaTopicSpecification(name: drifted, partitions: 2), KafkaTopicSpecification(name: matching, partitions: 3),
        ])
        let text = """
            {"version": 1, "deadLetterTopic": "\(drifted).dead",
             "topics": {"\(drifted)": {"partitions": 4}, "\(matching)": {"partitions": 3}},
             "routes": [{"name": "a", "events": ["A"], "to": ["\(drifted)"]}, {"name": "b", "events": ["B"], "to": ["\(matching)"]}]}
            """
        let routes = try RoutesFile.parse(Array(text.utf8), file: "routes.json")
        let (logger, log) = LogRecorder.makeLogger()

        let drift = try await TopicProvisioner.ensureTopics(of: routes, admin: admin, logger: logger)
        #expect(drift == ["\(drifted) has 2 partitions, the routes file asks for 4"])

        let warnings = log.all.filter { $0.level == .warning }.map(\.message)
        #expect(warnings == [
            "topic drift: \(drifted) has 2 partitions, the routes file asks for 4; Fanout publishes to the topic as it is (`fanout topics ensure` reports every difference)"
        ])
        let topics = try await admin.listTopics()
        #expect(topics[drifted] == 2)
        #expect(topics["\(drifted).dead"] != nil)
    }
}
