import CQRSCore
import Foundation
import JSON

/// A content filter with EventBridge event-pattern semantics, compiled from a
/// route's `where`, and matched against the event as its JSON form
/// (`eventName`, `aggregateId`, `aggregateType`, `payload`, `metadata`, …).
///
/// Fields of an object must all match (AND); the matchers of one field's array
/// are alternatives (OR); `$or` takes alternatives of whole sub-patterns. A
/// field whose value in the event is an array matches when any element does.
public struct ContentPattern: Sendable, Hashable {
    /// Every test must pass.
    var tests: [FieldTest]
    /// For each `$or`, at least one alternative must match.
    var alternatives: [[ContentPattern]]

    struct FieldTest: Sendable, Hashable {
        /// Path from the event's root, e.g. ["payload", "total"]; `display` is `payload.total`.
        var path: [String]
        var matchers: [ValueMatcher]
        var display: String { path.joined(separator: ".") }
    }

    /// Whether any test looks at the top-level field `name`.
    func readsField(_ name: String) -> Bool {
        tests.contains { $0.path.first == name } || alternatives.contains { $0.contains { $0.readsField(name) } }
    }

    /// Whether the event's JSON form matches.
    public func matches(_ event: JSONValue) -> Bool {
        firstFailure(event) == nil
    }

    /// The first condition that failed, said for people; nil when the event matches.
    public func firstFailure(_ event: JSONValue) -> String? {
        for test in tests {
            let values = Self.values(at: test.path[...], in: event)
            if !test.matchers.contains(where: { $0.matches(values) }) {
                let found = values.isEmpty ? "absent" : values.map { JSONWriter.string($0) }.joined(separator: ", ")
                return "\(test.display) is \(found), not \(test.matchers.map(\.description).joined(separator: " or "))"
            }
        }
        for group in alternatives where !group.contains(where: { $0.matches(event) }) {
            let reasons = group.compactMap { $0.firstFailure(event) }
            return "no $or alternative matched (" + reasons.joined(separator: "; ") + ")"
        }
        return nil
    }

    /// The leaf values at `path`; arrays on the way and at the end are flattened (EventBridge's rule).
    static func values(at path: ArraySlice<String>, in value: JSONValue) -> [JSONValue] {
        guard let head = path.first else {
            if case .array(let elements) = value { return elements.flatMap { values(at: [], in: $0) } }
            return [value]
        }
        switch value {
        case .object(let object):
            guard let child = object[head] else { return [] }
            return values(at: path.dropFirst(), in: child)
        case .array(let elements):
            return elements.flatMap { values(at: path, in: $0) }
        default:
            return []
        }
    }
}

