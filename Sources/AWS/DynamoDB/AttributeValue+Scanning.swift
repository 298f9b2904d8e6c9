import Contracts
import Foundation
import JSON

/// DynamoDB typed JSON read straight from bytes with `JSONScanner`: the hot path
/// of every GetRecords page (Foundation's `JSONDecoder` managed ~6,000 records/s).
/// Same values as the `Codable` conformance, stricter about hostile input: an `N`
/// must be a number, duplicate attribute names are refused, nesting is bounded.
extension AttributeValue {
    static let typeNames = "S, N, B, BOOL, NULL, M, L, SS, NS, BS"

    /// Reads one typed value (`{"S": "x"}`, `{"M": {…}}`, …) at the scanner's position.
    public static func read(from scanner: inout JSONScanner) throws(JSONScanError) -> AttributeValue {
        try scanner.beginObject()
        guard let type = try scanner.nextMember(first: true) else {
            throw scanner.error("an AttributeValue needs exactly one of \(typeNames); found none")
        }
        let value: AttributeValue
        do throws(JSONScanError) {
            switch type {
            case "S": value = .s(try scanner.readString())
            case "N": value = .n(try readNumberText(&scanner))
            case "B": value = .b(try readBase64(&scanner))
            case "BOOL": value = .bool(try scanner.readBool())
            case "NULL":
                guard try scanner.readBool() else { throw scanner.error("NULL must be true") }
                value = .null
            case "M": value = .m(try readItem(from: &scanner))
            case "L": value = .l(try readArray(&scanner) { (scanner: inout JSONScanner) throws(JSONScanError) in try read(from: &scanner) })
            case "SS": value = .ss(try readArray(&scanner) { (scanner: inout JSONScanner) throws(JSONScanError) in try scanner.readString() })
            case "NS": value = .ns(try readArray(&scanner) { (scanner: inout JSONScanner) throws(JSONScanError) in try readNumberText(&scanner) })
            case "BS": value = .bs(try readArray(&scanner) { (scanner: inout JSONScanner) throws(JSONScanError) in try readBase64(&scanner) })
            default:
                throw scanner.error("unknown AttributeValue type \(JSONScanner.quoted(type)) (expected one of \(typeNames))")
            }
        } catch {
            throw error.inside(member: type)
        }
        if let other = try scanner.nextMember(first: false) {
            throw scanner.error("an AttributeValue needs exactly one of \(typeNames); found \(type) and \(other)")
        }
        return value
    }

    /// Reads an item (attribute name → typed value) at the scanner's position.
    public static func readItem(from scanner: inout JSONScanner) throws(JSONScanError) -> [String: AttributeValue] {
        try scanner.beginObject()
        var item = [String: AttributeValue](minimumCapacity: 8)
        var first = true
        while let name = try scanner.nextMember(first: first) {
            first = false
            let value: AttributeValue
            do throws(JSONScanError) { value = try read(from: &scanner) } catch { throw error.inside(member: name) }
            if item.updateValue(value, forKey: name) != nil {
                throw scanner.error("duplicate attribute name \(JSONScanner.quoted(name))")
            }
        }
        return item
    }

    /// An item from a whole JSON document.
    public static func item(jsonBytes: [UInt8]) throws(JSONScanError) -> [String: AttributeValue] {
        var scanner = JSONScanner(jsonBytes)
        let item = try readItem(from: &scanner)
        try scanner.expectEnd()
        return item
    }

    private static func readArray<Element>(
        _ scanner: inout JSONScanner,
        _ element: (inout JSONScanner) throws(JSONScanError) -> Element
    ) throws(JSONScanError) -> [Element] {
        try scanner.beginArray()
        var elements: [Element] = []
        while try scanner.nextElement(first: elements.isEmpty) {
            do throws(JSONScanError) { elements.append(try element(&scanner)) } catch { throw error.inside(element: elements.count) }
        }
        return elements
    }

    /// An `N`: a string holding a JSON number (DynamoDB's wire form), kept as written.
    private static func readNumberText(_ scanner: inout JSONScanner) throws(JSONScanError) -> String {
        let text = try scanner.readString()
        guard isNumber(text) else { throw scanner.error("\(JSONScanner.quoted(text)) is not a number") }
        return text
    }

    private static func readBase64(_ scanner: inout JSONScanner) throws(JSONScanError) -> [UInt8] {
        let text = try scanner.readString()
        guard let data = Data(base64Encoded: text) else { throw scanner.error("not base64") }
        return Array(data)
    }

    /// Whether `text` is a number in JSON's grammar (`-1`, `0.5`, `1E+30`; not `+1`, `.5`, `01`, `NaN`).
    static func isNumber(_ text: String) -> Bool {
        var scanner = JSONScanner(Array(text.utf8))
        guard scanner.current.map({ $0 == UInt8(ascii: "-") || $0 &- UInt8(ascii: "0") <= 9 }) == true,
            (try? scanner.readNumber()) != nil
        else { return false }
        return scanner.isAtEnd
    }
}

