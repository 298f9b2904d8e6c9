import AWS
import AsyncHTTPClient
import CQRSCore
import ExampleDomain
import Foundation
import JSON
import Logging
import TestSupport
import Testing

/// The event store against moto's DynamoDB: items as DESIGN.md's contract says,
/// atomic appends, and optimistic concurrency.
@Suite(.timeLimit(.minutes(2))) struct DynamoDBEventStoreTests {
    static let logger = Logger(label: "event-store-test")

    static func withStore(_ body: (DynamoDBEventStore) async throws -> Void) async throws {
        var aws = AWSConfiguration(
            region: "us-east-1",
            credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: try TestServices.awsEndpoint())!
        )
        // moto takes seconds for a large TransactWriteItems on a loaded machine: a request
        // timeout here must only catch a hang.
        aws.requestTimeout = .seconds(30)
        let httpClient = HTTPClient.forTests
        let store = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: httpClient, logger: logger), tableName: TestServices.uniqueName("store"))
        let arn = try await store.createTableIfMissing()
        #expect(arn?.contains(store.tableName) == true)
        try await body(store)
    }

    @Test func storesEachEventAsOneItemOfTheContract() async throws {
        try await Self.withStore { store in
            let event = GenericDomainEventMessage(
                eventName: "OrderPlaced", aggregateID: "o-1", aggregateType: "Order", sequenceNumber: 1,
                payload: ["total": .number("12345678901234567890.5"), "items": ["a", "b"], "gift": true, "note": nil],
                metadata: MessageMetadata(correlationID: "c", causationID: "m", traceparent: "00-aa-bb-01")
            )
            try await store.append([event])
            let item = try #require(try await store.dynamoDB.getItem(table: store.tableName, key: ["aggregateId": .s("o-1"), "sequenceNumber": .n("1")]))
            #expect(item["eventName"] == .s("OrderPlaced"))
            #expect(item["aggregateType"] == .s("Order"))
            #expect(item["messageId"] == .s(event.messageID))
            #expect(item["payload"] == .m(["total": .n("12345678901234567890.5"), "items": .l([.s("a"), .s("b")]), "gift": .bool(true), "note": .null]))
            #expect(item["metadata"] == .m(["correlationId": .s("c"), "causationId": .s("m"), "traceparent": .s("00-aa-bb-01")]))
            if case .s(let timestamp)? = item["timestamp"] {
                #expect(timestamp.hasSuffix("Z"))
            } else {
                Issue.record("timestamp is not a string")
            }
            let loaded = try await store.events(aggregateID: "o-1", after: 0)
            #expect(loaded.count == 1)
            #expect(loaded.first?.payload == event.payload)
        }
    }

    /// The router dead-letters an item without a message id or aggregate type; the store refuses to write one.
    @Test(arguments: [("messageId", "", "Order"), ("aggregateType", "m-1", "")])
    func anEventWithAnEmptyRequiredFieldIsRefusedAndNothingIsStored(field: String, messageID: String, aggregateType: String) async throws {
        try await Self.withStore { store in
            let good = GenericDomainEventMessage(eventName: "OrderPlaced", aggregateID: "o-2", aggregateType: "Order", sequenceNumber: 1, payload: [:])
            let bad = GenericDomainEventMessage(
                eventName: "OrderShipped", aggregateID: "o-2", aggregateType: aggregateType, sequenceNumber: 2, payload: [:], messageID: messageID
            )
            let error = await #expect(throws: EventDecodingError.self) { try await store.append([good, bad]) }
            #expect(error?.field == field)
            let stored = try await store.events(aggregateID: "o-2", after: 0)
            #expect(stored.isEmpty)
        }
    }

    @Test func aConcurrentWriterGetsAConflictAndNothingOfItsAppendIsStored() async throws {
        try await Self.withStore { store in
            let orders = Repository<Order>(store: store)
            let dispatcher = makeExampleDispatcher(store: store)
            try await dispatcher.dispatch(try GenericCommandMessage(PlaceOrder(orderId: "o-2", customerId: "a", total: 1, items: ["x"])))
            // Two writers load version 1, both try to write #2.
            var first = try await orders.load("o-2")
            var second = try await orders.load("o-2")
            let ship = try GenericCommandMessage(ShipOrder(orderId: "o-2", carrier: "ups"))
            try first.record(OrderShipped(carrier: "ups"), causedBy: ship)
            try second.record(OrderCancelled(reason: "r"), causedBy: ship)
            try await orders.save(&first)
            await #expect(throws: ConcurrencyConflictError.self) { try await orders.save(&second) }
            #expect(try await store.events(aggregateID: "o-2", after: 0).map(\.eventName) == ["OrderPlaced", "OrderShipped"])
        }
    }

    @Test func readsLongHistoriesAcrossPages() async throws {
        try await Self.withStore { store in
            // 120 events in three atomic appends of 40, read back in Query pages of 7 items (18
            // pages): the store must follow LastEvaluatedKey to the end.
            let paged = DynamoDBEventStore(dynamoDB: store.dynamoDB, tableName: store.tableName, queryPageSize: 7)
            let padding = String(repeating: "x", count: 100)
            for batch in 0..<3 {
                let events = (1...40).map { index in
                    GenericDomainEventMessage(
                        eventName: "Tick", aggregateID: "long", aggregateType: "Clock",
                        sequenceNumber: Int64(batch * 40 + index), payload: ["padding": .string(padding)]
                    )
                }
                try await store.append(events)
            }
            let events = try await paged.events(aggregateID: "long", after: 0)
            #expect(events.map(\.sequenceNumber) == Array(1...120))
            #expect(try await paged.events(aggregateID: "long", after: 100).count == 20)
        }
    }
}
