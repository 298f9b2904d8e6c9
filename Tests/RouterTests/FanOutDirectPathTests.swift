import AWS
import CQRSCore
import Contracts
import Foundation
import Router
import TestSupport
import Testing

/// The planner's direct path (header fields read from the item, the value written straight from its attribute
/// values) must write exactly what the reference path (item → GenericDomainEventMessage → JSON) writes: the same
/// records (topic, key, value bytes, headers) and the same outcome, for every kind of item, odd ones included.
@Suite struct FanOutDirectPathTests {
    static let nameOnly = routes("""
        "routes": [
          { "name": "orders", "events": ["Order*"], "to": ["orders"] },
          { "name": "billing", "events": ["OrderPlaced", "PaymentReceived"], "to": ["billing"], "key": "messageId" },
          { "name": "by-type", "events": ["Payment*"], "to": ["payments"], "key": "aggregateType" },
          { "name": "by-name", "events": ["*Shipped"], "to": ["orders", "shipping"], "key": "eventName" }
        ],
        "unrouted": { "topic": "lost" },
        """)
    static let countingUnrouted = routes("""
        "routes": [ { "name": "orders", "events": ["Order*"], "to": ["orders"] } ],
        "unrouted": "count",
        """)
    static let withContent = routes("""
        "routes": [
          { "name": "orders", "events": ["Order*"], "to": ["orders"] },
          { "name": "big", "events": ["OrderPlaced"], "where": { "payload": { "total": [{ "numeric": [">", 1000] }] } }, "to": ["fraud"] },
          { "name": "customer", "events": ["PaymentReceived"], "to": ["billing"], "key": "payload.customer.id" },
          { "name": "traced", "events": ["Customer*"], "to": ["customers"], "key": "metadata.correlationId" }
        ],
        """)
    static let allRoutes = [nameOnly, countingUnrouted, withContent]

    static func routes(_ body: String) -> CompiledRoutes {
        let text = """
            { "version": 1,
              "topics": { "orders": {}, "billing": {}, "payments": {}, "shipping": {}, "fraud": {}, "customers": {}, "lost": {} },
              \(body)
              "deadLetterTopic": "dlq" }
            """
        return CompiledRoutes(try! RoutesFile.parse(Array(text.utf8), file: "routes.json"))
    }

    static let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    /// A well-formed events-table item, as CQRSCore's event store writes it.
    static func item(
        _ name: String = "OrderPlaced", payload: [String: AttributeValue] = ["total": .n("1500")],
        metadata: AttributeValue? = .m(["correlationId": .s("corr-1"), "traceparent": .s(traceparent)]),
        timestamp: String? = "2026-11-27T21:04:05.123Z", sequenceNumber: AttributeValue? = .n("7"),
        aggregateID: String = "order-7"
    ) -> DynamoDBItem {
        var item: DynamoDBItem = [
            "eventName": .s(name), "aggregateId": .s(aggregateID), "aggregateType": .s("Order"),
            "messageId": .s("4f0c3c2e-1b7d-4d0a-9a51-3c8e2b1f6a90"), "payload": .m(payload),
        ]
        item["metadata"] = metadata
        item["timestamp"] = timestamp.map(AttributeValue.s)
        item["sequenceNumber"] = sequenceNumber
        return item
    }

    /// A payload with every attribute type, keys that sort differently by bytes and by characters, and strings
    /// that need escaping.
    static let oddPayload: [String: AttributeValue] = [
        "total": .n("1000000000000000000000.01"), "negativeZero": .n("-0"), "exponent": .n("1E+30"), "small": .n("-0.000001"),
        "text": .s("quote \" backslash \\ slash / newline \n tab \t nul \u{0} unit \u{1F} bom \u{FEFF} é 中 😀"),
        "binary": .b([0, 1, 2, 254, 255]), "emptyBinary": .b([]), "flag": .bool(false), "nothing": .null,
        "strings": .ss(["b", "a", "é"]), "numbers": .ns(["3", "1.5", "-2E-3"]), "blobs": .bs([[1], [], [0xFF, 0xFE]]),
        "list": .l([.s("x"), .n("2"), .l([]), .m([:]), .null, .bool(true), .m(["z": .s("last"), "a": .s("first")])]),
        "nested": .m(["Zebra": .n("1"), "apple": .n("2"), "émile": .n("3"), "e\u{301}mile2": .n("4"), "中": .n("5"), "": .s("empty key"), "\"q\"": .s("quoted key"), "a\nb": .s("newline key")]),
        "customer": .m(["id": .s("cust-1"), "tier": .s("Gold")]),
    ]

