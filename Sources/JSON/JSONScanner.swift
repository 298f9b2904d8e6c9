/// A malformed JSON text: where (1-based line and column, byte offset) and why.
public struct JSONScanError: Error, Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var offset: Int
    public var reason: String
    /// The JSON path of the value being read (`$.Records[3].dynamodb.NewImage.total`), when the reader tracked it.
    public var path: String?

    public init(line: Int, column: Int, offset: Int, reason: String, path: String? = nil) {
        self.line = line
        self.column = column
        self.offset = offset
        self.reason = reason
        self.path = path
    }

    public var description: String {
        "\(line):\(column)" + (path.map { " (\($0))" } ?? "") + ": \(reason)"
    }

    /// The same error, inside member `key` of an enclosing object (paths are built only on failure).
    public func inside(member key: String) -> JSONScanError {
        var copy = self
        copy.path = JSONScanner.memberPath("$", key) + (path.map { String($0.dropFirst()) } ?? "")
        return copy
    }

    /// The same error, inside element `index` of an enclosing array.
    public func inside(element index: Int) -> JSONScanError {
        var copy = self
        copy.path = "$[\(index)]" + (path.map { String($0.dropFirst()) } ?? "")
        return copy
    }
}

/// A strict RFC 8259 JSON reader over bytes, one token at a time, with no tree
/// in between: the shared lexical layer of every hand-written JSON decoder in
/// Fanout (DynamoDB typed JSON and GetRecords pages here, `JSONParser` in CQRSCore).
///
/// The input is hostile (stream records are written by anyone with table
/// access): every malformed text is an error naming line, column and reason,
/// never a crash, and nesting deeper than `maximumDepth` is refused.
public struct JSONScanner {
    /// Deeper documents are refused, so hostile input cannot exhaust the stack.
    public static let defaultMaximumDepth = 128

    public let bytes: [UInt8]
    /// The offset of the next unread byte.
    public private(set) var index: Int
    public let maximumDepth: Int
    public private(set) var depth = 0
    private var line = 1
    private var lineStart = 0