/// One alternative for a field's value.
enum ValueMatcher: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case number(Double, text: String)
    case bool(Bool)
    case null
    case prefix(String, ignoringCase: Bool)
    case suffix(String, ignoringCase: Bool)
    case equalsIgnoringCase(String)
    case wildcard(WildcardText)
    case anythingBut(AnythingBut)
    case numeric([NumericBound])
    case exists(Bool)
    case cidr(CIDRBlock)

    struct NumericBound: Sendable, Hashable {
        enum Operator: String, Sendable, Hashable { case less = "<", lessOrEqual = "<=", equal = "=", greaterOrEqual = ">=", greater = ">" }
        var op: Operator
        var value: Double

        func admits(_ number: Double) -> Bool {
            switch op {
            case .less: number < value
            case .lessOrEqual: number <= value
            case .equal: number == value
            case .greaterOrEqual: number >= value
            case .greater: number > value
            }
        }
    }

    enum AnythingBut: Sendable, Hashable {
        case values([ValueMatcher])
        case prefix(String)
        case suffix(String)
        case equalsIgnoringCase([String])
        case wildcard([WildcardText])
    }

    /// Whether any of the field's values satisfies this matcher (`exists` looks at presence only).
    func matches(_ values: [JSONValue]) -> Bool {
        switch self {
        case .exists(let wanted):
            return values.contains(where: Self.isLeaf) == wanted
        default:
            return values.contains { matches(single: $0) }
        }
    }

    static func isLeaf(_ value: JSONValue) -> Bool {
        switch value {
        case .object, .array: false
        default: true
        }
    }

    func matches(single value: JSONValue) -> Bool {
        switch (self, value) {
        case (.string(let expected), .string(let actual)): return expected == actual
        case (.number(let expected, _), .number(let text)): return Double(text) == expected
        case (.bool(let expected), .bool(let actual)): return expected == actual
        case (.null, .null): return true
        case (.prefix(let prefix, false), .string(let actual)): return actual.hasPrefix(prefix)
        case (.prefix(let prefix, true), .string(let actual)): return actual.lowercased().hasPrefix(prefix)
        case (.suffix(let suffix, false), .string(let actual)): return actual.hasSuffix(suffix)
        case (.suffix(let suffix, true), .string(let actual)): return actual.lowercased().hasSuffix(suffix)
        case (.equalsIgnoringCase(let expected), .string(let actual)): return actual.lowercased() == expected
        case (.wildcard(let pattern), .string(let actual)): return pattern.matches(actual)
        case (.numeric(let bounds), .number(let text)):
            guard let number = Double(text) else { return false }
            return bounds.allSatisfy { $0.admits(number) }
        case (.cidr(let block), .string(let actual)): return block.contains(actual)
        case (.anythingBut(let excluded), _):
            guard Self.isLeaf(value) else { return false }
            switch excluded {
            case .values(let matchers): return !matchers.contains { $0.matches(single: value) }
            case .prefix(let prefix):
                guard case .string(let actual) = value else { return true }
                return !actual.hasPrefix(prefix)
            case .suffix(let suffix):
                guard case .string(let actual) = value else { return true }
                return !actual.hasSuffix(suffix)
            case .equalsIgnoringCase(let values):
                guard case .string(let actual) = value else { return true }
                return !values.contains(actual.lowercased())
            case .wildcard(let patterns):
                guard case .string(let actual) = value else { return true }
                return !patterns.contains { $0.matches(actual) }
            }
        default: return false
        }
    }

    var description: String {
        switch self {
        case .string(let text): JSONWriter.string(.string(text))
        case .number(_, let text): text
        case .bool(let flag): flag ? "true" : "false"
        case .null: "null"
        case .prefix(let text, let ignoringCase): "{prefix\(ignoringCase ? " ignoring case" : ""): \"\(text)\"}"
        case .suffix(let text, let ignoringCase): "{suffix\(ignoringCase ? " ignoring case" : ""): \"\(text)\"}"
        case .equalsIgnoringCase(let text): "{equals-ignore-case: \"\(text)\"}"
        case .wildcard(let pattern): "{wildcard: \"\(pattern.text)\"}"
        case .anythingBut(let excluded):
            switch excluded {
            case .values(let values): "{anything-but: \(values.map(\.description).joined(separator: ", "))}"
            case .prefix(let text): "{anything-but prefix: \"\(text)\"}"
            case .suffix(let text): "{anything-but suffix: \"\(text)\"}"
            case .equalsIgnoringCase(let values): "{anything-but equals-ignore-case: \(values.joined(separator: ", "))}"
            case .wildcard(let patterns): "{anything-but wildcard: \(patterns.map(\.text).joined(separator: ", "))}"
            }
        case .numeric(let bounds): "{numeric: \(bounds.map { "\($0.op.rawValue) \($0.value)" }.joined(separator: " and "))}"
        case .exists(let flag): flag ? "present" : "absent"
        case .cidr(let block): "{cidr: \(block.text)}"
        }
    }
}

/// A string pattern where `*` matches any run of characters and `\*` a literal star (EventBridge wildcard).
struct WildcardText: Sendable, Hashable {
    let text: String
    /// Literal pieces between unescaped `*`s.
    let pieces: [String]

    init(_ text: String) {
        self.text = text
        var pieces: [String] = [""]
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            if character == "\\", let next = iterator.next() {
                pieces[pieces.count - 1].append(next)
            } else if character == "*" {
                pieces.append("")
            } else {
                pieces[pieces.count - 1].append(character)
            }
        }
        self.pieces = pieces
    }

    var wildcardCount: Int { pieces.count - 1 }

    func matches(_ value: String) -> Bool {
        if pieces.count == 1 { return value == pieces[0] }
        var rest = Substring(value)
        guard rest.hasPrefix(pieces[0]) else { return false }
        rest = rest.dropFirst(pieces[0].count)
        let last = pieces[pieces.count - 1]
        guard rest.count >= last.count, rest.hasSuffix(last) else { return false }
        rest = rest.dropLast(last.count)
        for piece in pieces.dropFirst().dropLast() where !piece.isEmpty {
            guard let range = rest.range(of: piece) else { return false }
            rest = rest[range.upperBound...]
        }
        return true
    }
}

/// An IPv4 or IPv6 CIDR block.
struct CIDRBlock: Sendable, Hashable {
    let text: String
    let network: [UInt8]
    let prefixLength: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let length = Int(parts[1]), let address = Self.parse(String(parts[0])) else { return nil }
        guard length >= 0, length <= address.count * 8 else { return nil }
        self.text = text
        self.network = address
        self.prefixLength = length
    }

    func contains(_ addressText: String) -> Bool {
        guard let address = Self.parse(addressText), address.count == network.count else { return false }
        var remaining = prefixLength
        for index in 0..<address.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address[index] & mask != network[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// 4 bytes for IPv4, 16 for IPv6; nil for anything else.
    static func parse(_ text: String) -> [UInt8]? {
        if text.contains(":") { return parseIPv6(text) }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !group.isEmpty, group.count <= 4, let value = UInt16(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}