    static func record(_ image: DynamoDBItem?, change: String = "INSERT") -> StreamRecord {
        StreamRecord(
            eventID: "e", eventName: change, keys: ["aggregateId": .s("order-7"), "sequenceNumber": .n("7")],
            newImage: image, sequenceNumber: "4900000000000000000123"
        )
    }

    /// How a page's JSON may write an item: compact with `/` escaped (Foundation's default), or pretty-printed
    /// with sorted keys (whitespace everywhere, members in another order).
    static let renderings: [JSONEncoder.OutputFormatting] = [[], [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]]

    /// The record as a GetRecords page holds it: read back from the page, its NewImage kept as typed JSON
    /// (`newImageJSON`) unless it holds what the page's check leaves to the built item (`isKeptAsTypedJSON`).
    static func pageRecord(_ image: DynamoDBItem?, change: String = "INSERT", rendering: JSONEncoder.OutputFormatting = []) -> StreamRecord {
        let encoder = JSONEncoder()
        encoder.outputFormatting = rendering
        let newImage = image.map { String(decoding: try! encoder.encode($0), as: UTF8.self) } ?? "null"
        let page = """
            {"Records": [{"eventID": "e", "eventName": "\(change)", "dynamodb": {
              "Keys": {"aggregateId": {"S": "order-7"}, "sequenceNumber": {"N": "7"}},
              "NewImage": \(newImage), "SequenceNumber": "4900000000000000000123"}}]}
            """
        return try! GetRecordsOutput(jsonBytes: Array(page.utf8)).records[0]
    }

    /// Items the direct path writes itself (EventItem reads them), each with a name to tell them apart.
    static let wellFormed: [(String, DynamoDBItem)] = [
        ("routed to two topics", item()),
        ("odd payload", item(payload: oddPayload)),
        ("odd metadata", item(metadata: .m(["traceparent": .s(traceparent), "extra": .m(oddPayload), "causationId": .s("c")]))),
        ("no traceparent", item(metadata: .m(["correlationId": .s("corr-1")]))),
        ("NULL metadata", item(metadata: .null)),
        ("no metadata", item(metadata: nil)),
        ("empty metadata", item(metadata: .m([:]))),
        ("no payload", item().filter { $0.key != "payload" }),
        ("timestamp without fraction", item(timestamp: "2026-11-27T21:04:05Z")),
        ("timestamp with nanoseconds", item(timestamp: "2026-11-27T21:04:05.987654321Z")),
        ("timestamp .999", item(timestamp: "1999-12-31T23:59:59.999Z")),
        ("timestamp before 1970", item(timestamp: "1969-07-20T20:17:40.5Z")),
        ("timestamp with an offset", item(timestamp: "2026-11-27T23:04:05+02:00")),
        ("sequence number -0", item(sequenceNumber: .n("-0"))),
        ("sequence number 0", item(sequenceNumber: .n("0"))),
        ("largest sequence number", item(sequenceNumber: .n(String(Int64.max)))),
        ("no sequence number", item(sequenceNumber: nil)),
        ("payment: key from aggregateType", item("PaymentReceived", payload: oddPayload)),
        ("shipped: key from eventName", item("OrderShipped")),
        ("unrouted", item("CustomerRegistered", payload: oddPayload)),
        ("customer: key from metadata", item("CustomerMoved")),
        ("unicode names and ids", item("Order✓Placed", aggregateID: "ordér-😀-\"7\"")),
        ("small order (content pattern false)", item(payload: ["total": .n("10")])),
        ("header just at the limit", item(aggregateID: String(repeating: "a", count: FanOutPlanner.maximumHeaderValueBytes))),
        ("large event", item(payload: ["blob": .s(String(repeating: "x", count: 20_000))])),
    ]

