import JSON
/// An item as it came in a response: its DynamoDB typed JSON, not yet built into `AttributeValue`s.
///
/// A GetRecords page keeps each record's NewImage this way (`StreamRecord.newImageJSON`): the router
/// writes most events' Kafka values straight from these bytes, so the page's items are never built
/// as trees at all. The bytes were checked when the page was read (`AttributeValue.skipItem`), so
/// `item` reads them as `AttributeValue.readItem` would.
public struct ItemJSON: Sendable {
    /// The whole response body (shared, not copied) …
    public let bytes: [UInt8]
    /// … and where the item's object starts in it.
    public let start: JSONScanner.Mark
    /// The offsets of the item's object, `{` to `}`.
    public let range: Range<Int>

    public init(bytes: [UInt8], start: JSONScanner.Mark, end: Int) {
        self.bytes = bytes
        self.start = start
        self.range = start.offset..<end
    }

    /// A scanner at the item's `{`.
    public var scanner: JSONScanner { JSONScanner(bytes, at: start) }

    /// The item, built. Empty only if the bytes do not read as an item, which their check at reading rules out.
    public var item: DynamoDBItem {
        var scanner = self.scanner
        return (try? AttributeValue.readItem(from: &scanner)) ?? [:]
    }
}

extension AttributeValue {
    /// Reads past an item at the scanner's position, building nothing, if `readItem` would read it: true
    /// then. False (the scanner where it was) when it is not an item, and also for what this check leaves to
    /// `readItem`: B and BS values, member names with escapes or past ASCII (`String`s compare those as
    /// characters), an N with escapes, maps of more than 64 members. A caller that gets false calls
    /// `readItem`, which reads the item or words the error.
    public static func skipItem(from scanner: inout JSONScanner) -> Bool {
        let end = scanner.bytes.withUnsafeBufferPointer { buffer -> (offset: Int, lines: Int, lineStart: Int)? in
            var check = TypedJSONCheck(bytes: buffer, position: scanner.index, depth: scanner.depth, maximumDepth: scanner.maximumDepth)
            do {
                try check.item()
            } catch {
                return nil
            }
            return (check.position, check.cursor.lines, check.cursor.lineStart)
        }
        guard let end else { return false }
        scanner.skip(to: end.offset, lines: end.lines, lineStart: end.lineStart)
        return true
    }
}

/// The check behind `AttributeValue.skipItem`: one pass over the bytes, as strict as `readItem`.
private struct TypedJSONCheck {
    struct Refused: Error {}

    var cursor: JSONBytes.Cursor
    var depth: Int
    let maximumDepth: Int
    /// The member names of the maps being checked, innermost last (for duplicates).
    var names: [Range<Int>] = []

    /// Maps with more members are left to `readItem` (duplicates are looked for one by one).
    static let maximumMembers = 64

    init(bytes: UnsafeBufferPointer<UInt8>, position: Int, depth: Int, maximumDepth: Int) {
        self.cursor = JSONBytes.Cursor(bytes: bytes, position: position)
        self.depth = depth
        self.maximumDepth = maximumDepth
        names.reserveCapacity(32)
    }

    var bytes: UnsafeBufferPointer<UInt8> { cursor.bytes }
    var position: Int {
        get { cursor.position }
        set { cursor.position = newValue }
    }
    @inline(__always) func at(_ index: Int) -> UInt8 { cursor.at(index) }
    @inline(__always) mutating func skipSpace() { cursor.skipSpace() }
    @inline(__always) mutating func consume(_ byte: UInt8) -> Bool { cursor.consume(byte) }
    @inline(__always) mutating func expect(_ byte: UInt8) throws(Refused) { guard cursor.consume(byte) else { throw Refused() } }

    mutating func enter() throws(Refused) {
        depth += 1
        if depth > maximumDepth { throw Refused() }
    }

    /// `{`, entering a level.
    mutating func open(_ byte: UInt8) throws(Refused) {
        try expect(byte)
        try enter()
    }

    /// An item or an M's map: `{"name": typed value, …}`, names distinct.
    mutating func item() throws(Refused) {
        try open(UInt8(ascii: "{"))
        let base = names.count
        defer { names.removeSubrange(base...) }
        if !consume(UInt8(ascii: "}")) {
            while true {
                let name = try self.name()
                for other in names[base...] where Self.equal(other, name, in: bytes) { throw Refused() }
                guard names.count - base < Self.maximumMembers else { throw Refused() }
                names.append(name)
                try value()
                if consume(UInt8(ascii: "}")) { break }
                try expect(UInt8(ascii: ","))
            }
        }
        depth -= 1
    }

    static func equal(_ a: Range<Int>, _ b: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var index = 0
        while index < a.count {
            if bytes[a.lowerBound + index] != bytes[b.lowerBound + index] { return false }
            index += 1
        }
        return true
    }

    /// A name of printable ASCII without escapes, and its `:`.
    mutating func name() throws(Refused) -> Range<Int> {
        try expect(UInt8(ascii: "\""))
        let start = position
        while true {
            position = JSONBytes.skipPlainRun(bytes, from: position)
            let byte = at(position)
            if byte == UInt8(ascii: "\"") { break }
            guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\\") else { throw Refused() }
            position += 1
        }
        let end = position
        position += 1
        try expect(UInt8(ascii: ":"))
        return start..<end
    }

