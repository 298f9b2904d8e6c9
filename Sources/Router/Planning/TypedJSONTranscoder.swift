import AWS
import JSON

/// Writes DynamoDB typed JSON as plain JSON straight from its bytes, in one pass: byte for byte what
/// `JSONWriter.write(_: AttributeValue, to:)` writes for the value built from them (an M's members in the
/// order of their names, re-ordered only when they do not come in that order).
///
/// For bytes already checked (`AttributeValue.skipItem`, when a GetRecords page is read): it relies on them
/// being typed JSON and throws `Unhandled` at anything else, and at what it leaves to the built item: a B or
/// BS value, a member name with an escape or a non-ASCII byte (ordered as characters, not bytes). Every read
/// is bounds-checked (a read past the end sees 0, which no rule accepts), and so is every write (`Output`).
struct TypedJSONTranscoder {
    /// What this writer does not handle; the caller builds the item and writes that instead.
    struct Unhandled: Error {}

    /// One member of an M being written: its name in `bytes`, and where it was written in `output`.
    private struct Member {
        var name: Range<Int>
        var written: Range<Int>
    }

    enum Tag { case s, n, bool, null, m, l, ss, ns }

    /// Where the plain JSON is written: room the caller owns, filled from the start and never grown. A write
    /// that would not fit throws `Unhandled` (plain JSON is shorter than the typed JSON it is written from,
    /// so room for the typed bytes always suffices). Writes go through the pointer: no per-byte `Array` append.
    struct Output {
        let room: UnsafeMutableBufferPointer<UInt8>
        /// How many bytes are written.
        private(set) var count = 0

        init(room: UnsafeMutableBufferPointer<UInt8>) { self.room = room }