    /// Items the direct path leaves to the reference path (it decides, and words the error).
    static let leftToTheReference: [(String, DynamoDBItem)] = [
        ("no eventName", item().filter { $0.key != "eventName" }),
        ("empty eventName", item().merging(["eventName": .s("")]) { $1 }),
        ("eventName B", item().merging(["eventName": .b(Array("OrderPlaced".utf8))]) { $1 }),
        ("eventName N", item().merging(["eventName": .n("5")]) { $1 }),
        ("no aggregateId", item().filter { $0.key != "aggregateId" }),
        ("empty aggregateId", item(aggregateID: "")),
        ("messageId N", item().merging(["messageId": .n("12")]) { $1 }),
        ("no messageId", item().filter { $0.key != "messageId" }),
        ("no aggregateType", item().filter { $0.key != "aggregateType" }),
        ("empty messageId", item().merging(["messageId": .s("")]) { $1 }),
        ("empty aggregateType", item().merging(["aggregateType": .s("")]) { $1 }),
        ("no timestamp", item(timestamp: nil)),
        ("timestamp empty", item(timestamp: "")),
        ("aggregateType B", item().merging(["aggregateType": .b([1, 2])]) { $1 }),
        ("sequence number S", item(sequenceNumber: .s("7"))),
        ("sequence number 1.5", item(sequenceNumber: .n("1.5"))),
        ("sequence number -1", item(sequenceNumber: .n("-1"))),
        ("sequence number past Int64", item(sequenceNumber: .n("9223372036854775808"))),
        ("sequence number NULL", item(sequenceNumber: .null)),
        ("timestamp garbage", item(timestamp: "yesterday")),
        ("timestamp N", item().merging(["timestamp": .n("1795814466")]) { $1 }),
        ("payload L", item().merging(["payload": .l([.s("x")])]) { $1 }),
        ("payload NULL", item().merging(["payload": .null]) { $1 }),
        ("metadata S", item(metadata: .s("text"))),
        ("traceparent B", item(metadata: .m(["traceparent": .b(Array("00-ab".utf8))]))),
        ("traceparent N", item(metadata: .m(["traceparent": .n("1")]))),
        ("traceparent NULL", item(metadata: .m(["traceparent": .null]))),
    ]

    /// Dead-lettered for their size by both paths (the direct one hands them over).
    static let outOfBounds: [(String, DynamoDBItem)] = [
        ("eventName past the header limit", item("Order" + String(repeating: "x", count: 1100))),
        ("traceparent past the header limit", item(metadata: .m(["traceparent": .s(String(repeating: "t", count: 1025))]))),
        ("messageId past the header limit", item().merging(["messageId": .s(String(repeating: "m", count: 1025))]) { $1 }),
        ("aggregateId past the key limit", item(aggregateID: String(repeating: "k", count: FanOutPlanner.maximumKeyBytes + 1))),
        ("aggregateType key past the key limit", item("PaymentReceived").merging(["aggregateType": .s(String(repeating: "k", count: FanOutPlanner.maximumKeyBytes + 1))]) { $1 }),
        ("payload key past the key limit", item("PaymentReceived", payload: ["customer": .m(["id": .s(String(repeating: "c", count: FanOutPlanner.maximumKeyBytes + 1))])])),
        ("value past the limit", item(payload: ["blob": .s(String(repeating: "x", count: FanOutPlanner.defaultMaximumValueBytes))])),
    ]

    static var allItems: [(String, DynamoDBItem)] { wellFormed + leftToTheReference + outOfBounds }

    static func plan(_ record: StreamRecord, routes: CompiledRoutes, path: FanOutPlanner.Path, maximumValueBytes: Int = FanOutPlanner.defaultMaximumValueBytes)
        -> ([KafkaProducerRecord], RecordOutcome)
    {
        var output: [KafkaProducerRecord] = []
        let outcome = FanOutPlanner(routes: routes, maximumValueBytes: maximumValueBytes, path: path)
            .plan(record, streamARN: "arn:aws:dynamodb:us-east-1:1:table/events/stream/1", shardID: "shardId-1", into: &output)
        return (output, outcome)
    }

    /// Both paths, compared field by field; `label` names the case in a failure.
    static func expectSamePlans(_ record: StreamRecord, routes: CompiledRoutes, maximumValueBytes: Int = FanOutPlanner.defaultMaximumValueBytes, _ label: String) {
        let (direct, directOutcome) = plan(record, routes: routes, path: .direct, maximumValueBytes: maximumValueBytes)
        let (reference, referenceOutcome) = plan(record, routes: routes, path: .reference, maximumValueBytes: maximumValueBytes)
        #expect(directOutcome == referenceOutcome, "\(label)")
        #expect(direct.count == reference.count, "\(label)")
        for (ours, theirs) in zip(direct, reference) {
            #expect(ours.topic == theirs.topic, "\(label)")
            #expect(ours.key == theirs.key, "\(label): key")
            #expect(ours.value == theirs.value, "\(label): value\n\(String(decoding: ours.value, as: UTF8.self))\n\(String(decoding: theirs.value, as: UTF8.self))")
            #expect(ours.headers == theirs.headers, "\(label): headers")
            #expect(ours.partition == theirs.partition, "\(label)")
        }
    }

