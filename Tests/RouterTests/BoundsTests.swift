import AWS
import CQRSCore
import Contracts
import Foundation
import JSON
import Logging
import Router
import StreamReader
import TestSupport
import Testing

/// Every bound of docs/security.md, at its limit: what is allowed passes, one more is refused with the reason.
@Suite struct BoundsTests {
    static func routesFile(routes: [String], topics: Int = 1) -> [UInt8] {
        let declared = (0..<topics).map { #""t\#($0)": {}"# }.joined(separator: ",")
        return Array(#"{"version": 1, "topics": {\#(declared)}, "routes": [\#(routes.joined(separator: ","))]}"#.utf8)
    }

    static func route(_ index: Int, events: String = #"["E*"]"#) -> String {
        #"{"name": "r\#(index)", "events": \#(events), "to": ["t0"]}"#
    }

    static func issues(_ bytes: [UInt8]) -> [String] {
        do {
            _ = try RoutesFile.parse(bytes, file: "routes.json")
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    // MARK: - Routes file

    @Test func aRoutesFileLargerThanTheLimitIsRefusedUnread() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestServices.uniqueName("big")).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var bytes = Self.routesFile(routes: [Self.route(0)])
        bytes += Array(repeating: UInt8(ascii: " "), count: RoutesFile.Limits.maximumFileBytes + 1 - bytes.count)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        #expect(throws: RoutesFileError.self) { try RoutesFile.load(path: path) }
        do {
            _ = try RoutesFile.read(path: path)
            Issue.record("a file of \(bytes.count) bytes was read")
        } catch {
            #expect(error.description == "\(path): $: the file is 8388609 bytes; at most 8388608 are allowed")
        }
        #expect(Self.issues(bytes) == ["routes.json: $: the file is 8388609 bytes; at most 8388608 are allowed"])
        // At the limit it is read.
        bytes.removeLast()
        #expect(Self.issues(bytes).isEmpty)
    }

    @Test func tenThousandRoutesLoadAndOneMoreIsRefused() {
        let limit = RoutesFile.Limits.maximumRoutes
        #expect(limit == 10_000)
        let routes = (0..<limit).map { Self.route($0) }
        #expect(Self.issues(Self.routesFile(routes: routes)).isEmpty)
        let refused = Self.issues(Self.routesFile(routes: routes + [Self.route(limit)]))
        #expect(refused.count == 1)
        #expect(refused.first?.hasSuffix("$.routes: the file has 10001 routes; at most 10000 are allowed") == true, "\(refused)")
    }

    @Test func tenThousandTopicsAndOneMoreIsRefused() {
        let limit = RoutesFile.Limits.maximumTopics
        #expect(Self.issues(Self.routesFile(routes: [Self.route(0)], topics: limit)).isEmpty)
        let refused = Self.issues(Self.routesFile(routes: [Self.route(0)], topics: limit + 1))
        #expect(refused.count == 1)
        #expect(refused.first?.hasSuffix("$.topics: 10001 topics are declared; at most 10000 are allowed") == true, "\(refused)")
    }

    @Test func anEventNamePatternWithTooManyWildcardsIsRefusedWithTheReason() {
        #expect(Self.issues(Self.routesFile(routes: [Self.route(0, events: #"["A*b*c*d*e*f"]"#)])).isEmpty)
        let refused = Self.issues(Self.routesFile(routes: [Self.route(0, events: #"["A*b*c*d*e*f*"]"#)]))
        #expect(refused.count == 1)
        #expect(refused.first?.hasSuffix(#"$.routes[0].events[0]: "A*b*c*d*e*f*" has 6 wildcards; at most 5 are allowed, so that matching stays fast"#) == true, "\(refused)")
    }

    @Test func anEventNamePatternLongerThanAnyRoutableNameIsRefused() {
        let limit = RoutesFile.Limits.maximumEventNamePatternBytes
        let fits = String(repeating: "a", count: limit - 1) + "*"
        #expect(Self.issues(Self.routesFile(routes: [Self.route(0, events: #"["\#(fits)"]"#)])).isEmpty)
        let refused = Self.issues(Self.routesFile(routes: [Self.route(0, events: #"["\#(fits)b"]"#)]))
        #expect(refused.first?.hasSuffix("an event-name pattern of 1025 bytes is longer than the 1024 allowed") == true, "\(refused)")
    }

    /// The costliest patterns the bounds allow, against the costliest event names and payloads the
    /// planner routes: each event is matched in well under the hang guard.
    @Test(.timeLimit(.minutes(1))) func matchingTheWorstAllowedPatternsStaysFast() throws {
        let namePattern = String(repeating: "a", count: 100) + "*" + String(repeating: "ab*", count: 4) + "b"
        var leaves: [String] = []
        for index in 0..<90 {
            leaves.append(#""f\#(index)": [{"wildcard": "*a*a*a*a*b"}, {"prefix": "aaa"}, {"anything-but": {"wildcard": "*a*a*a*a*c"}}, {"numeric": [">", 0, "<", 1]}, {"cidr": "10.0.0.0/8"}]"#)
        }
        var pattern = #"{\#(leaves.joined(separator: ","))}"#
        for _ in 0..<8 { pattern = #"{"n": \#(pattern)}"# }
        let file = Self.routesFile(routes: (0..<50).map { #"{"name": "r\#($0)", "events": ["\#(namePattern)"], "where": {"payload": \#(pattern)}, "to": ["t0"]}"# })
        let routes = CompiledRoutes(try RoutesFile.parse(file, file: "worst.json"))

        let longName = String(repeating: "a", count: FanOutPlanner.maximumHeaderValueBytes)
        var payload: JSONValue = .object(JSONObject(Dictionary(uniqueKeysWithValues: (0..<90).map {
            ("f\($0)", JSONValue.array(Array(repeating: .string(String(repeating: "a", count: 1000)), count: 10)))
        })))
        for _ in 0..<8 { payload = ["n": payload] }
        let event = GenericDomainEventMessage(eventName: longName, aggregateID: "a", aggregateType: "A", sequenceNumber: 1, payload: payload)
        let started = ContinuousClock.now
        for _ in 0..<5 { _ = routes.targets(for: event) }
        #expect(ContinuousClock.now - started < .seconds(15))
    }

    // MARK: - Event size, headers and keys

    static let routes = CompiledRoutes(try! RoutesFile.parse(Array("""
        {
          "version": 1,
          "topics": { "orders": {}, "keyed": {} },
          "routes": [
            { "name": "orders", "events": ["Order*"], "to": ["orders"] },
            { "name": "keyed", "events": ["OrderKeyed"], "to": ["keyed"], "key": "payload.customer" }
          ],
          "deadLetterTopic": "dlq"
        }
        """.utf8), file: "bounds.json"))

    static func plan(_ image: DynamoDBItem, keys: DynamoDBItem = ["aggregateId": .s("order-7")], maximumValueBytes: Int = FanOutPlanner.defaultMaximumValueBytes) -> ([KafkaProducerRecord], RecordOutcome) {
        var output: [KafkaProducerRecord] = []
        let record = StreamRecord(eventID: "e", eventName: "INSERT", keys: keys, newImage: image, sequenceNumber: "42")
        let outcome = FanOutPlanner(routes: routes, maximumValueBytes: maximumValueBytes).plan(record, streamARN: "arn:s", shardID: "shard-1", into: &output)
        return (output, outcome)
    }

    static func event(name: String = "OrderPlaced", aggregateID: String = "order-7", traceparent: String? = nil, payload: JSONValue = [:]) -> GenericDomainEventMessage {
        GenericDomainEventMessage(
            eventName: name, aggregateID: aggregateID, aggregateType: "Order", sequenceNumber: 1, payload: payload,
            metadata: MessageMetadata(correlationID: "c", traceparent: traceparent)
        )
    }

    static func header(_ record: KafkaProducerRecord, _ key: String) -> String? {
        record.headers.first { $0.key == key }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    /// What a dead letter must carry: the topic, the reason, the source coordinates, and bounded sizes.
    static func expectDeadLetter(_ output: [KafkaProducerRecord], _ outcome: RecordOutcome, reason: String) {
        guard case .deadLettered(let said) = outcome else {
            Issue.record("expected a dead letter, got \(outcome)")
            return
        }
        #expect(said.contains(reason), "\(said)")
        #expect(output.map(\.topic) == ["dlq"])
        guard let dead = output.first else { return }
        #expect(header(dead, FanoutHeader.error) == said)
        #expect(header(dead, FanoutHeader.source) == "arn:s/shard-1/42")
        #expect(dead.value.count <= FanOutPlanner.defaultMaximumValueBytes)
        #expect((dead.key?.count ?? 0) <= FanOutPlanner.maximumKeyBytes)
        #expect(dead.headers.allSatisfy { $0.value.count <= FanOutPlanner.maximumHeaderValueBytes })
    }

    @Test(arguments: ["eventName", "aggregateId", "traceparent"])
    func anEventWhoseHeaderWouldBeTooLongIsADeadLetter(field: String) throws {
        let long = "Order" + String(repeating: "x", count: FanOutPlanner.maximumHeaderValueBytes)
        let event = switch field {
        case "eventName": Self.event(name: long)
        case "aggregateId": Self.event(aggregateID: long)
        default: Self.event(traceparent: long)
        }
        let (output, outcome) = Self.plan(event.item)
        let header = ["eventName": "fanout-event-name", "aggregateId": "fanout-aggregate-id", "traceparent": "traceparent"][field]!
        Self.expectDeadLetter(output, outcome, reason: "the \(header) header would be 1029 bytes; at most 1024 are allowed")
        // The event itself is in the dead letter, whole.
        let dead = try GenericDomainEventMessage(jsonBytes: output[0].value)
        #expect(dead.messageID == event.messageID && dead.payload == event.payload)
        // At the limit, it is routed.
        let fits = String(long.prefix(FanOutPlanner.maximumHeaderValueBytes))
        let (_, routed) = Self.plan(field == "eventName" ? Self.event(name: fits).item : field == "aggregateId" ? Self.event(aggregateID: fits).item : Self.event(traceparent: fits).item)
        #expect(routed == .routed(topics: ["orders"]))
    }

    @Test func anEventWhoseRouteKeyWouldBeTooLongIsADeadLetterForAllItsTopics() {
        let key = String(repeating: "k", count: FanOutPlanner.maximumKeyBytes + 1)
        let (output, outcome) = Self.plan(Self.event(name: "OrderKeyed", payload: ["customer": .string(key)]).item)
        Self.expectDeadLetter(output, outcome, reason: "a record key would be 4097 bytes; at most 4096 are allowed")
        let (fits, routed) = Self.plan(Self.event(name: "OrderKeyed", payload: ["customer": .string(String(key.dropFirst()))]).item)
        #expect(routed == .routed(topics: ["orders", "keyed"]))
        #expect(fits[1].key?.count == FanOutPlanner.maximumKeyBytes)
    }

    /// DynamoDB allows items of 400 KB; an item that is not an event, and whose plain JSON form is larger
    /// than the topic's maximum message size (control characters grow six-fold when escaped), still makes a
    /// dead letter the dead-letter topic accepts: its keys and size, not its body.
    @Test func aHugeItemThatIsNotAnEventMakesADeadLetterWithinTheSizeLimit() throws {
        let control = String(repeating: "\u{1}", count: 400 * 1024)
        let long = String(repeating: "k", count: FanOutPlanner.maximumKeyBytes + 1)
        let (output, outcome) = Self.plan(["aggregateId": .s(long), "blob": .s(control)], keys: ["aggregateId": .s(long)])
        Self.expectDeadLetter(output, outcome, reason: "not an event: eventName: is missing")
        #expect(output[0].key == nil)
        let summary = try JSONParser.parse(output[0].value)
        let size = summary["sizeBytes"]?.numberText.flatMap { Int($0) } ?? 0
        #expect(size > FanOutPlanner.defaultMaximumValueBytes)
    }

    @Test func anEventLargerThanTheMaximumMessageSizeIsADeadLetter() {
        let (output, outcome) = Self.plan(Self.event(payload: ["blob": .string(String(repeating: "x", count: 2000))]).item, maximumValueBytes: 1500)
        Self.expectDeadLetter(output, outcome, reason: "exceeds the limit of 1500 bytes; its value is not included")
    }

    // MARK: - JSON nesting

    @Test func aKafkaRecordValueNestedTooDeeplyIsRefusedWithTheReason() {
        let depth = JSONParser.defaultMaximumDepth
        func value(nesting: Int) -> [UInt8] {
            // The value is level 1, the payload level 2, its member `a` level 3 and so on.
            Array(#"{"eventName": "E", "aggregateId": "a", "payload": {"a": \#(String(repeating: "[", count: nesting - 2))\#(String(repeating: "]", count: nesting - 2))}}"#.utf8)
        }
        #expect(throws: Never.self) { try GenericDomainEventMessage(jsonBytes: value(nesting: depth)) }
        #expect(throws: EventDecodingError.self) { try GenericDomainEventMessage(jsonBytes: value(nesting: depth + 1)) }
        do {
            _ = try GenericDomainEventMessage(jsonBytes: value(nesting: depth + 1))
        } catch {
            #expect(error.description.contains("nesting deeper than 128 levels"), "\(error)")
        }
    }
}
