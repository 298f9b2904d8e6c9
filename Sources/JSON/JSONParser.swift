
/// A position in a text file, 1-based.
public struct TextPosition: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    public var description: String { "\(line):\(column)" }
}

/// A JSON syntax error, with where it happened.
public struct JSONSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var position: TextPosition
    /// The JSON path of the value being read when the error occurred, e.g. `$.routes[1].to`.
    public var path: String
    public var reason: String
    public var description: String { "\(position) (\(path)): \(reason)" }
}

/// The result of parsing a document with positions: every value's JSON path
/// (`$`, `$.routes[0].name`, …) mapped to where the value starts.
public struct LocatedJSON: Sendable {
    public var value: JSONValue
    public var positions: [String: TextPosition]

    /// The position of the value at `path`, or of its nearest ancestor that has one.
    public func position(of path: String) -> TextPosition? {
        var path = path
        while true {
            if let position = positions[path] { return position }
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            path = String(path[..<cut])
        }
    }
}

/// A small, strict RFC 8259 JSON parser that keeps numbers as written and,
/// on request, the position of every value (for error messages that name a
/// line and column). The lexical work is `JSONScanner`'s (module AWS), shared
/// with the DynamoDB typed-JSON decoders.
public struct JSONParser {
    /// Deeper documents are refused, so hostile input cannot exhaust the stack.
    public static let defaultMaximumDepth = JSONScanner.defaultMaximumDepth

    private var scanner: JSONScanner
    private let recordPositions: Bool
    private var positions: [String: TextPosition] = [:]

    private init(bytes: [UInt8], maximumDepth: Int, recordPositions: Bool) {
        self.scanner = JSONScanner(bytes, maximumDepth: maximumDepth)
        self.recordPositions = recordPositions
    }

    public static func parse(_ bytes: some Collection<UInt8>, maximumDepth: Int = defaultMaximumDepth) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes: Array(bytes), maximumDepth: maximumDepth, recordPositions: false)
        return try parser.parseDocument()
    }

    public static func parse(_ text: String, maximumDepth: Int = defaultMaximumDepth) throws(JSONSyntaxError) -> JSONValue {
        try parse(Array(text.utf8), maximumDepth: maximumDepth)
    }

    public static func parseLocated(_ bytes: some Collection<UInt8>, maximumDepth: Int = defaultMaximumDepth) throws(JSONSyntaxError) -> LocatedJSON {
        var parser = JSONParser(bytes: Array(bytes), maximumDepth: maximumDepth, recordPositions: true)
        let value = try parser.parseDocument()
        return LocatedJSON(value: value, positions: parser.positions)
    }

    private var position: TextPosition {
        let (line, column) = scanner.position
        return TextPosition(line: line, column: column)
    }

    private static func syntaxError(_ error: JSONScanError, _ path: String) -> JSONSyntaxError {
        JSONSyntaxError(position: TextPosition(line: error.line, column: error.column), path: path, reason: error.reason)
    }

    private mutating func parseDocument() throws(JSONSyntaxError) -> JSONValue {
        let value = try parseValue(path: "$")
        do { try scanner.expectEnd() } catch { throw Self.syntaxError(error, "$") }
        return value
    }

    private mutating func parseValue(path: String) throws(JSONSyntaxError) -> JSONValue {
        do {
            let kind = try scanner.peekKind()
            if recordPositions { positions[path] = position }
            switch kind {
            case .object: return try parseObject(path: path)
            case .array: return try parseArray(path: path)
            case .string: return .string(try scanner.readString())
            case .number: return .number(try scanner.readNumber())
            case .bool: return .bool(try scanner.readBool())
            case .null:
                try scanner.expectLiteral("null")
                return .null
            }
        } catch let error as JSONSyntaxError {
            throw error
        } catch let error as JSONScanError {
            throw Self.syntaxError(error, path)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    private mutating func parseObject(path: String) throws -> JSONValue {
        try scanner.beginObject()
        var object = JSONObject()
        var first = true
        while let key = try nextMember(first: first, path: path) {
            first = false
            let memberPath = Self.memberPath(path, key)
            if object[key] != nil { throw JSONSyntaxError(position: position, path: memberPath, reason: "duplicate member name \"\(key)\"") }
            object[key] = try parseValue(path: memberPath)
        }
        return .object(object)
    }

    private mutating func nextMember(first: Bool, path: String) throws(JSONSyntaxError) -> String? {
        do { return try scanner.nextMember(first: first) } catch { throw Self.syntaxError(error, path) }
    }

    private mutating func parseArray(path: String) throws -> JSONValue {
        try scanner.beginArray()
        var array: [JSONValue] = []
        var first = true
        while try nextElement(first: first, path: path) {
            first = false
            array.append(try parseValue(path: "\(path)[\(array.count)]"))
        }
        return .array(array)
    }

    private mutating func nextElement(first: Bool, path: String) throws(JSONSyntaxError) -> Bool {
        do { return try scanner.nextElement(first: first) } catch { throw Self.syntaxError(error, path) }
    }

    /// `$.name` for plain identifiers, `$["a b"]` otherwise.
    public static func memberPath(_ parent: String, _ key: String) -> String {
        JSONScanner.memberPath(parent, key)
    }
}
