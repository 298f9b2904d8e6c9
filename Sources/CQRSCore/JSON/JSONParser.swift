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
/// line and column).
public struct JSONParser {
    /// Deeper documents are refused, so hostile input cannot exhaust the stack.
    public static let defaultMaximumDepth = 128

    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0
    private var depth = 0
    private let maximumDepth: Int
    private let recordPositions: Bool
    private var positions: [String: TextPosition] = [:]

    private init(bytes: [UInt8], maximumDepth: Int, recordPositions: Bool) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
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

    private var position: TextPosition { TextPosition(line: line, column: index - lineStart + 1) }

    private func fail(_ reason: String, _ path: String) -> JSONSyntaxError {
        JSONSyntaxError(position: position, path: path, reason: reason)
    }

    private mutating func parseDocument() throws(JSONSyntaxError) -> JSONValue {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3; lineStart = 3 }
        skipWhitespace()
        let value = try parseValue(path: "$")
        skipWhitespace()
        if index < bytes.count { throw fail("unexpected \(describeCurrent()) after the end of the document", "$") }
        return value
    }

    private func describeCurrent() -> String {
        guard index < bytes.count else { return "end of file" }
        let byte = bytes[index]
        if byte >= 0x20, byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0D: index += 1
            case 0x0A:
                index += 1
                line += 1
                lineStart = index
            default: return
            }
        }
    }

    private mutating func parseValue(path: String) throws(JSONSyntaxError) -> JSONValue {
        guard index < bytes.count else { throw fail("unexpected end of file, expected a value", path) }
        if recordPositions { positions[path] = position }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(path: path)
        case UInt8(ascii: "["): return try parseArray(path: path)
        case UInt8(ascii: "\""): return .string(try parseString(path: path))
        case UInt8(ascii: "t"): try expectLiteral("true", path: path); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false", path: path); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null", path: path); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber(path: path))
        default: throw fail("unexpected \(describeCurrent()), expected a value", path)
        }
    }

    private mutating func expectLiteral(_ literal: StaticString, path: String) throws(JSONSyntaxError) {
        let count = literal.utf8CodeUnitCount
        let matches = literal.withUTF8Buffer { expected in
            index + count <= bytes.count && bytes[index..<(index + count)].elementsEqual(expected)
        }
        guard matches else { throw fail("unexpected \(describeCurrent()), expected a value", path) }
        index += count
    }

    private mutating func enter(_ path: String) throws(JSONSyntaxError) {
        depth += 1
        if depth > maximumDepth { throw fail("nesting deeper than \(maximumDepth) levels", path) }
    }

    private mutating func parseObject(path: String) throws(JSONSyntaxError) -> JSONValue {
        try enter(path)
        defer { depth -= 1 }
        index += 1
        var object = JSONObject()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw fail("unexpected \(describeCurrent()), expected a member name in double quotes", path)
            }
            let key = try parseString(path: path)
            let memberPath = Self.memberPath(path, key)
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw fail("unexpected \(describeCurrent()), expected ':' after member name \"\(key)\"", memberPath)
            }
            index += 1
            skipWhitespace()
            if object[key] != nil { throw fail("duplicate member name \"\(key)\"", memberPath) }
            object[key] = try parseValue(path: memberPath)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of file, expected ',' or '}'", path) }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(object)
            }
            throw fail("unexpected \(describeCurrent()), expected ',' or '}'", path)
        }
    }

    private mutating func parseArray(path: String) throws(JSONSyntaxError) -> JSONValue {
        try enter(path)
        defer { depth -= 1 }
        index += 1
        var array: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(array)
        }
        while true {
            skipWhitespace()
            array.append(try parseValue(path: "\(path)[\(array.count)]"))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of file, expected ',' or ']'", path) }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(array)
            }
            throw fail("unexpected \(describeCurrent()), expected ',' or ']'", path)
        }
    }

    private mutating func parseNumber(path: String) throws(JSONSyntaxError) -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits(_ parser: inout JSONParser) -> Int {
            let from = parser.index
            while parser.index < parser.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(parser.bytes[parser.index]) {
                parser.index += 1
            }
            return parser.index - from
        }
        guard index < bytes.count else { throw fail("unexpected end of file in a number", path) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits(&self) == 0 {
            throw fail("invalid number: expected a digit", path)
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            if digits(&self) == 0 { throw fail("invalid number: expected a digit after '.'", path) }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            if digits(&self) == 0 { throw fail("invalid number: expected a digit in the exponent", path) }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseString(path: String) throws(JSONSyntaxError) -> String {
        index += 1
        var scalars = String.UnicodeScalarView()
        var runStart = index
        func flushRun(_ parser: JSONParser, into scalars: inout String.UnicodeScalarView, upTo end: Int) -> Bool {
            guard runStart < end else { return true }
            guard let text = String(validating: parser.bytes[runStart..<end], as: UTF8.self) else { return false }
            scalars.append(contentsOf: text.unicodeScalars)
            return true
        }
        while true {
            guard index < bytes.count else { throw fail("unexpected end of file inside a string", path) }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                guard flushRun(self, into: &scalars, upTo: index) else { throw fail("string is not valid UTF-8", path) }
                index += 1
                return String(scalars)
            }
            if byte < 0x20 { throw fail("control character in a string (escape it)", path) }
            if byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            guard flushRun(self, into: &scalars, upTo: index) else { throw fail("string is not valid UTF-8", path) }
            index += 1
            guard index < bytes.count else { throw fail("unexpected end of file inside a string", path) }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                let high = try parseHex4(path: path)
                if (0xD800...0xDBFF).contains(high) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in \\u escape", path)
                    }
                    index += 2
                    let low = try parseHex4(path: path)
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate in \\u escape", path) }
                    let value = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    scalars.append(Unicode.Scalar(value)!)
                } else if let scalar = Unicode.Scalar(high) {
                    scalars.append(scalar)
                } else {
                    throw fail("unpaired surrogate in \\u escape", path)
                }
            default:
                index -= 1
                throw fail("invalid escape \\\(describeCurrent())", path)
            }
            runStart = index
        }
    }

    private mutating func parseHex4(path: String) throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("unexpected end of file in a \\u escape", path) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in a \\u escape", path)
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// `$.name` for plain identifiers, `$["a b"]` otherwise.
    public static func memberPath(_ parent: String, _ key: String) -> String {
        let isPlain = !key.isEmpty && key.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        if isPlain { return "\(parent).\(key)" }
        var escaped = ""
        JSONWriter.writeString(key, to: &escaped)
        return "\(parent)[\(escaped)]"
    }
}