    @Test(arguments: allItems.map(\.0))
    func bothPathsWriteTheSameRecords(_ name: String) {
        let item = Self.allItems.first { $0.0 == name }!.1
        for (index, routes) in Self.allRoutes.enumerated() {
            Self.expectSamePlans(Self.record(item), routes: routes, "\(name), routes \(index)")
            // A small value limit: the value-too-large dead letter (and its summary) for every item.
            Self.expectSamePlans(Self.record(item), routes: routes, maximumValueBytes: 400, "\(name), routes \(index), 400-byte limit")
        }
    }

    /// Read from a page, the direct path writes from the typed JSON (`EventItem(json:)`): the same records again,
    /// and the same as for the item built.
    @Test(arguments: allItems.map(\.0))
    func recordsReadFromAPageAreTheSame(_ name: String) {
        let item = Self.allItems.first { $0.0 == name }!.1
        for rendering in Self.renderings {
            let record = Self.pageRecord(item, rendering: rendering)
            #expect(record.newImage == item, "\(name)")
            for (index, routes) in Self.allRoutes.enumerated() {
                Self.expectSamePlans(record, routes: routes, "\(name), from a page, routes \(index)")
                Self.expectSamePlans(record, routes: routes, maximumValueBytes: 400, "\(name), from a page, routes \(index), 400-byte limit")
                let (fromPage, pageOutcome) = Self.plan(record, routes: routes, path: .direct)
                let (built, builtOutcome) = Self.plan(Self.record(item), routes: routes, path: .direct)
                #expect(pageOutcome == builtOutcome, "\(name), routes \(index)")
                #expect(fromPage.map(\.value) == built.map(\.value), "\(name), routes \(index)")
                #expect(fromPage.map(\.headers) == built.map(\.headers), "\(name), routes \(index)")
            }
        }
    }

    /// Guards the test above: the typed JSON is kept and read for every well-formed item the page's check
    /// takes (`isKeptAsTypedJSON`), in both renderings, and for no odd item.
    @Test func pagesKeepTheTypedJSONAndTheDirectPathReadsIt() throws {
        var read = 0
        for rendering in Self.renderings {
            for (name, item) in Self.wellFormed + Self.leftToTheReference {
                let record = Self.pageRecord(item, rendering: rendering)
                guard isKeptAsTypedJSON(item, escapingSlashes: !rendering.contains(.withoutEscapingSlashes)) else {
                    #expect(record.newImageJSON == nil, "\(name)")
                    continue
                }
                let json = try #require(record.newImageJSON, "\(name)")
                let direct = EventItem(json: json)
                #expect((direct != nil) == (EventItem(item: item) != nil), "\(name)")
                guard let direct, let built = EventItem(item: item) else { continue }
                read += 1
                #expect(direct.jsonBytes() == built.jsonBytes(), "\(name)")
                #expect(direct.eventName == built.eventName && direct.aggregateID == built.aggregateID, "\(name)")
                #expect(direct.messageID == built.messageID && direct.aggregateType == built.aggregateType, "\(name)")
                #expect(direct.traceparent == built.traceparent, "\(name)")
            }
        }
        #expect(read >= 2 * (Self.wellFormed.count - 5))
    }

    @Test func recordsThatAreNotNewEventsAreTheSameToo() {
        for routes in Self.allRoutes {
            Self.expectSamePlans(Self.record(Self.item(), change: "MODIFY"), routes: routes, "MODIFY")
            Self.expectSamePlans(Self.record(nil), routes: routes, "no NewImage")
            Self.expectSamePlans(Self.pageRecord(Self.item(), change: "MODIFY"), routes: routes, "MODIFY, from a page")
            Self.expectSamePlans(Self.pageRecord(nil), routes: routes, "no NewImage, from a page")
        }
    }

