import Foundation
import JSON

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

    /// The fields content patterns match on; the timestamp (costly to format) only when asked for.
    public func matchingObject(includingTimestamp: Bool) -> JSONObject {
        var object = JSONObject()
        object[Field.messageID] = .string(messageID)
        object[Field.eventName] = .string(eventName)
        object[Field.aggregateID] = .string(aggregateID)
        object[Field.aggregateType] = .string(aggregateType)
        object[Field.sequenceNumber] = .number(String(sequenceNumber))
        if includingTimestamp { object[Field.timestamp] = .string(Self.formatTimestamp(timestamp)) }
        object[Field.payload] = payload
        object[Field.metadata] = .object(metadata.values)
        return object
    }

    /// The message as compact JSON bytes: `jsonObject` written, field by field (no object is built: this runs
    /// for every routed event).
    public func jsonBytes() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(1024)
        func member(_ name: String, first: Bool = false) {
            if !first { output.append(UInt8(ascii: ",")) }
            JSONWriter.writeString(name, to: &output)
            output.append(UInt8(ascii: ":"))
        }
        output.append(UInt8(ascii: "{"))
        member(Field.messageID, first: true)
        JSONWriter.writeString(messageID, to: &output)
        member(Field.eventName)
        JSONWriter.writeString(eventName, to: &output)
        member(Field.aggregateID)
        JSONWriter.writeString(aggregateID, to: &output)
        member(Field.aggregateType)
        JSONWriter.writeString(aggregateType, to: &output)
        member(Field.sequenceNumber)
        output.append(contentsOf: String(sequenceNumber).utf8)
        member(Field.timestamp)
        JSONWriter.writeString(Self.formatTimestamp(timestamp), to: &output)
        member(Field.payload)
        JSONWriter.write(payload, to: &output)
        member(Field.metadata)
        JSONWriter.write(.object(metadata.values), to: &output)
        output.append(UInt8(ascii: "}"))
        return output
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
        // By hand: Foundation's formatters are slow on the routing path, and off by up to a millisecond on Linux.
        let (year, month, day, secondOfDay, millis) = timestampFields(date)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(millis, 3))Z"
    }

    /// Appends the UTF-8 bytes of `formatTimestamp(date)` to `output` without making the `String` (the Kafka
    /// record value's timestamp, written for every routed event): for the years 0 to 9999 its 24 bytes are
    /// written straight, for any other through `formatTimestamp`.
    public static func appendTimestamp(_ date: Date, to output: inout [UInt8]) {
        let (year, month, day, secondOfDay, millis) = timestampFields(date)
        guard (0...9999).contains(year) else {
            output.append(contentsOf: formatTimestamp(date).utf8)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { text in
            var count = 0
            func digits(_ value: Int64, _ width: Int) {
                var rest = value
                for index in stride(from: count + width - 1, through: count, by: -1) {
                    text.initializeElement(at: index, to: UInt8(ascii: "0") + UInt8(rest % 10))
                    rest /= 10
                }
                count += width
            }
            func character(_ byte: UInt8) {
                text.initializeElement(at: count, to: byte)
                count += 1
            }
            digits(year, 4)
            character(UInt8(ascii: "-"))
            digits(month, 2)
            character(UInt8(ascii: "-"))
            digits(day, 2)
            character(UInt8(ascii: "T"))
            digits(secondOfDay / 3600, 2)
            character(UInt8(ascii: ":"))
            digits(secondOfDay / 60 % 60, 2)
            character(UInt8(ascii: ":"))
            digits(secondOfDay % 60, 2)
            character(UInt8(ascii: "."))
            digits(millis, 3)
            character(UInt8(ascii: "Z"))
            output.append(contentsOf: UnsafeBufferPointer(rebasing: text[..<count]))
        }
    }

    /// What `formatTimestamp` writes: the UTC civil date, the second of that day and the millisecond (truncated).
    private static func timestampFields(_ date: Date) -> (year: Int64, month: Int64, day: Int64, secondOfDay: Int64, millis: Int64) {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var (seconds, millis) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        if millis < 0 { (seconds, millis) = (seconds - 1, millis + 1000) }
        var (days, secondOfDay) = seconds.quotientAndRemainder(dividingBy: 86_400)
        if secondOfDay < 0 { (days, secondOfDay) = (days - 1, secondOfDay + 86_400) }
        let (year, month, day) = CivilDate.fromDays(days)
        return (year, month, day, secondOfDay, millis)
    }

    /// Parses ISO-8601 UTC (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`) by hand, and other ISO-8601 forms through Foundation.
    public static func parseTimestamp(_ text: String) -> Date? {
        if let date = CivilDate.parseUTC(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}

/// Proleptic Gregorian calendar arithmetic (Howard Hinnant's days-from-civil algorithms).
enum CivilDate {
    static func toDays(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func fromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.f…]Z` exactly; nil for anything else.
    static func parseUTC(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit <= 9 else { return nil }
                value = value * 10 + Int64(digit)
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction = 0.0
        if bytes.count > 20 {
            guard bytes[19] == UInt8(ascii: "."), bytes.count - 21 <= 9, bytes.count - 21 >= 1, let digits = number(20..<(bytes.count - 1)) else { return nil }
            var scale = 1.0
            for _ in 0..<(bytes.count - 21) { scale *= 10 }
            fraction = Double(digits) / scale
        }
        let days = toDays(year: year, month: month, day: day)
        return Date(timeIntervalSince1970: Double(days * 86_400 + hour * 3600 + minute * 60 + second) + fraction)
    }
}
