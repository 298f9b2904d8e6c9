import Contracts
import Foundation
import Kafka
import Testing
import TestSupport

@Suite("Kafka produce and consume")
struct KafkaRoundTripTests {
    @Test("a batch with keys and headers comes back exactly, in order within each partition")
    func roundTrip() async throws {
        let topic = TestServices.uniqueName("fanout-roundtrip")
        try await KafkaTest.createTopic(topic, partitions: 3)
        let records = (0..<60).map { i in
            KafkaProducerRecord(
                topic: topic,
                key: Array("aggregate-\(i % 5)".utf8),
                value: Array("{\"n\":\(i)}".utf8),
                headers: [
                    KafkaHeader(key: "content-type", string: "application/json"),
                    KafkaHeader(key: "fanout-seq", string: "\(i)"),
                    KafkaHeader(key: "binary", value: [0, 255, UInt8(i)]),
                ]
            )
        }
        let producer = try KafkaProducer(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        let acks = try await producer.send(records)
        await producer.shutdown()
        #expect(acks.count == records.count)

        let consumer = try KafkaConsumer(
            configuration: try KafkaTest.configuration(["group.id": TestServices.uniqueName("fanout-rt")]),
            topics: [topic],
            logger: KafkaTest.logger
        )
        let messages = try await KafkaTest.consume(consumer, count: records.count)
        await consumer.close()
        try #require(messages.count == records.count)

        // Every record arrives once, exactly as sent, where its acknowledgement said.
        let sentByPosition = Dictionary(
            uniqueKeysWithValues: zip(acks, records).map { ("\($0.partition)/\($0.offset)", $1) }
        )
        for message in messages {
            let sent = try #require(sentByPosition["\(message.partition)/\(message.offset)"])
            #expect(message.topic == topic)
            #expect(message.key == sent.key)
            #expect(message.value == sent.value)
            #expect(message.headers == sent.headers)
            #expect(message.timestamp != nil)
        }
        // Order within each partition (and so within each key) is the order of the batch.
        for partition in Set(messages.map(\.partition)) {
            let received = messages.filter { $0.partition == partition }.map(\.value)
            let sent = zip(acks, records).filter { $0.0.partition == partition }.map { $0.1.value }
            #expect(received == sent)
        }
    }

    @Test("keyed records use murmur2 like the JVM client: the same key always lands on the same partition")
    func murmur2Partitioner() async throws {
        let topic = TestServices.uniqueName("fanout-murmur")
        try await KafkaTest.createTopic(topic, partitions: 6)
        let keys = ["a", "a", "order-1", "order-2", "customer-42", "a", "ünïcödé", "order-1", ""]
        let producer = try KafkaProducer(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        let acks = try await producer.send(keys.map { KafkaProducerRecord(topic: topic, key: Array($0.utf8), value: [1]) })
        await producer.shutdown()

        // Java: Utils.toPositive(Utils.murmur2("a".getBytes())) % 6
        #expect(JavaMurmur2.partition(for: Array("a".utf8), partitions: 6) == acks[0].partition)
        for (key, ack) in zip(keys, acks) where !key.isEmpty {
            #expect(ack.partition == JavaMurmur2.partition(for: Array(key.utf8), partitions: 6), "key \(key)")
        }
        #expect(acks[0].partition == acks[1].partition && acks[1].partition == acks[5].partition)
    }

    @Test("the murmur2 oracle matches the JVM's known values")
    func murmur2Oracle() {
        // Values printed by org.apache.kafka.common.utils.Utils.murmur2 (Kafka's UtilsTest).
        #expect(JavaMurmur2.hash(Array("21".utf8)) == -973932308)
        #expect(JavaMurmur2.hash(Array("foobar".utf8)) == -790332482)
        #expect(JavaMurmur2.hash(Array("a-little-bit-long-string".utf8)) == -985981536)
        #expect(JavaMurmur2.hash(Array("a-little-bit-longer-string".utf8)) == -1486304829)
        #expect(JavaMurmur2.hash(Array("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8".utf8)) == -58897971)
        #expect(JavaMurmur2.hash(Array("abc".utf8)) == 479470107)
    }

    @Test("a consumer group continues after the committed offset")
    func groupCommit() async throws {
        let topic = TestServices.uniqueName("fanout-commit")
        let group = TestServices.uniqueName("fanout-group")
        try await KafkaTest.createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        _ = try await producer.send((0..<10).map { KafkaProducerRecord(topic: topic, key: nil, value: Array("m\($0)".utf8)) })
        await producer.shutdown()

        let configuration = try KafkaTest.configuration(["group.id": group])
        let first = try KafkaConsumer(configuration: configuration, topics: [topic], logger: KafkaTest.logger)
        let firstMessages = try await KafkaTest.consume(first, count: 4)
        try #require(firstMessages.count == 4)
        #expect(firstMessages.map(\.offset) == [0, 1, 2, 3])
        try await first.commit(firstMessages[3])
        await first.close()
        await first.close()  // idempotent

        let second = try KafkaConsumer(configuration: configuration, topics: [topic], logger: KafkaTest.logger)
        let secondMessages = try await KafkaTest.consume(second, count: 6)
        await second.close()
        #expect(secondMessages.map(\.offset) == [4, 5, 6, 7, 8, 9])
        #expect(secondMessages.first.map { String(decoding: $0.value, as: UTF8.self) } == "m4")
    }

    @Test("a slow reader backpressures the poll loop and still gets every message in order")
    func slowReader() async throws {
        let topic = TestServices.uniqueName("fanout-slow")
        try await KafkaTest.createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        _ = try await producer.send((0..<1_000).map { KafkaProducerRecord(topic: topic, key: nil, value: Array("\($0)".utf8)) })
        await producer.shutdown()

        let consumer = try KafkaConsumer(
            configuration: try KafkaTest.configuration(["group.id": TestServices.uniqueName("fanout-slow")]),
            topics: [topic],
            logger: KafkaTest.logger
        )
        var offsets: [Int64] = []
        for try await message in consumer.messages {
            offsets.append(message.offset)
            if offsets.count == 1 { try await Task.sleep(for: .milliseconds(500)) }  // let the buffer fill up
            if offsets.count == 1_000 { break }
        }
        await consumer.close()
        #expect(offsets == Array(0..<1_000))
    }

    @Test("a consumer without group.id throws a configuration error")
    func consumerNeedsGroup() throws {
        #expect(throws: KafkaError.self) {
            _ = try KafkaConsumer(configuration: try KafkaTest.configuration(), topics: ["t"], logger: KafkaTest.logger)
        }
    }
}
