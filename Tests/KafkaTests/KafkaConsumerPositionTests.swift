import Contracts
import Foundation
import Kafka
import Testing
import TestSupport

@Suite("KafkaConsumer seek, replay and pause")
struct KafkaConsumerPositionTests {
    static func produce(_ topic: String, _ values: Range<Int>) async throws {
        let producer = try KafkaProducer(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        _ = try await producer.send(values.map { KafkaProducerRecord(topic: topic, key: nil, value: Array("m\($0)".utf8)) })
        await producer.shutdown()
    }

    static func consumer(_ topic: String) throws -> KafkaConsumer {
        try KafkaConsumer(
            configuration: try KafkaTest.configuration(["group.id": TestServices.uniqueName("fanout-seek")]),
            topics: [topic],
            logger: KafkaTest.logger
        )
    }

    @Test("after seek to an offset the partition continues there (buffered messages are dropped)")
    func seekToOffset() async throws {
        let topic = TestServices.uniqueName("fanout-seek")
        try await KafkaTest.createTopic(topic, partitions: 1)
        try await Self.produce(topic, 0..<10)
        let consumer = try Self.consumer(topic)
        let first = try await KafkaTest.consume(consumer, count: 5)
        #expect(first.map(\.offset) == [0, 1, 2, 3, 4])

        try await consumer.seek(topic: topic, partition: 0, offset: 2, timeout: .seconds(30))  // 10 s timed out at load 12+
        let again = try await KafkaTest.consume(consumer, count: 3)
        #expect(again.map(\.offset) == [2, 3, 4])
        #expect(again.first.map { String(decoding: $0.value, as: UTF8.self) } == "m2")
        await consumer.close()
    }

    @Test("seek to a timestamp replays from the first message at or after it")
    func seekToTimestamp() async throws {
        let topic = TestServices.uniqueName("fanout-replay")
        try await KafkaTest.createTopic(topic, partitions: 1)
        try await Self.produce(topic, 0..<5)
        try await Task.sleep(for: .milliseconds(50))
        let cut = Date()
        try await Task.sleep(for: .milliseconds(50))
        try await Self.produce(topic, 5..<10)

        let consumer = try Self.consumer(topic)
        let all = try await KafkaTest.consume(consumer, count: 10)
        try #require(all.count == 10)
        #expect(all[4].timestamp! < cut && all[5].timestamp! >= cut)

        let positions = try await consumer.seek(toTimestamp: cut, timeout: .seconds(30))
        #expect(positions == [KafkaAcknowledgement(topic: topic, partition: 0, offset: 5)])
        let replayed = try await KafkaTest.consume(consumer, count: 5)
        #expect(replayed.map(\.offset) == [5, 6, 7, 8, 9])

        // From the beginning of time: every message again.
        try await consumer.seek(toTimestamp: Date(timeIntervalSince1970: 0), timeout: .seconds(30))
        let everything = try await KafkaTest.consume(consumer, count: 10)
        #expect(everything.map(\.offset) == Array(0..<10))
        await consumer.close()
    }

    @Test("a paused partition delivers nothing until resumed")
    func pauseAndResume() async throws {
        let topic = TestServices.uniqueName("fanout-pause")
        try await KafkaTest.createTopic(topic, partitions: 1)
        try await Self.produce(topic, 0..<1)
        let consumer = try Self.consumer(topic)
        let first = try await KafkaTest.consume(consumer, count: 1)
        try #require(first.count == 1)

        try await consumer.pause(topic: topic, partition: 0)
        try await Self.produce(topic, 1..<2)
        let reading = Task {
            var iterator = consumer.messages.makeAsyncIterator()
            let message = try await iterator.next()
            return (message, ContinuousClock.now)
        }
        try await Task.sleep(for: .seconds(1))
        let resumedAt = ContinuousClock.now
        try await consumer.resume(topic: topic, partition: 0)
        let (message, arrivedAt) = try await reading.value
        #expect(message?.offset == 1)
        #expect(arrivedAt >= resumedAt, "the message arrived while the partition was paused")
        await consumer.close()
    }

    @Test("seek on a partition that is not assigned throws")
    func seekUnassigned() async throws {
        let topic = TestServices.uniqueName("fanout-seek-unassigned")
        try await KafkaTest.createTopic(topic, partitions: 1)
        let consumer = try Self.consumer(topic)
        await #expect(throws: KafkaError.self) {
            try await consumer.seek(topic: "\(topic)-other", partition: 0, offset: 0, timeout: .seconds(2))
        }
        await consumer.close()
        await #expect(throws: KafkaError.self) { try await consumer.pause(topic: topic, partition: 0) }
    }
}
