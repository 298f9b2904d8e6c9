import Foundation

/// Errors converting between `Codable` types and `JSONValue`.
public struct JSONConversionError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

extension JSONValue {
    /// Encodes any `Encodable` value to a `JSONValue` (through `JSONEncoder`).
    public init(encoding value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(value)
        do {
            self = try JSONParser.parse(Array(data))
        } catch {
            throw JSONConversionError(description: "encoded value is not valid JSON: \(error)")
        }
    }

    /// Decodes this value as `T` (through `JSONDecoder`).
    public func decode<T: Decodable>(as type: T.Type = T.self) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: Data(JSONWriter.bytes(self)))
    }
}
