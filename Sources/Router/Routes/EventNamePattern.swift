/// An event-name pattern: an exact name, or a name with `*` wildcards
/// (`Order*`, `*Cancelled`, `Order*Item*`, `*`). `*` matches any run of
/// characters, including none. Matching is case-sensitive.
public struct EventNamePattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    /// The literal pieces between wildcards; a single piece means no wildcard.
    let pieces: [String]

    public var isExact: Bool { pieces.count == 1 }
    public var description: String { text }

    /// Fails with a reason for an empty pattern or consecutive wildcards.
    public init(_ text: String) throws(PatternError) {
        if text.isEmpty { throw PatternError(reason: "an event-name pattern must not be empty") }
        if text.contains("**") {
            throw PatternError(reason: "\"\(text)\" has consecutive wildcards; one '*' already matches any run of characters")
        }
        if text.utf8.count > RoutesFile.Limits.maximumEventNamePatternBytes {
            throw PatternError(reason: "an event-name pattern of \(text.utf8.count) bytes is longer than the \(RoutesFile.Limits.maximumEventNamePatternBytes) allowed")
        }
        let wildcards = text.utf8.count(where: { $0 == UInt8(ascii: "*") })
        if wildcards > RoutesFile.Limits.maximumEventNameWildcards {
            throw PatternError(reason: "\"\(text)\" has \(wildcards) wildcards; at most \(RoutesFile.Limits.maximumEventNameWildcards) are allowed, so that matching stays fast")
        }
        self.text = text
        self.pieces = text.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
    }

    public struct PatternError: Error, Sendable, Hashable {
        public var reason: String
    }

    /// Whether `name` matches this pattern.
    public func matches(_ name: String) -> Bool {
        if pieces.count == 1 { return name == pieces[0] }
        var utf8 = Substring(name).utf8
        let first = pieces[0].utf8
        guard utf8.starts(with: first) else { return false }
        utf8 = utf8.dropFirst(first.count)
        let last = pieces[pieces.count - 1].utf8
        guard utf8.count >= last.count, utf8.suffix(last.count).elementsEqual(last) else { return false }
        utf8 = utf8.dropLast(last.count)
        // Middle pieces: leftmost match of each in order is optimal for '*' globs.
        for piece in pieces.dropFirst().dropLast() where !piece.isEmpty {
            guard let range = Self.firstRange(of: piece.utf8, in: utf8) else { return false }
            utf8 = utf8[range.upperBound...]
        }
        return true
    }

    private static func firstRange(of needle: String.UTF8View, in haystack: Substring.UTF8View) -> Range<Substring.UTF8View.Index>? {
        var start = haystack.startIndex
        while haystack.distance(from: start, to: haystack.endIndex) >= needle.count {
            let end = haystack.index(start, offsetBy: needle.count)
            if haystack[start..<end].elementsEqual(needle) { return start..<end }
            start = haystack.index(after: start)
        }
        return nil
    }
}
