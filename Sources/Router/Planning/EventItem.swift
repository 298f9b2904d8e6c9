import AWS
import CQRSCore
import Foundation
import JSON

/// An events-table item read only as far as routing needs: the header fields, and the Kafka
/// record value written straight from the item's attribute values.
///
/// `GenericDomainEventMessage(item:)` followed by `jsonBytes()` builds a `JSONObject` tree of the
/// whole item, then a `GenericDomainEventMessage`, then writes it; this runs for every routed event.
/// `EventItem` reads the same item and writes the very same bytes without building either.
/// It covers the items a well-behaved writer produces; for anything else (a missing or empty
/// required field, `GenericDomainEventMessage.requiredItemStrings` included, a field of an unexpected
/// type, a timestamp that does not parse, a `traceparent` that is not an S) `init(item:)` returns nil,
/// and the caller takes the reference path, which decides (and words any error) exactly as before.
public struct EventItem: Sendable {
    public typealias Field = GenericDomainEventMessage.Field

    /// Where the item's values are: built, or still the typed JSON of a GetRecords page (whose Kafka record
    /// value was written when it was read).
    private enum Source: Sendable {
        case item(DynamoDBItem)
        case json(ItemJSON, value: [UInt8])
    }

    private let source: Source
    /// The item, built (from its typed JSON when read from that).
    public var item: DynamoDBItem {
        switch source {
        case .item(let item): item
        case .json(let json, _): json.item
        }
    }
    public let eventName: String
    public let aggregateID: String
    public let messageID: String
    public let aggregateType: String
    /// The metadata's `traceparent`, when it is an S.
    public let traceparent: String?
    private let sequenceNumber: Int64
    private let timestamp: Date

    public init?(item: DynamoDBItem) {
        /// The field's text when it is a non-empty S (every header field is required).
        func string(_ field: String) -> String? {
            if case .s(let text)? = item[field], !text.isEmpty { text } else { nil }
        }
        guard let eventName = string(Field.eventName),
            let aggregateID = string(Field.aggregateID),
            let messageID = string(Field.messageID),
            let aggregateType = string(Field.aggregateType),
            let timestampText = string(Field.timestamp),
            let timestamp = GenericDomainEventMessage.parseTimestamp(timestampText)
        else { return nil }
        var sequenceNumber: Int64 = 0
        switch item[Field.sequenceNumber] {
        case .n(let text)?:
            guard let value = Int64(text), value >= 0 else { return nil }
            sequenceNumber = value
        case nil: break
        default: return nil
        }
        switch item[Field.payload] {
        case .m?, nil: break
        default: return nil
        }
        var traceparent: String?
        switch item[Field.metadata] {
        case .m(let metadata)?:
            switch metadata["traceparent"] {
            case .s(let text)?: traceparent = text
            case nil: break
            default: return nil
            }
        case nil, .null?: break
        default: return nil
        }
        self.source = .item(item)
        self.eventName = eventName
        self.aggregateID = aggregateID
        self.messageID = messageID
        self.aggregateType = aggregateType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.traceparent = traceparent
    }

    /// The event as the reference path reads it (for content patterns and keys taken from the payload or metadata).
    public func message() throws(EventDecodingError) -> GenericDomainEventMessage {
        try GenericDomainEventMessage(item: item)
    }

    /// The Kafka record value: byte for byte `GenericDomainEventMessage(item: item).jsonBytes()`.
    public func jsonBytes() -> [UInt8] {
        switch source {
        case .json(_, let value): return value
        case .item(let item):
            func map(_ field: String) -> (inout [UInt8]) -> Void {
                { output in
                    if case .m(let map)? = item[field] { JSONWriter.writeObject(map, to: &output) } else { output.append(contentsOf: "{}".utf8) }
                }
            }
            return Self.value(
                messageID: messageID, eventName: eventName, aggregateID: aggregateID, aggregateType: aggregateType, sequenceNumber: sequenceNumber,
                timestamp: timestamp, payload: map(Field.payload), metadata: map(Field.metadata)
            )
        }
    }

