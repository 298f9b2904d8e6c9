import AWS
import CQRSCore
import Contracts
import JSON
import Router
import Testing

@Suite struct FanOutPlannerTests {
    static let routes = CompiledRoutes(try! RoutesFile.parse(Array("""
        {
          "version": 1,
          "topics": { "orders": {}, "billing": {}, "audit": {}, "lost": {} },
          "routes": [
            { "name": "orders", "events": ["Order*"], "to": ["orders"] },
            { "name": "billing", "events": ["OrderPlaced"], "to": ["billing"], "key": "payload.customer.id" },
            { "name": "audit", "events": ["*Placed"], "to": ["audit", "orders"] }
          ],
          "unrouted": { "topic": "lost" },
          "deadLetterTopic": "dlq"
        }
        """.utf8), file: "test.json"))

    static func record(_ image: DynamoDBItem?, change: String = "INSERT", sequence: String = "100") -> StreamRecord {
        StreamRecord(
            eventID: "e", eventName: change,
            keys: ["aggregateId": .s("order-7"), "sequenceNumber": .n("3")],
            newImage: image, oldImage: nil, sequenceNumber: sequence
        )
    }

    static func event(name: String, traceparent: String? = nil) -> GenericDomainEventMessage {
        GenericDomainEventMessage(
            eventName: name, aggregateID: "order-7", aggregateType: "Order", sequenceNumber: 3,
            payload: ["total": .number("1000000000000000000000.01"), "customer": ["id": "cust-1"]],
            metadata: MessageMetadata(correlationID: "corr", traceparent: traceparent)
        )
    }

    func plan(_ record: StreamRecord) -> ([KafkaProducerRecord], RecordOutcome) {
        var output: [KafkaProducerRecord] = []
        let outcome = FanOutPlanner(routes: Self.routes).plan(record, streamARN: "arn:stream", shardID: "shard-1", into: &output)
        return (output, outcome)
    }

