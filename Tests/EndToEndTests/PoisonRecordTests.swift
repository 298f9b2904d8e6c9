import AWS
import AsyncHTTPClient
import CQRSCore
import Contracts
import Delivery
import FanoutApp
import Foundation
import JSON
import Kafka
import Logging
import Router
import Settings
import TestSupport
import Testing

/// Poison records never block their shard (issue 11, point 4), on real servers: items written
/// straight into the events table (moto) that cannot be decoded, are not events, have a header too
/// long, or are larger than their topic accepts (noida-db refuses them), each go to the dead-letter
/// topic with the reason and the source coordinates, and the good event written after them in the
/// same shard still arrives.
@Suite(.serialized, .timeLimit(.minutes(2))) struct PoisonRecordTests {
    static let logger = Logger(label: "poison")

    @Test func everyKindOfPoisonRecordIsADeadLetterAndTheShardMovesOn() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try PipelineTests.awsConfiguration()
        let suffix = TestServices.uniqueName("poison")
        let orders = "orders.\(suffix)", deadLetter = "dead-letter.\(suffix)"
        let routesPath = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(suffix).json").path
        try """
            {
              "version": 1,
              "topics": { "\(orders)": { "partitions": 1, "configs": { "max.message.bytes": "20000" } } },
              "routes": [ { "name": "orders", "events": ["Order*"], "to": ["\(orders)"] } ],
              "deadLetterTopic": "\(deadLetter)"
            }
            """.write(toFile: routesPath, atomically: true, encoding: .utf8)

        let table = TestServices.uniqueName("events")
        let httpClient = HTTPClient.forTests
        let dynamoDB = DynamoDB(configuration: aws, httpClient: httpClient, logger: Self.logger)
        try await DynamoDBEventStore(dynamoDB: dynamoDB, tableName: table).createTableIfMissing()

        func event(_ id: String, name: String = "OrderPlaced", payload: JSONValue = ["total": 1]) -> DynamoDBItem {
            GenericDomainEventMessage(eventName: name, aggregateID: id, aggregateType: "Order", sequenceNumber: 1, payload: payload).item
        }
        let poison: [(item: DynamoDBItem, reason: String)] = [
            (["aggregateId": .s("not-an-event"), "sequenceNumber": .n("1"), "payload": .s("x")], "not an event: eventName: is missing"),
            (["aggregateId": .s("undecodable"), "sequenceNumber": .n("1"), "eventName": .s("OrderPlaced"), "messageId": .s("m-1"),
              "aggregateType": .s("Order"), "timestamp": .s("yesterday")],
             "not an event: timestamp: expected an ISO-8601 time"),
            // The event contract: no invented message id, aggregate type or 1970 timestamp.
            (["aggregateId": .s("keys-and-name-only"), "sequenceNumber": .n("1"), "eventName": .s("OrderPlaced")], "not an event: messageId: is missing"),
            (event("long-name", name: "Order" + String(repeating: "x", count: 2000)), "the fanout-event-name header would be 2005 bytes"),
            (event("too-large", payload: ["blob": .string(String(repeating: "x", count: 50_000))]), "topic \(orders) refused the record"),
        ]
        for (item, _) in poison { try await dynamoDB.putItem(table: table, item: item) }
        try await dynamoDB.putItem(table: table, item: event("good"))

        let sidecar = try await Sidecar.make(
            configuration: SidecarConfiguration(brokers: brokers, routesPath: routesPath, tableName: table, aws: aws),
            logger: Self.logger
        )
        let running = Task { try await sidecar.run() }
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        var routed: [KafkaConsumerMessage] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while routed.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            routed = try await KafkaTopicReader.readToEnd(topic: orders, configuration: configuration, timeout: .seconds(10), logger: Self.logger)
        }
        sidecar.requestStop()
        try await running.value

        // The good event, written last, arrived: the shard went past every poison record.
        #expect(routed.map { String(decoding: $0.key ?? [], as: UTF8.self) } == ["good"])
        let dead = try await KafkaTopicReader.readToEnd(topic: deadLetter, configuration: configuration, timeout: .seconds(10), logger: Self.logger)
        func header(_ message: KafkaConsumerMessage, _ key: String) -> String? {
            message.headers.first { $0.key == key }.map { String(decoding: $0.value, as: UTF8.self) }
        }
        #expect(dead.count == poison.count, "\(dead.map { header($0, "fanout-error") ?? "?" })")
        for (item, reason) in poison {
            let id = item["aggregateId"]!.stringValue!
            let letter = dead.first { $0.key.map { String(decoding: $0, as: UTF8.self) } == id }
            #expect(letter.flatMap { header($0, FanoutHeader.error) }?.contains(reason) == true, "\(id): \(letter.flatMap { header($0, FanoutHeader.error) } ?? "no dead letter")")
            #expect(letter.flatMap { header($0, FanoutHeader.source) }?.hasPrefix(sidecar.streamARN + "/") == true, "\(id)")
        }
        #expect(sidecar.pipeline.currentCounts.deadLettered == poison.count)
    }
}
