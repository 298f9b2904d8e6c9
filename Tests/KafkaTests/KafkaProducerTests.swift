import Contracts
import Kafka
import Testing
import TestSupport

@Suite("KafkaProducer")
struct KafkaProducerTests {
    @Test("an unknown librdkafka property throws an error naming it")
    func unknownPropertyThrows() throws {
        let configuration = try KafkaTest.configuration(["no.such.property": "1"])
        do {
            _ = try KafkaProducer(configuration: configuration, logger: KafkaTest.logger)
            Issue.record("expected an error")
        } catch let error as KafkaError {
            #expect(error.code == .config)
            #expect(error.description.contains("no.such.property"))
        }
    }

    @Test("an invalid value throws an error naming the property")
    func invalidValueThrows() throws {
        let configuration = try KafkaTest.configuration(["linger.ms": "soon"])
        #expect {
            _ = try KafkaProducer(configuration: configuration, logger: KafkaTest.logger)
        } throws: { error in
            (error as? KafkaError)?.message.contains("linger.ms") == true
        }
    }

    @Test("QUEUE_FULL is backpressure: 1,000 records through a 10-message queue all succeed")
    func queueFullIsBackpressure() async throws {
        let topic = TestServices.uniqueName("fanout-qfull")
        let admin = try KafkaAdmin(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        defer { admin.close() }
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 3)])

        let producer = try KafkaProducer(
            configuration: try KafkaTest.configuration(["queue.buffering.max.messages": "10"]),
            logger: KafkaTest.logger
        )
        let records = (0..<1_000).map { i in
            KafkaProducerRecord(topic: topic, key: Array("k\(i % 7)".utf8), value: Array("value \(i)".utf8))
        }
        let acks = try await producer.send(records)
        await producer.shutdown()

        #expect(acks.count == 1_000)
        #expect(acks.allSatisfy { $0.topic == topic && $0.offset >= 0 })
        // Acknowledgements come back in input order: offsets rise within each partition.
        var last: [Int32: Int64] = [:]
        for ack in acks {
            #expect(ack.offset > last[ack.partition, default: -1])
            last[ack.partition] = ack.offset
        }
        #expect(Set(acks.map { "\($0.partition)/\($0.offset)" }).count == 1_000)
    }

    @Test("send after shutdown throws destroyed; shutdown is idempotent")
    func sendAfterShutdown() async throws {
        let producer = try KafkaProducer(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        await producer.shutdown()
        await producer.shutdown()
        await #expect(throws: KafkaError.self) {
            _ = try await producer.send([KafkaProducerRecord(topic: "t", key: nil, value: [1])])
        }
    }

    @Test("a record to a partition that does not exist fails naming the topic")
    func unknownPartitionFails() async throws {
        let topic = TestServices.uniqueName("fanout-nopart")
        let admin = try KafkaAdmin(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        defer { admin.close() }
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 1)])
        let producer = try KafkaProducer(
            configuration: try KafkaTest.configuration(["message.timeout.ms": "3000"]),
            logger: KafkaTest.logger
        )
        do {
            _ = try await producer.send([
                KafkaProducerRecord(topic: topic, key: nil, value: [1]),
                KafkaProducerRecord(topic: topic, key: nil, value: [2], partition: 7),
            ])
            Issue.record("expected an error")
        } catch let error as KafkaError {
            #expect(error.description.contains(topic))
        }
        await producer.shutdown()
    }
}