    @Test func writesOneRecordPerTopicWithTheContractsKeyValueAndHeaders() throws {
        let event = Self.event(name: "OrderPlaced", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        let (records, outcome) = plan(Self.record(event.item))
        #expect(outcome == .routed(topics: ["orders", "billing", "audit"]))
        #expect(records.map(\.topic) == ["orders", "billing", "audit"])
        let orders = records[0]
        #expect(orders.key == Array("order-7".utf8))
        #expect(records[1].key == Array("cust-1".utf8))
        let decoded = try GenericDomainEventMessage(jsonBytes: orders.value)
        #expect(decoded.payload == event.payload)
        #expect(decoded.messageID == event.messageID)
        // Exact numbers survive: no trip through Double.
        #expect(String(decoding: orders.value, as: UTF8.self).contains("1000000000000000000000.01"))
        let headers = Dictionary(uniqueKeysWithValues: orders.headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) })
        #expect(headers == [
            "content-type": "application/json",
            "fanout-event-name": "OrderPlaced",
            "fanout-message-id": event.messageID,
            "fanout-aggregate-id": "order-7",
            "fanout-route": "orders,audit",
            "fanout-source": "arn:stream/shard-1/100",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ])
        #expect(!records[1].headers.contains { $0.key == "traceparent" && $0.value.isEmpty })
    }

    @Test func anUnroutedEventIsCountedAndSentToTheUnroutedTopic() {
        let (records, outcome) = plan(Self.record(Self.event(name: "PaymentReceived").item))
        #expect(outcome == .unrouted(eventName: "PaymentReceived"))
        #expect(records.map(\.topic) == ["lost"])
    }

    @Test(arguments: [
        (["aggregateId": AttributeValue.s("order-7")] as DynamoDBItem, "eventName: is missing"),
        (["aggregateId": .s("order-7"), "eventName": .n("5")], "eventName: expected a string, found number"),
        (["aggregateId": .s("order-7"), "eventName": .s("X"), "payload": .s("text")], "payload: expected an object, found string"),
        (["aggregateId": .s("order-7"), "eventName": .s("X"), "sequenceNumber": .s("1")], "sequenceNumber: expected N"),
    ])
    func aRecordThatIsNotAnEventGoesToTheDeadLetterTopicWithTheReason(image: DynamoDBItem, reason: String) {
        let (records, outcome) = plan(Self.record(image))
        guard case .deadLettered(let said) = outcome else {
            Issue.record("expected a dead letter, got \(outcome)")
            return
        }
        #expect(said.contains(reason), "\(said)")
        #expect(records.count == 1)
        #expect(records[0].topic == "dlq")
        #expect(records[0].key == Array("order-7".utf8))
        #expect(records[0].headers.contains { $0.key == "fanout-error" && String(decoding: $0.value, as: UTF8.self).contains(reason) })
        #expect(records[0].headers.contains { $0.key == "fanout-source" && $0.value == Array("arn:stream/shard-1/100".utf8) })
    }

    /// The event contract: an item without a `messageId`, `aggregateType` or `timestamp`, or with one of them empty or
    /// of another type, is a dead letter naming the field, on either path; nothing is published with an invented value.
    @Test(arguments: [
        ("messageId", nil, "messageId: is missing"),
        ("aggregateType", nil, "aggregateType: is missing"),
        ("timestamp", nil, "timestamp: is missing"),
        ("messageId", .s(""), "messageId: is empty"),
        ("aggregateType", .s(""), "aggregateType: is empty"),
        ("messageId", .n("12"), "messageId: expected S (a string), found N"),
        ("aggregateType", .b([1, 2]), "aggregateType: expected S (a string), found B"),
        ("timestamp", .n("1795814466"), "timestamp: expected S (a string), found N"),
        ("timestamp", .s("yesterday"), "timestamp: expected an ISO-8601 time, found \"yesterday\""),
    ] as [(String, AttributeValue?, String)])
    func anItemWithoutARequiredHeaderFieldIsADeadLetterNamingTheField(field: String, value: AttributeValue?, reason: String) {
        var image = Self.event(name: "OrderPlaced").item
        image[field] = value
        for path in [FanOutPlanner.Path.direct, .reference] {
            var records: [KafkaProducerRecord] = []
            let outcome = FanOutPlanner(routes: Self.routes, path: path).plan(Self.record(image), streamARN: "arn:stream", shardID: "shard-1", into: &records)
            #expect(outcome.reason?.hasPrefix("not an event: \(reason)") == true, "\(path): \(outcome)")
            #expect(records.map(\.topic) == ["dlq"], "\(path)")
            #expect(records.first?.headers.contains { $0.key == "fanout-error" && String(decoding: $0.value, as: UTF8.self).hasPrefix("not an event: \(reason)") } == true)
        }
    }

    /// The item of the issue: only the keys and the event name. It used to be published with `"messageId":""`,
    /// `"aggregateType":""` and a 1970 timestamp.
    @Test func anItemWithOnlyTheKeysAndTheEventNameIsNotPublished() {
        let (records, outcome) = plan(Self.record(["aggregateId": .s("order-7"), "sequenceNumber": .n("3"), "eventName": .s("OrderPlaced")]))
        #expect(outcome.reason?.hasPrefix("not an event: messageId: is missing") == true, "\(outcome)")
        #expect(records.map(\.topic) == ["dlq"])
    }

    @Test func aRecordThatIsNotADynamoDBChangeGoesToTheDeadLetterTopicUnchanged() throws {
        let data = Array("plain text, not a change".utf8)
        let record = StreamRecord.makeUnreadable(
            sequenceNumber: "4950", data: data, partitionKey: "pk-9", arrival: nil,
            reason: "Kinesis record is not a DynamoDB change record: its data is not JSON"
        )
        let (records, outcome) = plan(record)
        #expect(outcome == .deadLettered(reason: "Kinesis record is not a DynamoDB change record: its data is not JSON"))
        let letter = try #require(records.first)
        #expect(records.count == 1)
        #expect(letter.topic == "dlq")
        #expect(letter.value == data)
        #expect(letter.key == Array("pk-9".utf8))
        let headers = Dictionary(uniqueKeysWithValues: letter.headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) })
        #expect(headers == [
            "content-type": "application/octet-stream",
            "fanout-error": "Kinesis record is not a DynamoDB change record: its data is not JSON",
            "fanout-source": "arn:stream/shard-1/4950",
        ])
    }

    @Test func anInsertWithoutANewImageIsADeadLetter() {
        let (records, outcome) = plan(Self.record(nil))
        #expect(records.map(\.topic) == ["dlq"])
        guard case .deadLettered = outcome else {
            Issue.record("expected a dead letter")
            return
        }
    }

    @Test func anOversizedEventGoesToTheDeadLetterTopicWithoutItsBody() throws {
        let big = GenericDomainEventMessage(
            eventName: "OrderPlaced", aggregateID: "order-7", aggregateType: "Order", sequenceNumber: 3,
            payload: ["blob": .string(String(repeating: "x", count: 5_000))]
        )
        var output: [KafkaProducerRecord] = []
        let outcome = FanOutPlanner(routes: Self.routes, maximumValueBytes: 4_096)
            .plan(Self.record(big.item), streamARN: "arn:stream", shardID: "shard-1", into: &output)
        guard case .deadLettered(let reason) = outcome else {
            Issue.record("expected a dead letter, got \(outcome)")
            return
        }
        #expect(reason.hasPrefix("event of 5"))
        #expect(reason.contains("exceeds the limit of 4096 bytes"))
        #expect(output.map(\.topic) == ["dlq"])
        #expect(output[0].value.count < 1_000)
        let summary = try JSONParser.parse(output[0].value)
        #expect(summary["messageId"]?.stringValue == big.messageID)
        #expect(summary["keys"]?["aggregateId"]?.stringValue == "order-7")
    }

    @Test(arguments: ["MODIFY", "REMOVE"])
    func changesToStoredEventsAreIgnored(change: String) {
        let (records, outcome) = plan(Self.record(Self.event(name: "OrderPlaced").item, change: change))
        #expect(records.isEmpty)
        #expect(outcome == .ignored(changeType: change))
    }
}

extension RecordOutcome {
    /// The dead-letter reason, when the record was dead-lettered.
    var reason: String? {
        if case .deadLettered(let reason) = self { reason } else { nil }
    }
}