    /// Guards the tests above: were the direct path never taken, they would compare the reference with itself.
    @Test func theDirectPathReadsEveryWellFormedItemAndNoOddOne() {
        for (name, item) in Self.wellFormed { #expect(EventItem(item: item) != nil, "\(name)") }
        for (name, item) in Self.leftToTheReference { #expect(EventItem(item: item) == nil, "\(name)") }
    }

    @Test(arguments: wellFormed.map(\.0))
    func theItemsValueIsTheMessagesValue(_ name: String) throws {
        let item = Self.wellFormed.first { $0.0 == name }!.1
        let direct = try #require(EventItem(item: item))
        let message = try GenericDomainEventMessage(item: item)
        #expect(direct.jsonBytes() == message.jsonBytes())
        #expect(direct.eventName == message.eventName)
        #expect(direct.aggregateID == message.aggregateID)
        #expect(direct.messageID == message.messageID)
        #expect(direct.aggregateType == message.aggregateType)
        #expect(direct.traceparent == message.metadata.traceparent)
    }

    /// Random payloads and metadata of every type, nested; random unicode in names and strings.
    @Test func randomItemsWriteTheSameBytes() throws {
        var random = SeededGenerator(seed: 0x9_2026)
        let scalars = Array("aZ09 _-.\"\\/\n\t{}[]:,éE\u{301}中😀".unicodeScalars) + ["\u{0}", "\u{1F}", "\u{7F}", "\u{FEFF}", "\u{2028}"]
        func string() -> String {
            var text = ""
            for _ in 0..<Int.random(in: 0...10, using: &random) { text.unicodeScalars.append(scalars.randomElement(using: &random)!) }
            return text
        }
        func number() -> String {
            var text = Bool.random(using: &random) ? "-" : ""
            text += String(UInt64.random(in: 0...UInt64.max, using: &random))
            if Bool.random(using: &random) { text += "." + String(Int.random(in: 0...999_999, using: &random)) }
            if Int.random(in: 0..<4, using: &random) == 0 { text += "e" + String(Int.random(in: -99...99, using: &random)) }
            return text
        }
        func bytes() -> [UInt8] { (0..<Int.random(in: 0...9, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) } }
        // Names as anything may write them in some rounds; in the others, names a page's check reads itself.
        var plainNames = false
        func map(depth: Int) -> [String: AttributeValue] {
            var map: [String: AttributeValue] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &random) {
                map[plainNames ? "k" + String(UInt8.random(in: 0...255, using: &random), radix: 16) : string()] = value(depth: depth + 1)
            }
            return map
        }
        func value(depth: Int) -> AttributeValue {
            switch Int.random(in: 0..<(depth >= 4 ? 8 : 10), using: &random) {
            case 0: .s(string())
            case 1: .n(number())
            case 2: .b(bytes())
            case 3: .bool(Bool.random(using: &random))
            case 4: .null
            case 5: .ss((0..<Int.random(in: 1...3, using: &random)).map { _ in string() })
            case 6: .ns((0..<Int.random(in: 1...3, using: &random)).map { _ in number() })
            case 7: .bs((0..<Int.random(in: 1...3, using: &random)).map { _ in bytes() })
            case 8: .m(map(depth: depth))
            default: .l((0..<Int.random(in: 0...4, using: &random)).map { _ in value(depth: depth + 1) })
            }
        }
        let names = ["OrderPlaced", "PaymentReceived", "OrderShipped", "CustomerMoved", "Elsewhere" + string()]
        var directFromPage = 0
        defer { #expect(directFromPage > 50) }
        for round in 0..<400 {
            plainNames = round % 3 != 0
            var metadata = map(depth: 1)
            if Bool.random(using: &random) { metadata["traceparent"] = .s(string()) }
            let item = Self.item(
                names.randomElement(using: &random)!, payload: map(depth: 0), metadata: .m(metadata),
                timestamp: "20\(Int.random(in: 10...99, using: &random))-0\(Int.random(in: 1...9, using: &random))-1\(Int.random(in: 0...9, using: &random))T0\(Int.random(in: 0...9, using: &random)):3\(Int.random(in: 0...9, using: &random)):4\(Int.random(in: 0...9, using: &random)).\(Int.random(in: 0...999_999, using: &random))Z",
                sequenceNumber: .n(String(Int64.random(in: 0...Int64.max, using: &random))), aggregateID: "a" + string()
            )
            let direct = try #require(EventItem(item: item), "round \(round)")
            #expect(direct.jsonBytes() == (try GenericDomainEventMessage(item: item)).jsonBytes(), "round \(round)")
            for routes in Self.allRoutes { Self.expectSamePlans(Self.record(item), routes: routes, "round \(round)") }
            // From a page: the value written from the typed JSON (when the page kept it) is the same.
            let record = Self.pageRecord(item, rendering: Self.renderings[round % 2])
            #expect((record.newImageJSON != nil) == isKeptAsTypedJSON(item, escapingSlashes: round % 2 == 0), "round \(round)")
            if let json = record.newImageJSON {
                #expect(EventItem(json: json)?.jsonBytes() == direct.jsonBytes(), "round \(round)")
                directFromPage += 1
            }
            for routes in Self.allRoutes { Self.expectSamePlans(record, routes: routes, "round \(round), from a page") }
        }
    }
}
