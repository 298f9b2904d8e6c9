import AWS
import CQRSCore
import Delivery
import JSON
import Kafka
import Logging
import Router
import StreamReader
import TestSupport
import Testing

/// The pipeline's bounds (docs/security.md): the labels of unrouted event names.
@Suite struct PipelineBoundsTests {
    static let routes = CompiledRoutes(try! RoutesFile.parse(Array("""
        {"version": 1, "topics": {"orders": {}}, "routes": [{"name": "orders", "events": ["Order*"], "to": ["orders"]}], "deadLetterTopic": "dlq"}
        """.utf8), file: "bounds.json"))

    @Test(.timeLimit(.minutes(1))) func unroutedEventNamesAreCountedUnderABoundedNumberOfLabels() async throws {
        let producer = try KafkaProducer(configuration: KafkaConfiguration(bootstrapServers: try TestServices.kafkaBrokers()), logger: Logger(label: "bounds"))
        let pipeline = FanOutPipeline(routes: LiveRoutes(Self.routes, path: "bounds.json"), producer: producer, logger: Logger(label: "bounds"))
        let limit = FanOutPipeline.maximumUnroutedNames
        let records = (0..<(limit + 500)).map { index in
            let event = GenericDomainEventMessage(
                eventName: "Unknown\(index)", aggregateID: "order-7", aggregateType: "Order", sequenceNumber: 1, payload: [:],
                metadata: MessageMetadata(correlationID: "c")
            )
            return StreamRecord(eventID: "e", eventName: "INSERT", keys: [:], newImage: event.item, sequenceNumber: "\(index)")
        }
        try await pipeline.process(ShardRecords(streamARN: "arn:s", shardID: "shard-1", records: records))
        let counts = pipeline.currentCounts
        #expect(counts.unroutedByEventName.count == limit + 1)
        #expect(counts.unroutedByEventName["Unknown0"] == 1)
        #expect(counts.unroutedByEventName[FanOutPipeline.otherEventNames] == 500)
        #expect(counts.unroutedByEventName.values.reduce(0, +) == limit + 500)
        await producer.shutdown()
    }
}
