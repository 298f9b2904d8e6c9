import AWS
import Foundation
import JSON

extension JSONValue {
    /// The plain-JSON form of a DynamoDB typed value: S → string, N → number
    /// (exact), BOOL, NULL, M → object, L → array, SS/NS/BS → arrays, B → base64 string.
    public init(_ attribute: AttributeValue) {
        switch attribute {
        case .s(let text): self = .string(text)
        case .n(let text): self = .number(text)
        case .b(let bytes): self = .string(Data(bytes).base64EncodedString())
        case .bool(let flag): self = .bool(flag)
        case .null: self = .null
        case .m(let map): self = .object(JSONObject(attributes: map))
        case .l(let list): self = .array(list.map(JSONValue.init))
        case .ss(let strings): self = .array(strings.map(JSONValue.string))
        case .ns(let numbers): self = .array(numbers.map(JSONValue.number))
        case .bs(let blobs): self = .array(blobs.map { .string(Data($0).base64EncodedString()) })
        }
    }

    /// The DynamoDB typed form of this value (objects become M, arrays L).
    public var attributeValue: AttributeValue {
        switch self {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .number(let text): .n(text)
        case .string(let text): .s(text)
        case .array(let values): .l(values.map(\.attributeValue))
        case .object(let object):
            .m(Dictionary(uniqueKeysWithValues: object.map { ($0.key, $0.value.attributeValue) }))
        }
    }
}

extension JSONObject {
    /// The plain-JSON members of an item or M value, in the order of their names
    /// (so the same item always writes the same bytes).
    init(attributes: [String: AttributeValue]) {
        var values = [String: JSONValue](minimumCapacity: attributes.count)
        for (name, value) in attributes { values[name] = JSONValue(value) }
        self.init(sortingKeysOf: values)
    }
}

extension GenericDomainEventMessage {
    /// The events table item for this event (attribute names as in `Field`).
    public var item: DynamoDBItem {
        var item: DynamoDBItem = [:]
        for (key, value) in jsonObject { item[key] = value.attributeValue }
        return item
    }

    /// The attributes an events-table item must hold as non-empty S values, besides `eventName` and `aggregateId`:
    /// Fanout publishes them, and invents none (an empty message id would defeat every idempotency filter).
    public static let requiredItemStrings = [Field.messageID, Field.aggregateType, Field.timestamp]

    /// Reads an event from an events table item.
    ///
    /// Stricter than a Kafka record's JSON: `messageId`, `aggregateType` and `timestamp` must be non-empty S
    /// values (`requiredItemStrings`).
    public init(item: DynamoDBItem) throws(EventDecodingError) {
        let object = JSONObject(attributes: item)
        // sequenceNumber is the table's numeric sort key; a string one is a foreign writer's mistake.
        if case .s? = item[Field.sequenceNumber] {
            throw EventDecodingError(field: Field.sequenceNumber, reason: "expected N (a number), found S")
        }
        for field in Self.requiredItemStrings {
            switch item[field] {
            case .s?, nil: break
            case let other?: throw EventDecodingError(field: field, reason: "expected S (a string), found \(other.typeTag)")
            }
        }
        try self.init(decoding: object)
        for field in Self.requiredItemStrings {
            switch item[field] {
            case .s(let text)? where text.isEmpty: throw EventDecodingError(field: field, reason: "is empty; a non-empty S is required")
            case nil: throw EventDecodingError(field: field, reason: "is missing; every event item needs messageId, aggregateType and timestamp")
            default: break
            }
        }
    }
}

extension AttributeValue {
    /// DynamoDB's name for the value's type: S, N, B, BOOL, NULL, M, L, SS, NS or BS.
    var typeTag: String {
        switch self {
        case .s: "S"
        case .n: "N"
        case .b: "B"
        case .bool: "BOOL"
        case .null: "NULL"
        case .m: "M"
        case .l: "L"
        case .ss: "SS"
        case .ns: "NS"
        case .bs: "BS"
        }
    }
}