        /// The bytes written so far.
        var written: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: room[..<count]) }

        @inline(__always) mutating func append(_ byte: UInt8) throws(Unhandled) {
            guard count < room.count else { throw Unhandled() }
            room[count] = byte
            count += 1
        }

        @inline(__always) mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) throws(Unhandled) {
            guard bytes.count <= room.count - count else { throw Unhandled() }
            if let source = bytes.baseAddress { (room.baseAddress! + count).update(from: source, count: bytes.count) }
            count += bytes.count
        }

        mutating func append(_ text: StaticString) throws(Unhandled) {
            guard text.utf8CodeUnitCount <= room.count - count else { throw Unhandled() }
            let target = room.baseAddress! + count
            text.withUTF8Buffer { bytes in target.update(from: bytes.baseAddress!, count: bytes.count) }
            count += text.utf8CodeUnitCount
        }

        /// Replaces the bytes of `region` (written already) with as many from `bytes`.
        mutating func overwrite(_ region: Range<Int>, with bytes: UnsafeBufferPointer<UInt8>) {
            precondition(region.upperBound <= count && bytes.count == region.count)
            _ = UnsafeMutableBufferPointer(rebasing: room[region]).update(fromContentsOf: bytes)
        }
    }

    var cursor: JSONBytes.Cursor
    var output: Output
    /// The members of the maps being written, innermost last.
    private var members: [Member] = []

    /// `output`: the room the plain JSON is written to (its bytes stay the caller's).
    init(bytes: UnsafeBufferPointer<UInt8>, position: Int, output: UnsafeMutableBufferPointer<UInt8>) {
        cursor = JSONBytes.Cursor(bytes: bytes, position: position)
        self.output = Output(room: output)
        members.reserveCapacity(32)
    }

    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), colon = UInt8(ascii: ":"), comma = UInt8(ascii: ",")
    private static let openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}"), openBracket = UInt8(ascii: "["), closeBracket = UInt8(ascii: "]")

    var bytes: UnsafeBufferPointer<UInt8> { cursor.bytes }
    var position: Int {
        get { cursor.position }
        set { cursor.position = newValue }
    }
    @inline(__always) func at(_ index: Int) -> UInt8 { cursor.at(index) }
    @inline(__always) mutating func consume(_ byte: UInt8) -> Bool { cursor.consume(byte) }
    @inline(__always) mutating func expect(_ byte: UInt8) throws(Unhandled) { guard cursor.consume(byte) else { throw Unhandled() } }

    /// A member name and its `:`: the name's bytes (without quotes). Escapes are not handled, nor (unless
    /// `anyBytes`) bytes past ASCII.
    mutating func name(anyBytes: Bool = false) throws(Unhandled) -> Range<Int> {
        try expect(Self.quote)
        let start = position
        while true {
            position = JSONBytes.skipPlainRun(bytes, from: position)
            let byte = at(position)
            if byte == Self.quote { break }
            if byte == Self.backslash || byte == 0 || (byte >= 0x80 && !anyBytes) { throw Unhandled() }
            position += 1
        }
        let end = position
        position += 1
        try expect(Self.colon)
        return start..<end
    }

    /// Whether `range` holds exactly `text`.
    func bytes(_ range: Range<Int>, equal text: StaticString) -> Bool { JSONBytes.equal(range, text, in: bytes) }

    /// A typed value's `{` and type: the position is then at the value inside.
    mutating func tag() throws(Unhandled) -> Tag {
        try expect(Self.openBrace)
        let type = try name()
        let first = bytes[type.lowerBound]
        switch type.count {
        case 1:
            switch first {
            case UInt8(ascii: "S"): return .s
            case UInt8(ascii: "N"): return .n
            case UInt8(ascii: "M"): return .m
            case UInt8(ascii: "L"): return .l
            default: throw Unhandled()
            }
        case 2:
            guard bytes[type.lowerBound + 1] == UInt8(ascii: "S") else { throw Unhandled() }
            switch first {
            case UInt8(ascii: "S"): return .ss
            case UInt8(ascii: "N"): return .ns
            default: throw Unhandled()
            }
        default:
            if bytes(type, equal: "BOOL") { return .bool }
            if bytes(type, equal: "NULL") { return .null }
            throw Unhandled()
        }
    }

    /// One typed value (`{"S": "x"}`, `{"L": […]}`, …) as plain JSON.
    mutating func writeValue() throws(Unhandled) {
        let tag = try tag()
        switch tag {
        case .s: try writeString()
        case .n: try writeNumber()
        case .bool:
            let flag = try literal()
            try output.append(flag ? "true" : "false")
        case .null:
            guard try literal() else { throw Unhandled() }
            try output.append("null")
        case .m: try writeMap()
        case .l, .ss, .ns:
            try expect(Self.openBracket)
            try output.append(Self.openBracket)
            if !consume(Self.closeBracket) {
                while true {
                    switch tag {
                    case .ss: try writeString()
                    case .ns: try writeNumber()
                    default: try writeValue()
                    }
                    if consume(Self.comma) {
                        try output.append(Self.comma)
                    } else {
                        try expect(Self.closeBracket)
                        break
                    }
                }
            }
            try output.append(Self.closeBracket)
        }
        try expect(Self.closeBrace)
    }

    /// `true` or `false`.
    mutating func literal() throws(Unhandled) -> Bool {
        cursor.skipSpace()
        let end = position + 4
        if end <= bytes.count, bytes(position..<end, equal: "true") {
            position = end
            return true
        }
        guard end + 1 <= bytes.count, bytes(position..<(end + 1), equal: "false") else { throw Unhandled() }
        position = end + 1
        return false
    }

    /// An N's text (the digits of a checked number, which need no escaping).
    mutating func writeNumber() throws(Unhandled) {
        try output.append(UnsafeBufferPointer(rebasing: bytes[try plainString()]))
    }

    /// A string with no escapes: its bytes (without quotes); `Unhandled` at an escape.
    mutating func plainString() throws(Unhandled) -> Range<Int> {
        try expect(Self.quote)
        let start = position
        while true {
            position = JSONBytes.skipPlainRun(bytes, from: position)
            let byte = at(position)
            if byte == Self.quote { break }
            if byte == Self.backslash || byte == 0 { throw Unhandled() }
            position += 1
        }
        position += 1
        return start..<(position - 1)
    }

    /// An S with no escapes (`{"S": "text"}`, all of it): its text.
    mutating func typedString() throws(Unhandled) -> String {
        guard try tag() == .s else { throw Unhandled() }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[try plainString()]), as: UTF8.self)
        try expect(Self.closeBrace)
        return text
    }

    /// A string as `JSONWriter.writeString` writes its text: its bytes as they are when it has no escapes
    /// (checked strings hold no raw control characters), else each escape written the way `JSONWriter` writes
    /// the character it stands for.
    mutating func writeString() throws(Unhandled) {
        try expect(Self.quote)
        try output.append(Self.quote)
        var run = position
        while true {
            position = JSONBytes.skipPlainRun(bytes, from: position)
            let byte = at(position)
            if byte == Self.quote {
                try output.append(UnsafeBufferPointer(rebasing: bytes[run..<position]))
                position += 1
                try output.append(Self.quote)
                return
            }
            if byte == 0 { throw Unhandled() }
            guard byte == Self.backslash else {
                position += 1
                continue
            }
            try output.append(UnsafeBufferPointer(rebasing: bytes[run..<position]))
            let escape = at(position + 1)
            position += 2
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                try output.append(Self.backslash)
                try output.append(escape)
            case UInt8(ascii: "/"): try output.append(escape)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard at(position) == Self.backslash, at(position + 1) == UInt8(ascii: "u") else { throw Unhandled() }
                    position += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw Unhandled() }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let character = Unicode.Scalar(scalar) else { throw Unhandled() }
                try writeEscaped(character)
            default: throw Unhandled()
            }
            run = position
        }
    }

    private mutating func hex4() throws(Unhandled) -> UInt32 {
        guard let value = JSONBytes.hex4(bytes, at: position) else { throw Unhandled() }
        position += 4
        return value
    }

    /// One character of a string, as `JSONWriter.writeString` writes it.
    private mutating func writeEscaped(_ scalar: Unicode.Scalar) throws(Unhandled) {
        switch scalar.value {
        case 0x22: try output.append(#"\""#)
        case 0x5C: try output.append(#"\\"#)
        case 0x0A: try output.append(#"\n"#)
        case 0x0D: try output.append(#"\r"#)
        case 0x09: try output.append(#"\t"#)
        case 0x08: try output.append(#"\b"#)
        case 0x0C: try output.append(#"\f"#)
        case 0..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            try output.append(#"\u00"#)
            try output.append(hex[Int(scalar.value >> 4)])
            try output.append(hex[Int(scalar.value & 0x0F)])
        default:
            for byte in UTF8.encode(scalar)! { try output.append(byte) }
        }
    }

    /// An M's object (`{"name": {typed value}, …}`) as a JSON object, members in the order of their names.
    /// `findingTraceparent` (the metadata): returns the text of its member `traceparent` (an S without
    /// escapes, else `Unhandled`), if it has one.
    @discardableResult
    mutating func writeMap(findingTraceparent: Bool = false) throws(Unhandled) -> String? {
        var traceparent: String?
        try expect(Self.openBrace)
        try output.append(Self.openBrace)
        let base = members.count
        defer { members.removeSubrange(base...) }
        var ordered = true
        if !consume(Self.closeBrace) {
            while true {
                let name = try self.name()
                let start = output.count
                try output.append(Self.quote)
                try output.append(UnsafeBufferPointer(rebasing: bytes[name]))
                try output.append(Self.quote)
                try output.append(Self.colon)
                let value = position
                try writeValue()
                if findingTraceparent, bytes(name, equal: "traceparent") {
                    let end = position
                    position = value
                    guard try tag() == .s else { throw Unhandled() }
                    traceparent = String(decoding: UnsafeBufferPointer(rebasing: bytes[try plainString()]), as: UTF8.self)
                    position = end
                }
                if members.count > base, !Self.precedes(members[members.count - 1].name, name, in: bytes) { ordered = false }
                members.append(Member(name: name, written: start..<output.count))
                if consume(Self.comma) {
                    try output.append(Self.comma)
                } else {
                    try expect(Self.closeBrace)
                    break
                }
            }
        }
        if !ordered { reorder(from: base) }
        try output.append(Self.closeBrace)
        return traceparent
    }

    /// Whether name `a` sorts before name `b` (ASCII: byte order is the order of `String`s).
    private static func precedes(_ a: Range<Int>, _ b: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let common = min(a.count, b.count)
        var index = 0
        while index < common {
            let x = bytes[a.lowerBound + index], y = bytes[b.lowerBound + index]
            if x != y { return x < y }
            index += 1
        }
        return a.count < b.count
    }

    /// Re-writes the members from `base` on (written in the order they came) in the order of their names.
    /// Sorts those members in place (the caller drops them next), and copies them through scratch space on the
    /// stack (for a region of a few KB; `withUnsafeTemporaryAllocation` takes the heap for a larger one).
    private mutating func reorder(from base: Int) {
        let buffer = bytes
        let region = members[base].written.lowerBound..<members[members.count - 1].written.upperBound
        // Through the buffer: sorting the slice `members[base...]` would copy it to an array of its own.
        members.withUnsafeMutableBufferPointer { members in
            var map = UnsafeMutableBufferPointer(rebasing: members[base...])
            map.sort { Self.precedes($0.name, $1.name, in: buffer) }
        }
        let written = output.written
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: region.count) { reordered in
            var count = 0
            for index in base..<members.count {
                if index > base {
                    reordered[count] = Self.comma
                    count += 1
                }
                let member = UnsafeBufferPointer(rebasing: written[members[index].written])
                _ = UnsafeMutableBufferPointer(rebasing: reordered[count...]).initialize(fromContentsOf: member)
                count += member.count
            }
            // The same length: the same members and commas, in another order.
            output.overwrite(region, with: UnsafeBufferPointer(reordered))
        }
    }

    /// Reads past one JSON value of any kind (checked bytes: only its extent is found).
    mutating func skipValue() throws(Unhandled) {
        cursor.skipSpace()
        var depth = 0
        repeat {
            let byte = at(position)
            switch byte {
            case Self.quote:
                position += 1
                while true {
                    let inner = at(position)
                    if inner == Self.quote { break }
                    if inner == 0 { throw Unhandled() }
                    position += inner == Self.backslash ? 2 : 1
                }
                position += 1
            case Self.openBrace, Self.openBracket:
                depth += 1
                position += 1
            case Self.closeBrace, Self.closeBracket:
                guard depth > 0 else { throw Unhandled() }
                depth -= 1
                position += 1
            case 0: throw Unhandled()
            default: position += 1
            }
        } while depth > 0 || !Self.endsValue(at(position))
    }

    /// Whether `byte` ends a value at depth 0 (what can follow a value).
    private static func endsValue(_ byte: UInt8) -> Bool {
        byte == comma || byte == closeBrace || byte == closeBracket || byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 || byte == 0
    }
}
