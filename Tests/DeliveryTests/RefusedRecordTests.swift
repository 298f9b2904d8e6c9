import AWS
import CQRSCore
import Contracts
import Delivery
import JSON
import Kafka
import Logging
import Router
import StreamReader
import TestSupport
import Testing

/// A record its topic refuses for good (here: the broker answers MSG_SIZE_TOO_LARGE, injected on
/// librdkafka's mock cluster) goes to the dead-letter topic, and the page completes instead of being
/// retried forever. The end-to-end form, with noida-db refusing a record larger than its topic's
/// max.message.bytes, is in EndToEndTests/PoisonRecordTests.
@Suite(.timeLimit(.minutes(1))) struct RefusedRecordTests {
    static let logger = Logger(label: "refused")

    @Test func aRecordItsTopicRefusesIsADeadLetterWithTheReasonAndThePageCompletes() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: Self.logger)
        for topic in ["orders", "dlq"] { try cluster.createTopic(name: topic, partitions: 1, replicationFactor: 1) }
        let configuration = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: ["retry.backoff.ms": "20"])
        let producer = try KafkaProducer(configuration: configuration, logger: Self.logger)
        let routes = CompiledRoutes(try RoutesFile.parse(Array("""
            {"version": 1, "topics": {"orders": {}}, "routes": [{"name": "o", "events": ["Order*"], "to": ["orders"]}], "deadLetterTopic": "dlq"}
            """.utf8), file: "refused.json"))
        let pipeline = FanOutPipeline(routes: LiveRoutes(routes, path: "refused.json"), producer: producer, logger: Self.logger)
        func page(_ id: String, sequence: String) -> ShardRecords {
            let event = GenericDomainEventMessage(eventName: "OrderPlaced", aggregateID: id, aggregateType: "Order", sequenceNumber: 1, payload: [:])
            return ShardRecords(streamARN: "arn:s", shardID: "shard-1", records: [
                StreamRecord(eventID: "e", eventName: "INSERT", keys: [:], newImage: event.item, sequenceNumber: sequence)
            ])
        }
        // A first page makes the producer ready, so that the injected errors hit the pages below.
        try await pipeline.process(page("warm-up", sequence: "1"))
        // Refused in the page's batch, and again alone.
        try cluster.pushRequestErrors(apiKey: .produce, errors: [.messageSizeTooLarge, .messageSizeTooLarge])
        try await pipeline.process(page("refused", sequence: "2"))
        try await pipeline.process(page("next", sequence: "3"))

        let orders = try await KafkaTopicReader.readToEnd(topic: "orders", configuration: configuration, timeout: .seconds(20), logger: Self.logger)
        #expect(orders.map { String(decoding: $0.key ?? [], as: UTF8.self) } == ["warm-up", "next"])
        let dead = try await KafkaTopicReader.readToEnd(topic: "dlq", configuration: configuration, timeout: .seconds(20), logger: Self.logger)
        #expect(dead.count == 1)
        let headers = Dictionary(dead.first?.headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) } ?? [], uniquingKeysWith: { $1 })
        #expect(dead.first?.key == Array("refused".utf8))
        #expect(headers[FanoutHeader.error]?.hasPrefix("topic orders refused the record: ") == true, "\(headers)")
        #expect(headers[FanoutHeader.error]?.contains("MSG_SIZE_TOO_LARGE") == true, "\(headers)")
        #expect(headers[FanoutHeader.source] == "arn:s/shard-1/2")
        #expect(pipeline.currentCounts.deadLettered == 1)
        await producer.shutdown()
        await cluster.close()
    }
}