    public init(_ bytes: [UInt8], maximumDepth: Int = defaultMaximumDepth) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            index = 3
            lineStart = 3
        } else {
            index = 0
        }
    }

    /// A place in the text to come back to (`reset(to:)`): offset, depth and line.
    public struct Mark: Sendable, Hashable {
        fileprivate var index: Int
        fileprivate var depth: Int
        fileprivate var line: Int
        fileprivate var lineStart: Int

        /// The byte offset of the mark.
        public var offset: Int { index }
    }

    /// Where the scanner is now.
    public var mark: Mark { Mark(index: index, depth: depth, line: line, lineStart: lineStart) }

    /// Goes back (or on) to `mark`, taken from this scanner or from one over the same bytes.
    public mutating func reset(to mark: Mark) {
        index = mark.index
        depth = mark.depth
        line = mark.line
        lineStart = mark.lineStart
    }

    /// Moves on to `offset`, having passed `lines` newlines, the last one ending at `lineStart` (-1: none).
    package mutating func skip(to offset: Int, lines: Int, lineStart: Int) {
        index = offset
        line += lines
        if lineStart >= 0 { self.lineStart = lineStart }
    }

    /// A scanner over `bytes` positioned at `mark` (taken from a scanner over the same bytes).
    public init(_ bytes: [UInt8], at mark: Mark, maximumDepth: Int = defaultMaximumDepth) {
        self.init(bytes, maximumDepth: maximumDepth)
        reset(to: mark)
    }

    /// Line and column (1-based) of the next unread byte.
    public var position: (line: Int, column: Int) { (line, index - lineStart + 1) }

    public var isAtEnd: Bool { index >= bytes.count }

    /// The next unread byte, if any.
    public var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    public func error(_ reason: String) -> JSONScanError {
        JSONScanError(line: line, column: index - lineStart + 1, offset: index, reason: reason)
    }

    /// The next byte, for error messages: `'x'`, `byte 0x1F` or `end of file`.
    public func describeCurrent() -> String {
        guard index < bytes.count else { return "end of file" }
        let byte = bytes[index]
        if byte >= 0x20, byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }

    public mutating func skipWhitespace() {
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

    /// Skips whitespace and consumes `byte` if it comes next.
    public mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// Fails unless only whitespace is left.
    public mutating func expectEnd() throws(JSONScanError) {
        skipWhitespace()
        if index < bytes.count { throw error("unexpected \(describeCurrent()) after the end of the document") }
    }

    /// One more level of nesting; fails past `maximumDepth`.
    public mutating func enter() throws(JSONScanError) {
        depth += 1
        if depth > maximumDepth { throw error("nesting deeper than \(maximumDepth) levels") }
    }

    public mutating func leave() { depth -= 1 }

    // MARK: Objects and arrays

    /// Reads `{` (after whitespace) and enters one level.
    public mutating func beginObject() throws(JSONScanError) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else {
            throw error("unexpected \(describeCurrent()), expected an object")
        }
        try enter()
        index += 1
    }

    /// The next member name of the object being read (consuming its `:`), or nil at its `}`.
    /// `first` is true for the first call after `beginObject`.
    public mutating func nextMember(first: Bool) throws(JSONScanError) -> String? {
        skipWhitespace()
        guard index < bytes.count else { throw error("unexpected end of file, expected ',' or '}'") }
        if bytes[index] == UInt8(ascii: "}") {
            index += 1
            leave()
            return nil
        }
        if !first {
            guard bytes[index] == UInt8(ascii: ",") else { throw error("unexpected \(describeCurrent()), expected ',' or '}'") }
            index += 1
            skipWhitespace()
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            throw error("unexpected \(describeCurrent()), expected a member name in double quotes")
        }
        let key = try readString()
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
            throw error("unexpected \(describeCurrent()), expected ':' after member name \"\(key)\"")
        }
        index += 1
        skipWhitespace()
        return key
    }

    /// Reads `[` (after whitespace) and enters one level.
    public mutating func beginArray() throws(JSONScanError) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else {
            throw error("unexpected \(describeCurrent()), expected an array")
        }
        try enter()
        index += 1
    }

    /// True when another element follows (positioned at it), false at the array's `]`.
    public mutating func nextElement(first: Bool) throws(JSONScanError) -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw error("unexpected end of file, expected ',' or ']'") }
        if bytes[index] == UInt8(ascii: "]") {
            index += 1
            leave()
            return false
        }
        if !first {
            guard bytes[index] == UInt8(ascii: ",") else { throw error("unexpected \(describeCurrent()), expected ',' or ']'") }
            index += 1
            skipWhitespace()
        }
        return true
    }

    // MARK: Scalars

    /// The kind of the value that starts at the next non-whitespace byte.
    public enum Kind: Sendable { case object, array, string, number, bool, null }

    public mutating func peekKind() throws(JSONScanError) -> Kind {
        skipWhitespace()
        guard index < bytes.count else { throw error("unexpected end of file, expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        default: throw error("unexpected \(describeCurrent()), expected a value")
        }
    }

    /// `true` or `false`.
    public mutating func readBool() throws(JSONScanError) -> Bool {
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "t") {
            try expectLiteral("true")
            return true
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "f") else {
            throw error("unexpected \(describeCurrent()), expected true or false")
        }
        try expectLiteral("false")
        return false
    }

    /// Consumes `null` if it comes next.
    public mutating func consumeNull() throws(JSONScanError) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "n") else { return false }
        try expectLiteral("null")
        return true
    }

    public mutating func expectLiteral(_ literal: StaticString) throws(JSONScanError) {
        let count = literal.utf8CodeUnitCount
        let matches = literal.withUTF8Buffer { expected in
            index + count <= bytes.count && bytes[index..<(index + count)].elementsEqual(expected)
        }
        guard matches else { throw error("unexpected \(describeCurrent()), expected a value") }
        index += count
    }

    /// A number, as its exact decimal text (RFC 8259 grammar).
    public mutating func readNumber() throws(JSONScanError) -> String {
        skipWhitespace()
        let start = index
        try skipNumber()
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// Reads past a number (RFC 8259 grammar) that starts at the next byte, building nothing.
    public mutating func skipNumber() throws(JSONScanError) {
        let start = index
        guard index < bytes.count else { throw error("unexpected end of file, expected a number") }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw error("unexpected end of file in a number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if skipDigits() == 0 {
            throw error(start == index ? "unexpected \(describeCurrent()), expected a number" : "invalid number: expected a digit")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            if skipDigits() == 0 { throw error("invalid number: expected a digit after '.'") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            if skipDigits() == 0 { throw error("invalid number: expected a digit in the exponent") }
        }
    }

    private mutating func skipDigits() -> Int {
        let from = index
        while index < bytes.count, bytes[index] &- UInt8(ascii: "0") <= 9 { index += 1 }
        return index - from
    }

    /// A string, unescaped; fails on invalid UTF-8, raw control characters and bad escapes.
    public mutating func readString() throws(JSONScanError) -> String {
        let (start, stop, ascii) = try scanString()
        if stop < bytes.count, bytes[stop] == UInt8(ascii: "\"") {
            let text = bytes.withUnsafeBufferPointer { buffer -> String? in
                let slice = UnsafeBufferPointer(rebasing: buffer[start..<stop])
                return ascii ? String(decoding: slice, as: UTF8.self) : String(validating: slice, as: UTF8.self)
            }
            guard let text else { throw error("string is not valid UTF-8") }
            index += 1
            return text
        }
        return try readEscapedString(from: start)
    }

    /// Reads past a string, checking it as `readString` does; builds nothing unless it holds escapes or
    /// non-ASCII text.
    public mutating func skipString() throws(JSONScanError) {
        let (start, stop, ascii) = try scanString()
        if stop < bytes.count, bytes[stop] == UInt8(ascii: "\"") {
            if !ascii {
                let valid = bytes.withUnsafeBufferPointer { buffer in
                    String(validating: UnsafeBufferPointer(rebasing: buffer[start..<stop]), as: UTF8.self) != nil
                }
                guard valid else { throw error("string is not valid UTF-8") }
            }
            index += 1
            return
        }
        _ = try readEscapedString(from: start)
    }

    /// Consumes the opening quote and scans the run without escapes: its start, where it stopped (a quote,
    /// a backslash, a control character or the end), and whether it was all ASCII. `index` is left at the stop.
    private mutating func scanString() throws(JSONScanError) -> (start: Int, stop: Int, ascii: Bool) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            throw error("unexpected \(describeCurrent()), expected a string")
        }
        index += 1
        // The scan runs over the buffer, not `bytes[index]`, so that each byte costs one load and compare
        // (no bounds check, no store of `index`).
        let start = index
        var ascii = true
        let stop = bytes.withUnsafeBufferPointer { buffer -> Int in
            var position = start
            while position < buffer.count {
                let byte = buffer[position]
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
                if byte >= 0x80 { ascii = false }
                position += 1
            }
            return position
        }
        index = stop
        return (start, stop, ascii)
    }

    private mutating func readEscapedString(from start: Int) throws(JSONScanError) -> String {
        var scalars = String.UnicodeScalarView()
        var runStart = start
        func flush(upTo end: Int) -> Bool {
            guard runStart < end else { return true }
            guard let text = String(validating: bytes[runStart..<end], as: UTF8.self) else { return false }
            scalars.append(contentsOf: text.unicodeScalars)
            return true
        }
        while true {
            guard index < bytes.count else { throw error("unexpected end of file inside a string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                guard flush(upTo: index) else { throw error("string is not valid UTF-8") }
                index += 1
                return String(scalars)
            }
            if byte < 0x20 { throw error("control character in a string (escape it)") }
            if byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            guard flush(upTo: index) else { throw error("string is not valid UTF-8") }
            index += 1
            guard index < bytes.count else { throw error("unexpected end of file inside a string") }
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
                let high = try readHex4()
                if (0xD800...0xDBFF).contains(high) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    index += 2
                    let low = try readHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                    scalars.append(Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!)
                } else if let scalar = Unicode.Scalar(high) {
                    scalars.append(scalar)
                } else {
                    throw error("unpaired surrogate in \\u escape")
                }
            default:
                index -= 1
                throw error("invalid escape \\\(describeCurrent())")
            }
            runStart = index
        }
    }

    private mutating func readHex4() throws(JSONScanError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("unexpected end of file in a \\u escape") }
        guard let value = bytes.withUnsafeBufferPointer({ JSONBytes.hex4($0, at: index) }) else {
            throw error("invalid hex digit in a \\u escape")
        }
        index += 4
        return value
    }

    /// Reads and discards one value of any kind (checking its syntax and depth).
    public mutating func skipValue() throws(JSONScanError) {
        switch try peekKind() {
        case .object:
            try beginObject()
            var first = true
            while try nextMember(first: first) != nil {
                first = false
                try skipValue()
            }
        case .array:
            try beginArray()
            var first = true
            while try nextElement(first: first) {
                first = false
                try skipValue()
            }
        case .string: try skipString()
        case .number: try skipNumber()
        case .bool: _ = try readBool()
        case .null: try expectLiteral("null")
        }
    }

    /// `$.name` for plain identifiers, `$["a b"]` otherwise.
    public static func memberPath(_ parent: String, _ key: String) -> String {
        let isPlain = !key.isEmpty && key.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        if isPlain { return "\(parent).\(key)" }
        return "\(parent)[\(quoted(key))]"
    }

    /// `key` as a JSON string literal (for paths and messages).
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
