import Contracts
import Kafka
import Testing
import TestSupport

@Suite("KafkaTopicReader")
struct KafkaTopicReaderTests {
    @Test("a topic that does not exist reads as no records")
    func missingTopic() async throws {
        let messages = try await KafkaTopicReader.readToEnd(
            topic: TestServices.uniqueName("fanout-missing"),
            configuration: try KafkaTest.configuration(),
            timeout: .seconds(10),
            logger: KafkaTest.logger
        )
        #expect(messages.isEmpty)
    }

    @Test("read_committed: a transaction open when the read starts holds it back, so that records committed after it are not missed")
    func readCommittedWaitsForAnOpenTransaction() async throws {
        let topic = TestServices.uniqueName("fanout-reader-lso")
        try await KafkaTest.createTopic(topic, partitions: 1)
        let open = try KafkaTransactionTests.transactionalProducer(id: TestServices.uniqueName("fanout-lso-open"))
        let other = try KafkaTransactionTests.transactionalProducer(id: TestServices.uniqueName("fanout-lso-other"))
        try await open.initTransactions()
        try await other.initTransactions()
        func record(_ value: String) -> KafkaProducerRecord { KafkaProducerRecord(topic: topic, key: nil, value: Array(value.utf8)) }
        // The open transaction's record comes first; another producer commits one after it.
        try await open.beginTransaction()
        _ = try await open.send([record("open-1")])
        try await other.beginTransaction()
        _ = try await other.send([record("other-1")])
        try await other.commitTransaction()

        let reading = Task {
            try await KafkaTopicReader.readToEnd(
                topic: topic, configuration: try KafkaTest.configuration(["isolation.level": "read_committed"]),
                timeout: .seconds(30), logger: KafkaTest.logger
            )
        }
        try await Task.sleep(for: .seconds(1))
        try await open.commitTransaction()
        let values = try await reading.value.map { String(decoding: $0.value, as: UTF8.self) }
        #expect(values == ["open-1", "other-1"])
        await open.shutdown()
        await other.shutdown()
    }

    @Test("an empty topic with several partitions reads as no records")
    func emptyTopic() async throws {
        let topic = TestServices.uniqueName("fanout-empty")
        try await KafkaTest.createTopic(topic, partitions: 3)
        let messages = try await KafkaTopicReader.readToEnd(
            topic: topic, configuration: try KafkaTest.configuration(), timeout: .seconds(10), logger: KafkaTest.logger
        )
        #expect(messages.isEmpty)
    }

    @Test("every record of every partition comes back once, in order per partition, and a second write adds to it")
    func severalPartitionsWrittenTwice() async throws {
        let topic = TestServices.uniqueName("fanout-reader")
        try await KafkaTest.createTopic(topic, partitions: 4)
        let producer = try KafkaProducer(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        let first = (0..<100).map { KafkaProducerRecord(topic: topic, key: Array("k\($0 % 9)".utf8), value: Array("a\($0)".utf8)) }
        let firstAcks = try await producer.send(first)
        #expect(Set(firstAcks.map(\.partition)).count > 1)

        let configuration = try KafkaTest.configuration()
        let read1 = try await KafkaTopicReader.readToEnd(topic: topic, configuration: configuration, logger: KafkaTest.logger)
        #expect(read1.count == 100)
        #expect(Set(read1.map(\.value)) == Set(first.map(\.value)))
        for partition in Set(read1.map(\.partition)) {
            let offsets = read1.filter { $0.partition == partition }.map(\.offset)
            #expect(offsets == Array(0..<Int64(offsets.count)))
        }

        let second = (0..<50).map { KafkaProducerRecord(topic: topic, key: Array("k\($0 % 9)".utf8), value: Array("b\($0)".utf8)) }
        _ = try await producer.send(second)
        await producer.shutdown()
        let read2 = try await KafkaTopicReader.readToEnd(topic: topic, configuration: configuration, logger: KafkaTest.logger)
        #expect(read2.count == 150)
        #expect(Set(read2.map(\.value)) == Set((first + second).map(\.value)))
        // Per key, the records are in the order they were written.
        for key in Set(read2.compactMap(\.key)) {
            let values = read2.filter { $0.key == key }.map { String(decoding: $0.value, as: UTF8.self) }
            let sent = (first + second).filter { $0.key == key }.map { String(decoding: $0.value, as: UTF8.self) }
            #expect(values == sent)
        }
    }
}