    /// The value's JSON: the header fields, then the payload and metadata objects as `payload` and `metadata` write them.
    private static func value(
        messageID: String, eventName: String, aggregateID: String, aggregateType: String, sequenceNumber: Int64, timestamp: Date,
        capacity: Int = 1024, payload: (inout [UInt8]) -> Void, metadata: (inout [UInt8]) -> Void
    ) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(capacity)
        func member(_ name: StaticString, first: Bool = false) {
            if !first { output.append(UInt8(ascii: ",")) }
            output.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { output.append(contentsOf: $0) }
            output.append(contentsOf: "\":".utf8)
        }
        output.append(UInt8(ascii: "{"))
        member("messageId", first: true)
        JSONWriter.writeString(messageID, to: &output)
        member("eventName")
        JSONWriter.writeString(eventName, to: &output)
        member("aggregateId")
        JSONWriter.writeString(aggregateID, to: &output)
        member("aggregateType")
        JSONWriter.writeString(aggregateType, to: &output)
        member("sequenceNumber")
        output.append(contentsOf: String(sequenceNumber).utf8)
        member("timestamp")
        // As `JSONWriter.writeString` writes it: no character of a timestamp needs escaping.
        output.append(UInt8(ascii: "\""))
        GenericDomainEventMessage.appendTimestamp(timestamp, to: &output)
        output.append(UInt8(ascii: "\""))
        member("payload")
        payload(&output)
        member("metadata")
        metadata(&output)
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// The same as `init(item: json.item)`, read from the typed JSON in one pass without building the item:
    /// the header fields read, the payload and metadata written as plain JSON as they are read (the value,
    /// `jsonBytes()`, is then ready). What that pass leaves to the built item (`TypedJSONTranscoder`) is
    /// read from the built item.
    public init?(json: ItemJSON) {
        if let read = Self.read(json) {
            self = read
        } else if let built = EventItem(item: json.item) {
            self = built
        } else {
            return nil
        }
    }

    private init(
        source: Source, eventName: String, aggregateID: String, messageID: String, aggregateType: String, traceparent: String?,
        sequenceNumber: Int64, timestamp: Date
    ) {
        self.source = source
        self.eventName = eventName
        self.aggregateID = aggregateID
        self.messageID = messageID
        self.aggregateType = aggregateType
        self.traceparent = traceparent
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
    }

