/// Byte-level pieces shared by the JSON readers that work on raw bytes: `JSONScanner`, the typed-JSON check
/// of GetRecords pages (`AttributeValue.skipItem`) and CQRSCore's typed-JSON transcoder.
public enum JSONBytes {
    /// The value of the four hex digits at `index` (those of a `\u` escape), or nil unless four are there.
    public static func hex4(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> UInt32? {
        guard index >= 0, index + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for byte in bytes[index..<(index + 4)] {
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }

    /// The first index from `index` on whose byte may end or interrupt a string's plain run: a `"`, a `\`, a
    /// control character (below 0x20) or a byte past ASCII, found eight bytes at a time. It stops early, at
    /// most seven bytes before the end (the caller's byte-by-byte loop reads those), never past such a byte:
    /// every byte before the index returned is a printable ASCII character other than `"` and `\`.
    @inlinable
    public static func skipPlainRun(_ bytes: UnsafeBufferPointer<UInt8>, from index: Int) -> Int {
        guard index >= 0, let base = bytes.baseAddress else { return index }
        var index = index
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
            // A byte's high bit is set in `stops` when it is past ASCII, below 0x20, `"` (0x22) or `\` (0x5C);
            // a borrow can only mark a byte above one of those, so the lowest mark is exact.
            let quotes = word ^ (ones &* 0x22), backslashes = word ^ (ones &* 0x5C)
            let stops = (word | ((word &- ones &* 0x20) & ~word) | ((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes)) & highs
            if stops != 0 { return index + stops.trailingZeroBitCount / 8 }
            index += 8
        }
        return index
    }

    /// Whether `range` of `bytes` holds exactly `text`.
    public static func equal(_ range: Range<Int>, _ text: StaticString, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { expected in
            var index = 0
            while index < range.count {
                if bytes[range.lowerBound + index] != expected[index] { return false }
                index += 1
            }
            return true
        }
    }

    /// A place in bytes of JSON, for the readers that work on raw bytes: the byte there and the moves over
    /// whitespace. Reading past the end sees 0, a byte no rule of JSON accepts, so every read is safe.
    public struct Cursor {
        public let bytes: UnsafeBufferPointer<UInt8>
        public var position: Int
        /// Newlines passed, and the offset after the last one (-1: none yet).
        public var lines = 0
        public var lineStart = -1

        @inlinable
        public init(bytes: UnsafeBufferPointer<UInt8>, position: Int) {
            self.bytes = bytes
            self.position = position
        }

        /// The byte at `index`; 0 past the end.
        @inlinable @inline(__always)
        public func at(_ index: Int) -> UInt8 { index >= 0 && index < bytes.count ? bytes[index] : 0 }

        @inlinable @inline(__always)
        public mutating func skipSpace() {
            while true {
                let byte = at(position)
                if byte == 0x20 || byte == 0x09 || byte == 0x0D {
                    position += 1
                } else if byte == 0x0A {
                    position += 1
                    lines += 1
                    lineStart = position
                } else {
                    return
                }
            }
        }

        /// Skips whitespace and consumes `byte` if it comes next.
        @inlinable @inline(__always)
        public mutating func consume(_ byte: UInt8) -> Bool {
            skipSpace()
            guard at(position) == byte else { return false }
            position += 1
            return true
        }
    }
}
