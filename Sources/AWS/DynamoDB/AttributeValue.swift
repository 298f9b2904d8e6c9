import Foundation

/// A DynamoDB attribute value in DynamoDB's typed JSON (`{"S": "x"}`, `{"N": "1.5"}`, …).
///
/// Lossless: numbers stay the decimal strings DynamoDB sends (never through
/// `Double`); binary values are bytes, base64 on the wire.
///
/// Not `indirect`: M and L already hold their values in a collection's heap storage, so an
/// indirect case would only add one allocation (and one release) per value of every item read.
public enum AttributeValue: Sendable, Hashable, Codable {
    case s(String)
    case n(String)
    case b([UInt8])
    case bool(Bool)
    case null
    case m([String: AttributeValue])
    case l([AttributeValue])
    case ss([String])
    case ns([String])
    case bs([[UInt8]])

    enum CodingKeys: String, CodingKey, CaseIterable {
        case s = "S", n = "N", b = "B", bool = "BOOL", null = "NULL", m = "M", l = "L"
        case ss = "SS", ns = "NS", bs = "BS"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.allKeys.count == 1, let key = container.allKeys.first else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "an AttributeValue needs exactly one of S, N, B, BOOL, NULL, M, L, SS, NS, BS; found "
                        + (container.allKeys.isEmpty ? "none" : container.allKeys.map(\.stringValue).joined(separator: ", "))
                )
            )
        }
        switch key {
        case .s: self = .s(try container.decode(String.self, forKey: .s))
        case .n: self = .n(try container.decode(String.self, forKey: .n))
        case .b: self = .b(try Self.base64(try container.decode(String.self, forKey: .b), key: key, container))
        case .bool: self = .bool(try container.decode(Bool.self, forKey: .bool))
        case .null:
            guard try container.decode(Bool.self, forKey: .null) else {
                throw DecodingError.dataCorruptedError(forKey: .null, in: container, debugDescription: "NULL must be true")
            }
            self = .null
        case .m: self = .m(try container.decode([String: AttributeValue].self, forKey: .m))
        case .l: self = .l(try container.decode([AttributeValue].self, forKey: .l))
        case .ss: self = .ss(try container.decode([String].self, forKey: .ss))
        case .ns: self = .ns(try container.decode([String].self, forKey: .ns))
        case .bs:
            self = .bs(try container.decode([String].self, forKey: .bs).map { try Self.base64($0, key: key, container) })
        }
    }

    private static func base64(
        _ text: String,
        key: CodingKeys,
        _ container: KeyedDecodingContainer<CodingKeys>
    ) throws -> [UInt8] {
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not base64")
        }
        return Array(data)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .s(let v): try container.encode(v, forKey: .s)
        case .n(let v): try container.encode(v, forKey: .n)
        case .b(let v): try container.encode(Data(v).base64EncodedString(), forKey: .b)
        case .bool(let v): try container.encode(v, forKey: .bool)
        case .null: try container.encode(true, forKey: .null)
        case .m(let v): try container.encode(v, forKey: .m)
        case .l(let v): try container.encode(v, forKey: .l)
        case .ss(let v): try container.encode(v, forKey: .ss)
        case .ns(let v): try container.encode(v, forKey: .ns)
        case .bs(let v): try container.encode(v.map { Data($0).base64EncodedString() }, forKey: .bs)
        }
    }
}

/// An item: attribute name → value.
public typealias DynamoDBItem = [String: AttributeValue]

extension AttributeValue {
    /// A number from an integer.
    public static func number(_ value: some BinaryInteger) -> AttributeValue { .n(String(value)) }

    public var stringValue: String? { if case .s(let v) = self { v } else { nil } }
    /// The decimal text of an `N`.
    public var numberText: String? { if case .n(let v) = self { v } else { nil } }
    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    public var mapValue: [String: AttributeValue]? { if case .m(let v) = self { v } else { nil } }
    public var listValue: [AttributeValue]? { if case .l(let v) = self { v } else { nil } }
    public var binaryValue: [UInt8]? { if case .b(let v) = self { v } else { nil } }
}

extension AttributeValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .s(value) }
}

extension AttributeValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}