    /// The one pass of `init(json:)`: nil for anything it leaves to the built item (which also decides what
    /// `init(item:)` refuses).
    private static func read(_ json: ItemJSON) -> EventItem? {
        // Plain JSON is shorter than the typed JSON it is written from: room for the item's bytes (on the stack
        // unless it is large) holds the payload and metadata written.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: json.range.count) { room in
            json.bytes.withUnsafeBufferPointer { buffer in read(json, in: buffer, writingTo: room) }
        }
    }

    /// `read(_:)` over the page's bytes, writing the payload and metadata to `room`.
    private static func read(_ json: ItemJSON, in buffer: UnsafeBufferPointer<UInt8>, writingTo room: UnsafeMutableBufferPointer<UInt8>) -> EventItem? {
        var reader = TypedJSONTranscoder(bytes: buffer, position: json.range.lowerBound, output: room)
        var eventName = "", aggregateID = "", messageID = "", aggregateType = ""
        var timestampText: String?
        var sequenceNumber: Int64 = 0
        var payload: Range<Int>?
        var metadata: Range<Int>?
        var traceparent: String?
        do throws(TypedJSONTranscoder.Unhandled) {
            try reader.expect(UInt8(ascii: "{"))
            if !reader.consume(UInt8(ascii: "}")) {
                while true {
                    let name = try reader.name(anyBytes: true)
                    if reader.bytes(name, equal: "eventName") {
                        eventName = try reader.typedString()
                    } else if reader.bytes(name, equal: "aggregateId") {
                        aggregateID = try reader.typedString()
                    } else if reader.bytes(name, equal: "messageId") {
                        messageID = try reader.typedString()
                    } else if reader.bytes(name, equal: "aggregateType") {
                        aggregateType = try reader.typedString()
                    } else if reader.bytes(name, equal: "timestamp") {
                        timestampText = try reader.typedString()
                    } else if reader.bytes(name, equal: "sequenceNumber") {
                        guard try reader.tag() == .n,
                            let value = Int64(String(decoding: UnsafeBufferPointer(rebasing: buffer[try reader.plainString()]), as: UTF8.self)),
                            value >= 0
                        else { return nil }
                        try reader.expect(UInt8(ascii: "}"))
                        sequenceNumber = value
                    } else if reader.bytes(name, equal: "payload") {
                        guard try reader.tag() == .m else { return nil }
                        let start = reader.output.count
                        try reader.writeMap()
                        payload = start..<reader.output.count
                        try reader.expect(UInt8(ascii: "}"))
                    } else if reader.bytes(name, equal: "metadata") {
                        switch try reader.tag() {
                        case .m:
                            let start = reader.output.count
                            traceparent = try reader.writeMap(findingTraceparent: true)
                            metadata = start..<reader.output.count
                        case .null: guard try reader.literal() else { return nil }
                        default: return nil
                        }
                        try reader.expect(UInt8(ascii: "}"))
                    } else {
                        try reader.skipValue()
                    }
                    if !reader.consume(UInt8(ascii: ",")) {
                        try reader.expect(UInt8(ascii: "}"))
                        break
                    }
                }
            }
        } catch {
            return nil
        }
        guard !eventName.isEmpty, !aggregateID.isEmpty, !messageID.isEmpty, !aggregateType.isEmpty,
            let timestampText, let timestamp = GenericDomainEventMessage.parseTimestamp(timestampText)
        else { return nil }
        let written = reader.output.written
        func part(_ range: Range<Int>?) -> (inout [UInt8]) -> Void {
            { output in
                if let range { output.append(contentsOf: UnsafeBufferPointer(rebasing: written[range])) } else { output.append(contentsOf: "{}".utf8) }
            }
        }
        // The header members (names, punctuation, number and time: under 160 bytes) and their texts, which
        // escaping can make at most 6 times longer, then payload and metadata as written: never grown.
        let texts = messageID.utf8.count + eventName.utf8.count + aggregateID.utf8.count + aggregateType.utf8.count
        let value = Self.value(
            messageID: messageID, eventName: eventName, aggregateID: aggregateID, aggregateType: aggregateType, sequenceNumber: sequenceNumber,
            timestamp: timestamp, capacity: 160 + 6 * texts + written.count, payload: part(payload), metadata: part(metadata)
        )
        return EventItem(
            source: .json(json, value: value), eventName: eventName, aggregateID: aggregateID, messageID: messageID,
            aggregateType: aggregateType, traceparent: traceparent, sequenceNumber: sequenceNumber, timestamp: timestamp
        )
    }
}

extension JSONWriter {
    /// Writes the plain JSON of a typed value, byte for byte `write(JSONValue(attribute), to:)`, without building
    /// the `JSONValue`.
    public static func write(_ attribute: AttributeValue, to output: inout [UInt8]) {
        switch attribute {
        case .s(let text): writeString(text, to: &output)
        case .n(let text): output.append(contentsOf: text.utf8)
        case .b(let bytes): writeBase64(bytes, to: &output)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .null: output.append(contentsOf: "null".utf8)
        case .m(let map): writeObject(map, to: &output)
        case .l(let list): writeArray(list, to: &output) { write($0, to: &$1) }
        case .ss(let strings): writeArray(strings, to: &output) { writeString($0, to: &$1) }
        case .ns(let numbers): writeArray(numbers, to: &output) { $1.append(contentsOf: $0.utf8) }
        case .bs(let blobs): writeArray(blobs, to: &output) { writeBase64($0, to: &$1) }
        }
    }

    /// An M value or item as a JSON object, members in the order of their names (as `JSONObject(attributes:)`).
    public static func writeObject(_ map: [String: AttributeValue], to output: inout [UInt8]) {
        output.append(UInt8(ascii: "{"))
        // The members sorted by name (names are distinct: the same order as sorting the names), so that no
        // value is looked up again by its name.
        for (offset, member) in map.sorted(by: { $0.key < $1.key }).enumerated() {
            if offset > 0 { output.append(UInt8(ascii: ",")) }
            writeString(member.key, to: &output)
            output.append(UInt8(ascii: ":"))
            write(member.value, to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    /// A B value as `JSONValue(.b(bytes))` writes it: a base64 string (no character of base64 needs escaping).
    private static func writeBase64(_ bytes: [UInt8], to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        output.append(contentsOf: Data(bytes).base64EncodedString().utf8)
        output.append(UInt8(ascii: "\""))
    }
}
