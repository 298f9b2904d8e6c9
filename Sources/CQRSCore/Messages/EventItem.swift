import AWS
import Foundation

/// An events-table item read only as far as routing needs: the header fields, and the Kafka
/// record value written straight from the item's attribute values.
///
/// `GenericDomainEventMessage(item:)` followed by `jsonBytes()` builds a `JSONObject` tree of the
/// whole item, then a `GenericDomainEventMessage`, then writes it; this runs for every routed event.
/// `EventItem` reads the same item and writes the very same bytes without building either.
/// It covers the items a well-behaved writer produces; for anything else (a missing or empty
/// required field, a field of an unexpected type, a timestamp that does not parse, a `traceparent`
/// that is not an S) `init(item:)` returns nil, and the caller takes the reference path, which
/// decides (and words any error) exactly as before.
public struct EventItem: Sendable {
    public typealias Field = GenericDomainEventMessage.Field

    public let item: DynamoDBItem
    public let eventName: String
    public let aggregateID: String
    /// Empty when the item has none (as in `GenericDomainEventMessage`).
    public let messageID: String
    public let aggregateType: String
    /// The metadata's `traceparent`, when it is an S.
    public let traceparent: String?
    private let sequenceNumber: Int64
    private let timestamp: Date

    public init?(item: DynamoDBItem) {
        func string(_ field: String, required: Bool) -> String?? {
            switch item[field] {
            case .s(let text)?: return required && text.isEmpty ? nil : .some(text)
            case nil: return required ? nil : .some(nil)
            default: return nil
            }
        }
        guard let eventName = string(Field.eventName, required: true) ?? nil,
            let aggregateID = string(Field.aggregateID, required: true) ?? nil,
            let messageID = string(Field.messageID, required: false),
            let aggregateType = string(Field.aggregateType, required: false),
            let timestampText = string(Field.timestamp, required: false)
        else { return nil }
        var sequenceNumber: Int64 = 0
        switch item[Field.sequenceNumber] {
        case .n(let text)?:
            guard let value = Int64(text), value >= 0 else { return nil }
            sequenceNumber = value
        case nil: break
        default: return nil
        }
        var timestamp = Date(timeIntervalSince1970: 0)
        if let timestampText {
            guard let parsed = GenericDomainEventMessage.parseTimestamp(timestampText) else { return nil }
            timestamp = parsed
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
        self.item = item
        self.eventName = eventName
        self.aggregateID = aggregateID
        self.messageID = messageID ?? ""
        self.aggregateType = aggregateType ?? ""
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
        var output: [UInt8] = []
        output.reserveCapacity(1024)
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
        JSONWriter.writeString(GenericDomainEventMessage.formatTimestamp(timestamp), to: &output)
        member("payload")
        if case .m(let payload)? = item[Field.payload] {
            JSONWriter.writeObject(payload, to: &output)
        } else {
            output.append(contentsOf: "{}".utf8)
        }
        member("metadata")
        if case .m(let metadata)? = item[Field.metadata] {
            JSONWriter.writeObject(metadata, to: &output)
        } else {
            output.append(contentsOf: "{}".utf8)
        }
        output.append(UInt8(ascii: "}"))
        return output
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
