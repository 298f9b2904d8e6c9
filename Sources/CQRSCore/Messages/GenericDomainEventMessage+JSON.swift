import Foundation

/// Why a stored or published event could not be read back as a `GenericDomainEventMessage`.
public struct EventDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The field at fault (`eventName`, `payload`, …), or `$` for the whole value.
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

extension GenericDomainEventMessage {
    /// The JSON field names, which are also the events table's attribute names.
    public enum Field {
        public static let messageID = "messageId"
        public static let eventName = "eventName"
        public static let aggregateID = "aggregateId"
        public static let aggregateType = "aggregateType"
        public static let sequenceNumber = "sequenceNumber"
        public static let timestamp = "timestamp"
        public static let payload = "payload"
        public static let metadata = "metadata"
    }

    /// The message as a JSON object: the value of every Kafka record Fanout writes.
    public var jsonObject: JSONObject {
        var object = JSONObject()
        object[Field.messageID] = .string(messageID)
        object[Field.eventName] = .string(eventName)
        object[Field.aggregateID] = .string(aggregateID)
        object[Field.aggregateType] = .string(aggregateType)
        object[Field.sequenceNumber] = .number(String(sequenceNumber))
        object[Field.timestamp] = .string(Self.formatTimestamp(timestamp))
        object[Field.payload] = payload
        object[Field.metadata] = .object(metadata.values)
        return object
    }

    /// The message as compact JSON bytes.
    public func jsonBytes() -> [UInt8] {
        JSONWriter.bytes(.object(jsonObject))
    }

    /// Reads a message from JSON bytes (a Kafka record value).
    public init(jsonBytes: some Collection<UInt8>) throws(EventDecodingError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(jsonBytes)
        } catch {
            throw EventDecodingError(field: "$", reason: "not JSON: \(error)")
        }
        guard case .object(let object) = value else {
            throw EventDecodingError(field: "$", reason: "expected a JSON object, found \(value.typeName)")
        }
        try self.init(decoding: object)
    }

    /// Reads a message from a JSON object whose members are the fields of `Field`.
    ///
    /// `eventName` and `aggregateId` are required; a missing `messageId`,
    /// `aggregateType`, `timestamp`, `payload` or `metadata` is tolerated (empty),
    /// but a present one of the wrong type is an error.
    public init(decoding object: JSONObject) throws(EventDecodingError) {
        func string(_ field: String, required: Bool) throws(EventDecodingError) -> String? {
            switch object[field] {
            case .string(let value)?:
                if required && value.isEmpty { throw EventDecodingError(field: field, reason: "is empty") }
                return value
            case nil:
                if required { throw EventDecodingError(field: field, reason: "is missing") }
                return nil
            case let other?:
                throw EventDecodingError(field: field, reason: "expected a string, found \(other.typeName)")
            }
        }
        let eventName = try string(Field.eventName, required: true)!
        let aggregateID = try string(Field.aggregateID, required: true)!
        let messageID = try string(Field.messageID, required: false) ?? ""
        let aggregateType = try string(Field.aggregateType, required: false) ?? ""

        var sequenceNumber: Int64 = 0
        switch object[Field.sequenceNumber] {
        case .number(let text)?:
            guard let value = Int64(text), value >= 0 else {
                throw EventDecodingError(field: Field.sequenceNumber, reason: "expected a non-negative integer, found \(text)")
            }
            sequenceNumber = value
        case nil: break
        case let other?:
            throw EventDecodingError(field: Field.sequenceNumber, reason: "expected a number, found \(other.typeName)")
        }

        var timestamp = Date(timeIntervalSince1970: 0)
        if let text = try string(Field.timestamp, required: false) {
            guard let parsed = Self.parseTimestamp(text) else {
                throw EventDecodingError(field: Field.timestamp, reason: "expected an ISO-8601 time, found \"\(text)\"")
            }
            timestamp = parsed
        }

        let payload = object[Field.payload] ?? .object(JSONObject())
        guard case .object = payload else {
            throw EventDecodingError(field: Field.payload, reason: "expected an object, found \(payload.typeName)")
        }

        var metadata = MessageMetadata()
        switch object[Field.metadata] {
        case .object(let values)?: metadata = MessageMetadata(values)
        case nil, .null?: break
        case let other?:
            throw EventDecodingError(field: Field.metadata, reason: "expected an object, found \(other.typeName)")
        }

        self.init(
            eventName: eventName,
            aggregateID: aggregateID,
            aggregateType: aggregateType,
            sequenceNumber: sequenceNumber,
            payload: payload,
            metadata: metadata,
            messageID: messageID,
            timestamp: timestamp
        )
    }

    /// ISO-8601 UTC with milliseconds, e.g. `2026-11-27T21:04:05.123Z` (truncated, never rounded up).
    public static func formatTimestamp(_ date: Date) -> String {
        // Foundation's fractional-second formatting is off by up to a millisecond on Linux; do the fraction by hand.
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let (seconds, fraction) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let (wholeSeconds, millis) = fraction < 0 ? (seconds - 1, fraction + 1000) : (seconds, fraction)
        let base = Date(timeIntervalSince1970: Double(wholeSeconds)).formatted(Date.ISO8601FormatStyle())
        let digits = String(millis)
        return base.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// Parses ISO-8601 UTC (`…Z`) with or without fractional seconds, and other ISO-8601 forms Foundation reads.
    public static func parseTimestamp(_ text: String) -> Date? {
        if text.hasSuffix("Z"), let dot = text.firstIndex(of: ".") {
            let digits = text[text.index(after: dot)..<text.index(before: text.endIndex)]
            if !digits.isEmpty, digits.count <= 9, digits.allSatisfy(\.isASCII), let fraction = Int(digits),
                let whole = try? Date.ISO8601FormatStyle().parse(String(text[..<dot]) + "Z")
            {
                var scale = 1.0
                for _ in 0..<digits.count { scale *= 10 }
                return Date(timeIntervalSince1970: whole.timeIntervalSince1970 + Double(fraction) / scale)
            }
        }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}