extension GetRecordsOutput {
    /// Decodes a GetRecords response body. Unknown members are skipped (AWS adds
    /// fields); everything read is checked, and any error names line, column and path.
    /// Keys and NewImages are kept as checked typed JSON (`StreamRecord.newImageJSON`) unless `buildingImages`
    /// (the way before that, kept for the benchmark that compares the two).
    public init(jsonBytes: [UInt8], buildingImages: Bool = false) throws(JSONScanError) {
        var scanner = JSONScanner(jsonBytes.isEmpty ? Array("{}".utf8) : jsonBytes)
        var records: [StreamRecord] = []
        var nextShardIterator: String?
        try scanner.beginObject()
        var first = true
        while let name = try scanner.nextMember(first: first) {
            first = false
            do throws(JSONScanError) {
                switch name {
                case "Records":
                    if try scanner.consumeNull() { break }
                    try scanner.beginArray()
                    while try scanner.nextElement(first: records.isEmpty) {
                        do throws(JSONScanError) { records.append(try StreamRecord(reading: &scanner, buildingImages: buildingImages)) } catch { throw error.inside(element: records.count) }
                    }
                case "NextShardIterator":
                    if try !scanner.consumeNull() { nextShardIterator = try scanner.readString() }
                default:
                    try scanner.skipValue()
                }
            } catch {
                throw error.inside(member: name)
            }
        }
        try scanner.expectEnd()
        self.init(records: records, nextShardIterator: nextShardIterator)
    }
}

extension StreamRecord {
    /// Reads one record of a GetRecords page at the scanner's position. Its Keys and NewImage are checked, not
    /// built (`newImageJSON`), unless they hold what the check leaves to `AttributeValue.readItem`.
    init(reading scanner: inout JSONScanner, buildingImages: Bool) throws(JSONScanError) {
        var eventID: String?
        var eventName: String?
        var awsRegion: String?
        var sawChange = false
        var keys: DynamoDBItem? = [:]
        var keysJSON: ItemJSON?
        var newImage: DynamoDBItem?
        var newImageJSON: ItemJSON?
        var oldImage: DynamoDBItem?
        var sequenceNumber: String?
        var created: Date?
        var sizeBytes: Int?
        try scanner.beginObject()
        var first = true
        while let name = try scanner.nextMember(first: first) {
            first = false
            do throws(JSONScanError) {
                switch name {
                case "eventID": eventID = try scanner.readString()
                case "eventName": eventName = try scanner.readString()
                case LogKey.awsRegion: if try !scanner.consumeNull() { awsRegion = try scanner.readString() }
                case "dynamodb":
                    sawChange = true
                    try scanner.beginObject()
                    var firstChange = true
                    while let field = try scanner.nextMember(first: firstChange) {
                        firstChange = false
                        do throws(JSONScanError) {
                            if try scanner.consumeNull() { continue }
                            switch field {
                            case "Keys": (keysJSON, keys) = try Self.readKeptItem(&scanner, buildingImages: buildingImages)
                            case "NewImage": (newImageJSON, newImage) = try Self.readKeptItem(&scanner, buildingImages: buildingImages)
                            case "OldImage": oldImage = try AttributeValue.readItem(from: &scanner)
                            case "SequenceNumber": sequenceNumber = try Self.readStringOrNumber(&scanner)
                            case "ApproximateCreationDateTime":
                                // Epoch seconds as a JSON number (AWS and moto); a numeric string too.
                                created = Double(try Self.readStringOrNumber(&scanner)).map(Date.init(timeIntervalSince1970:))
                            case "SizeBytes": sizeBytes = Int(try Self.readStringOrNumber(&scanner))
                            default: try scanner.skipValue()
                            }
                        } catch {
                            throw error.inside(member: field)
                        }
                    }
                default: try scanner.skipValue()
                }
            } catch {
                throw error.inside(member: name)
            }
        }
        guard let eventID else { throw scanner.error("a stream record needs an eventID") }
        guard let eventName else { throw scanner.error("a stream record needs an eventName") }
        guard sawChange else { throw scanner.error("a stream record needs a dynamodb member") }
        guard let sequenceNumber else { throw scanner.error("a stream record needs a dynamodb.SequenceNumber") }
        self.init(
            eventID: eventID, eventName: eventName, keysJSON: keysJSON, builtKeys: keys ?? [:], newImageJSON: newImageJSON, builtNewImage: newImage, oldImage: oldImage,
            sequenceNumber: sequenceNumber, approximateCreationDateTime: created, sizeBytes: sizeBytes, awsRegion: awsRegion
        )
    }

    /// An item kept as its checked typed JSON, `(json, nil)`, or built, `(nil, item)`: when the check
    /// leaves it to `readItem`, or with `buildingImages`.
    private static func readKeptItem(_ scanner: inout JSONScanner, buildingImages: Bool) throws(JSONScanError) -> (ItemJSON?, DynamoDBItem?) {
        let start = scanner.mark
        if !buildingImages, AttributeValue.skipItem(from: &scanner) {
            return (ItemJSON(bytes: scanner.bytes, start: start, end: scanner.index), nil)
        }
        scanner.reset(to: start)
        return (nil, try AttributeValue.readItem(from: &scanner))
    }

    /// A string, or a JSON number kept as its decimal text.
    private static func readStringOrNumber(_ scanner: inout JSONScanner) throws(JSONScanError) -> String {
        if try scanner.peekKind() == .number { return try scanner.readNumber() }
        return try scanner.readString()
    }
}
