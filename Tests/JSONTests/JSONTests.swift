import CQRSCore
import Foundation
import JSON
import Testing

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValueAndKeepsNumbersExact() throws {
        let text = #"{"a": [1, -2.5e3, 123456789012345678901234567890.125], "b": {"c": null, "d": true, "e": false}, "s": "x\u00e9\n\ud83d\ude00"}"#
        let value = try JSONParser.parse(text)
        #expect(value["a"]?.arrayValue == [.number("1"), .number("-2.5e3"), .number("123456789012345678901234567890.125")])
        #expect(value["b"]?["c"] == .null)
        #expect(value["b"]?["d"] == .bool(true))
        #expect(value["s"]?.stringValue == "xé\n😀")
    }

    @Test func writerRoundTripsThroughParser() throws {
        let value: JSONValue = ["k": ["q\"uote", "back\\slash", "tab\t", "ctl\u{01}"], "n": .number("1.50"), "o": [:]]
        let text = JSONWriter.string(value)
        #expect(try JSONParser.parse(text) == value)
        #expect(text.contains("1.50"))
        #expect(text.contains(#"\u0001"#))
    }

    @Test func keepsMemberOrder() throws {
        let value = try JSONParser.parse(#"{"z": 1, "a": 2, "m": 3}"#)
        #expect(value.objectValue?.keys == ["z", "a", "m"])
        #expect(JSONWriter.string(value) == #"{"z":1,"a":2,"m":3}"#)
    }

    @Test(arguments: [
        (#"{"a": 1,}"#, 1, 9, "expected a member name"),
        ("{\n  \"a\": tru\n}", 2, 8, "expected a value"),
        (#"[1 2]"#, 1, 4, "expected ',' or ']'"),
        (#"{"a": 1} x"#, 1, 10, "after the end of the document"),
        (#"{"a": 01}"#, 1, 8, "expected ',' or '}'"),
        (#"{"a": "x"#, 1, 9, "end of file inside a string"),
        (#"{"a": 1, "a": 2}"#, 1, 15, "duplicate member name"),
    ])
    func reportsSyntaxErrorsWithPosition(text: String, line: Int, column: Int, reason: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("expected a syntax error for \(text)")
        } catch {
            #expect(error.position == TextPosition(line: line, column: column), "\(error)")
            #expect(error.reason.contains(reason), "\(error)")
        }
    }

    @Test func refusesDeepNesting() {
        let text = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(text) }
        #expect(throws: Never.self) { try JSONParser.parse(text, maximumDepth: 300) }
    }

    @Test func recordsPositionsOfValues() throws {
        let located = try JSONParser.parseLocated(Array("{\n  \"routes\": [\n    {\"name\": \"x\"}\n  ]\n}".utf8))
        #expect(located.positions["$.routes[0].name"] == TextPosition(line: 3, column: 14))
        #expect(located.position(of: "$.routes[0].missing") == TextPosition(line: 3, column: 5))
    }
}

@Suite struct EventMessageJSONTests {
    @Test func roundTripsThroughJSONBytes() throws {
        let event = GenericDomainEventMessage(
            eventName: "OrderPlaced", aggregateID: "order-1", aggregateType: "Order", sequenceNumber: 3,
            payload: ["total": .number("12345678901234567890.01"), "items": ["a"]],
            metadata: MessageMetadata(correlationID: "c-1", causationID: "m-0", traceparent: "00-abc-def-01")
        )
        let decoded = try GenericDomainEventMessage(jsonBytes: event.jsonBytes())
        #expect(decoded.messageID == event.messageID)
        #expect(decoded.payload == event.payload)
        #expect(decoded.metadata == event.metadata)
        #expect(decoded.sequenceNumber == 3)
        #expect(abs(decoded.timestamp.timeIntervalSince(event.timestamp)) < 0.001)
    }

    /// `jsonBytes()` writes the fields itself; it must stay byte for byte what writing `jsonObject` gives.
    @Test func jsonBytesAreJSONObjectWritten() throws {
        let event = GenericDomainEventMessage(
            eventName: "Order\"Placed\u{1}", aggregateID: "order-\\1", aggregateType: "", sequenceNumber: 9_007_199_254_740_993,
            payload: ["z": ["nested": [.null, true, .number("1e400")]], "a": "é\n"],
            metadata: MessageMetadata(correlationID: "c-1", causationID: nil, traceparent: "00-abc-def-01")
        )
        #expect(event.jsonBytes() == JSONWriter.bytes(.object(event.jsonObject)))
        #expect(String(decoding: event.jsonBytes(), as: UTF8.self).hasPrefix(#"{"messageId":""#))
    }

    @Test(arguments: [
        (#"{"aggregateId": "a"}"#, "eventName"),
        (#"{"eventName": "X"}"#, "aggregateId"),
        (#"{"eventName": 5, "aggregateId": "a"}"#, "eventName"),
        (#"{"eventName": "X", "aggregateId": "a", "payload": [1]}"#, "payload"),
        (#"{"eventName": "X", "aggregateId": "a", "sequenceNumber": 1.5}"#, "sequenceNumber"),
        (#"{"eventName": "X", "aggregateId": "a", "timestamp": "yesterday"}"#, "timestamp"),
        (#"[1]"#, "$"),
        (#"not json"#, "$"),
    ])
    func namesTheFieldThatIsWrong(json: String, field: String) {
        do {
            _ = try GenericDomainEventMessage(jsonBytes: Array(json.utf8))
            Issue.record("expected a decoding error")
        } catch {
            #expect(error.field == field, "\(error)")
        }
    }
}

@Suite struct TimestampTests {
    @Test(arguments: [0.0, 1_795_814_466.2606618, 1_795_814_466.298802, 1_795_814_466.999_999, 951_782_400.5, -1.25])
    func formatsMillisecondsExactly(seconds: Double) throws {
        let date = Date(timeIntervalSince1970: seconds)
        let text = GenericDomainEventMessage.formatTimestamp(date)
        let parsed = try #require(GenericDomainEventMessage.parseTimestamp(text))
        let expected = (seconds * 1000).rounded(.down) / 1000
        #expect(abs(parsed.timeIntervalSince1970 - expected) < 0.000_001, "\(text)")
        #expect(text.hasSuffix("Z"))
        #expect(text.count == 24)
    }

    @Test(arguments: [-86_400.0 * 365 * 100, -1.0, 0, 951_782_400, 951_868_800, 1_709_164_800, 4_102_444_800, 253_402_300_799])
    func agreesWithFoundationAcrossTheCalendar(seconds: Double) throws {
        let date = Date(timeIntervalSince1970: seconds)
        let text = GenericDomainEventMessage.formatTimestamp(date)
        #expect(String(text.prefix(19)) + "Z" == date.formatted(Date.ISO8601FormatStyle()))
        #expect(GenericDomainEventMessage.parseTimestamp(text)?.timeIntervalSince1970 == seconds)
    }

    /// `appendTimestamp` writes the bytes `formatTimestamp` returns, in the years it writes by hand and past them.
    @Test(arguments: [-86_400.0 * 366 * 2100, -86_400.0 * 365 * 100, -1.25, 0, 1_795_814_466.2606618, 951_782_400.5, 253_402_300_799.999, 253_402_300_800])
    func appendsTheBytesItFormats(seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        var bytes = Array("x".utf8)
        GenericDomainEventMessage.appendTimestamp(date, to: &bytes)
        #expect(bytes == Array("x".utf8) + Array(GenericDomainEventMessage.formatTimestamp(date).utf8))
    }

    @Test func readsTheFormsOtherWritersUse() {
        #expect(GenericDomainEventMessage.parseTimestamp("2026-11-27T21:04:05Z")?.timeIntervalSince1970 == 1_795_813_445)
        #expect(GenericDomainEventMessage.parseTimestamp("2026-11-27T21:04:05.5Z")?.timeIntervalSince1970 == 1_795_813_445.5)
        #expect(GenericDomainEventMessage.parseTimestamp("2026-11-27T21:04:05.123456Z") != nil)
        #expect(GenericDomainEventMessage.parseTimestamp("yesterday") == nil)
        #expect(GenericDomainEventMessage.parseTimestamp("2026-13-27T21:04:05Z") == nil)
        #expect(GenericDomainEventMessage.parseTimestamp("2026-11-27T21:04:05+01:00")?.timeIntervalSince1970 == 1_795_809_845)
    }
}