    /// A typed value: `{` one of S, N, BOOL, NULL, M, L, SS, NS and its value `}`.
    mutating func value() throws(Refused) {
        try open(UInt8(ascii: "{"))
        let type = try name()
        switch type.count {
        case 1:
            switch bytes[type.lowerBound] {
            case UInt8(ascii: "S"): try string()
            case UInt8(ascii: "N"): try number()
            case UInt8(ascii: "M"): try item()
            case UInt8(ascii: "L"): try array { (check: inout Self) throws(Refused) in try check.value() }
            default: throw Refused()
            }
        case 2:
            guard bytes[type.lowerBound + 1] == UInt8(ascii: "S") else { throw Refused() }
            switch bytes[type.lowerBound] {
            case UInt8(ascii: "S"): try array { (check: inout Self) throws(Refused) in try check.string() }
            case UInt8(ascii: "N"): try array { (check: inout Self) throws(Refused) in try check.number() }
            default: throw Refused()
            }
        case 4:
            let isBool = JSONBytes.equal(type, "BOOL", in: bytes)
            guard isBool || JSONBytes.equal(type, "NULL", in: bytes) else { throw Refused() }
            skipSpace()
            if at(position) == UInt8(ascii: "t"), at(position + 1) == UInt8(ascii: "r"), at(position + 2) == UInt8(ascii: "u"), at(position + 3) == UInt8(ascii: "e") {
                position += 4
            } else if isBool, at(position) == UInt8(ascii: "f"), at(position + 1) == UInt8(ascii: "a"), at(position + 2) == UInt8(ascii: "l"),
                at(position + 3) == UInt8(ascii: "s"), at(position + 4) == UInt8(ascii: "e")
            {
                position += 5
            } else {
                throw Refused()
            }
        default: throw Refused()
        }
        try expect(UInt8(ascii: "}"))
        depth -= 1
    }

    mutating func array(_ element: (inout Self) throws(Refused) -> Void) throws(Refused) {
        try open(UInt8(ascii: "["))
        if !consume(UInt8(ascii: "]")) {
            while true {
                try element(&self)
                if consume(UInt8(ascii: "]")) { break }
                try expect(UInt8(ascii: ","))
            }
        }
        depth -= 1
    }

    /// A string as `JSONScanner.readString` reads it: valid UTF-8, no raw control character, valid escapes
    /// (surrogates paired).
    mutating func string() throws(Refused) {
        try expect(UInt8(ascii: "\""))
        var run = position
        var ascii = true
        while true {
            position = JSONBytes.skipPlainRun(bytes, from: position)
            let byte = at(position)
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                if !ascii { try validateUTF8(run..<position) }
                if byte == UInt8(ascii: "\"") {
                    position += 1
                    return
                }
                try escape()
                run = position
                ascii = true
                continue
            }
            guard byte >= 0x20 else { throw Refused() }
            if byte >= 0x80 { ascii = false }
            position += 1
        }
    }

    func validateUTF8(_ range: Range<Int>) throws(Refused) {
        guard String(validating: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) != nil else { throw Refused() }
    }

    /// One escape, from its backslash.
    mutating func escape() throws(Refused) {
        let byte = at(position + 1)
        position += 2
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
            UInt8(ascii: "r"), UInt8(ascii: "t"):
            return
        case UInt8(ascii: "u"):
            let high = try hex4()
            if (0xD800...0xDBFF).contains(high) {
                guard at(position) == UInt8(ascii: "\\"), at(position + 1) == UInt8(ascii: "u") else { throw Refused() }
                position += 2
                guard (0xDC00...0xDFFF).contains(try hex4()) else { throw Refused() }
            } else if (0xDC00...0xDFFF).contains(high) {
                throw Refused()
            }
        default: throw Refused()
        }
    }

    mutating func hex4() throws(Refused) -> UInt32 {
        guard let value = JSONBytes.hex4(bytes, at: position) else { throw Refused() }
        position += 4
        return value
    }

    /// An N: a string holding exactly a JSON number, without escapes.
    mutating func number() throws(Refused) {
        try expect(UInt8(ascii: "\""))
        if at(position) == UInt8(ascii: "-") { position += 1 }
        if at(position) == UInt8(ascii: "0") {
            position += 1
        } else if try digits() == 0 {
            throw Refused()
        }
        if at(position) == UInt8(ascii: ".") {
            position += 1
            if try digits() == 0 { throw Refused() }
        }
        if at(position) == UInt8(ascii: "e") || at(position) == UInt8(ascii: "E") {
            position += 1
            if at(position) == UInt8(ascii: "+") || at(position) == UInt8(ascii: "-") { position += 1 }
            if try digits() == 0 { throw Refused() }
        }
        guard at(position) == UInt8(ascii: "\"") else { throw Refused() }
        position += 1
    }

    mutating func digits() throws(Refused) -> Int {
        let start = position
        while at(position) &- UInt8(ascii: "0") <= 9 { position += 1 }
        return position - start
    }
}
