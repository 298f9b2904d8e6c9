import Contracts
import Foundation
import Kafka
import Testing
import TestSupport

@Suite("KafkaAdmin")
struct KafkaAdminTests {
    @Test("createTopics with partitions and retention.ms; describe and list show them; creating twice succeeds")
    func createDescribeList() async throws {
        let topic = TestServices.uniqueName("fanout-admin")
        let admin = try KafkaAdmin(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        defer { admin.close() }
        let spec = KafkaTopicSpecification(name: topic, partitions: 4, configs: ["retention.ms": "123456789"])
        try await admin.createTopics([spec])
        try await admin.createTopics([spec])  // already exists: success

        let configs = try await admin.describeTopicConfigs(topic)
        #expect(configs["retention.ms"] == "123456789")

        var partitions: Int32?
        for _ in 0..<20 {  // metadata may lag the creation briefly
            partitions = try await admin.listTopics()[topic]
            if partitions != nil { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(partitions == 4)
        #expect(!Librdkafka.version.isEmpty)
    }

    @Test("a topic that cannot be created fails naming it")
    func invalidTopicFails() async throws {
        let admin = try KafkaAdmin(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        defer { admin.close() }
        let name = TestServices.uniqueName("fanout-bad")
        await #expect {
            try await admin.createTopics([KafkaTopicSpecification(name: name, partitions: -5)])
        } throws: { error in
            "\(error)".contains(name)
        }
    }

    @Test("listTopics against an unreachable broker throws within its timeout")
    func unreachableBroker() async throws {
        let admin = try KafkaAdmin(
            configuration: KafkaConfiguration(bootstrapServers: "127.0.0.1:1"),
            logger: KafkaTest.logger
        )
        defer { admin.close() }
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: KafkaError.self) {
            _ = try await admin.listTopics(timeout: .seconds(2))
        }
        // The bound only catches a hang: the whole suite runs in parallel on 2 cores.
        #expect(clock.now - start < .seconds(60))
    }

    @Test("calls after close throw")
    func afterClose() async throws {
        let admin = try KafkaAdmin(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        admin.close()
        await #expect(throws: KafkaError.self) {
            _ = try await admin.describeTopicConfigs("x")
        }
    }

    @Test("createPartitions grows a topic; asking for its current size is not an error; shrinking is refused")
    func createPartitionsGrowsATopic() async throws {
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: try TestServices.kafkaBrokers()), logger: KafkaTest.logger)
        defer { admin.close() }
        let topic = TestServices.uniqueName("grow")
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 2)])
        try await admin.createPartitions([topic: 5])
        #expect(try await admin.listTopics()[topic] == 5)
        try await admin.createPartitions([topic: 5])
        await #expect(throws: KafkaError.self) { try await admin.createPartitions([topic: 3]) }
        #expect(try await admin.listTopics()[topic] == 5)
    }
}
