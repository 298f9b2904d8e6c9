import Foundation

/// One declarative rule about a value of type `Root`; it reports every violation it finds, with field paths.
public struct ValidationRule<Root>: Sendable {
    let check: @Sendable (Root, _ prefix: String) -> [Violation]

    public init(_ check: @escaping @Sendable (Root, _ prefix: String) -> [Violation]) {
        self.check = check
    }

    static func join(_ prefix: String, _ path: String) -> String {
        if path.isEmpty { return prefix }
        return prefix.isEmpty ? path : (path.hasPrefix("[") ? prefix + path : prefix + "." + path)
    }
}

@resultBuilder
public enum ValidationRuleBuilder<Root> {
    public static func buildExpression(_ rule: ValidationRule<Root>) -> [ValidationRule<Root>] { [rule] }
    public static func buildBlock(_ rules: [ValidationRule<Root>]...) -> [ValidationRule<Root>] { rules.flatMap { $0 } }
    public static func buildOptional(_ rules: [ValidationRule<Root>]?) -> [ValidationRule<Root>] { rules ?? [] }
    public static func buildEither(first rules: [ValidationRule<Root>]) -> [ValidationRule<Root>] { rules }
    public static func buildEither(second rules: [ValidationRule<Root>]) -> [ValidationRule<Root>] { rules }
    public static func buildArray(_ rules: [[ValidationRule<Root>]]) -> [ValidationRule<Root>] { rules.flatMap { $0 } }
}

/// A set of rules, checked all at once: every violation is reported, none stops the others.
///
/// ```swift
/// static let rules = Validation<PlaceOrder> {
///     .required(\.orderId, "orderId")
///     .range(\.total, "total", 0.01...1_000_000)
///     .length(\.customerId, "customerId", 1...64)
///     .pattern(\.customerId, "customerId", "^[a-z0-9-]+$")
///     .each(\.items, "items") { .required(\.sku, "sku"); .range(\.quantity, "quantity", 1...99) }
/// }
/// ```
public struct Validation<Root>: Sendable {
    let rules: [ValidationRule<Root>]

    public init(@ValidationRuleBuilder<Root> _ rules: () -> [ValidationRule<Root>]) {
        self.rules = rules()
    }

    public func violations(of value: Root, prefix: String = "") -> [Violation] {
        rules.flatMap { $0.check(value, prefix) }
    }
}

extension ValidationRule {
    /// The string is present and not blank.
    public static func required(_ field: any KeyPath<Root, String> & Sendable, _ path: String) -> Self {
        Self { root, prefix in
            root[keyPath: field].trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? [Violation(join(prefix, path), "is required")] : []
        }
    }

    /// The optional value is present.
    public static func required<Value>(_ field: any KeyPath<Root, Value?> & Sendable, _ path: String) -> Self {
        Self { root, prefix in root[keyPath: field] == nil ? [Violation(join(prefix, path), "is required")] : [] }
    }

    /// The value lies in the range.
    public static func range<Value: Comparable & Sendable>(_ field: any KeyPath<Root, Value> & Sendable, _ path: String, _ range: ClosedRange<Value>) -> Self {
        Self { root, prefix in
            let value = root[keyPath: field]
            return range.contains(value) ? [] : [Violation(join(prefix, path), "must be between \(range.lowerBound) and \(range.upperBound), was \(value)")]
        }
    }

    /// The string's length (in characters) lies in the range.
    public static func length(_ field: any KeyPath<Root, String> & Sendable, _ path: String, _ range: ClosedRange<Int>) -> Self {
        Self { root, prefix in
            let count = root[keyPath: field].count
            return range.contains(count) ? [] : [Violation(join(prefix, path), "must be \(range.lowerBound) to \(range.upperBound) characters long, was \(count)")]
        }
    }

    /// The collection's size lies in the range.
    public static func count<C: Collection & SendableMetatype>(_ field: any KeyPath<Root, C> & Sendable, _ path: String, _ range: ClosedRange<Int>) -> Self {
        Self { root, prefix in
            let count = root[keyPath: field].count
            return range.contains(count) ? [] : [Violation(join(prefix, path), "must hold \(range.lowerBound) to \(range.upperBound) items, held \(count)")]
        }
    }

    /// The whole string matches the regular expression (an empty string is left to `required`).
    public static func pattern(_ field: any KeyPath<Root, String> & Sendable, _ path: String, _ pattern: String) -> Self {
        Self { root, prefix in
            let value = root[keyPath: field]
            guard !value.isEmpty else { return [] }
            let matches = value.range(of: "^(?:\(pattern))$", options: .regularExpression) != nil
            return matches ? [] : [Violation(join(prefix, path), "\"\(value)\" does not match \(pattern)")]
        }
    }

    /// Rules for a nested value, reported under its path.
    public static func nested<Value>(_ field: any KeyPath<Root, Value> & Sendable, _ path: String, @ValidationRuleBuilder<Value> _ rules: () -> [ValidationRule<Value>]) -> Self {
        let validation = Validation<Value>(rules)
        return Self { root, prefix in validation.violations(of: root[keyPath: field], prefix: join(prefix, path)) }
    }

    /// Rules for every element of an array, reported as `path[index].field`.
    public static func each<Element>(_ field: any KeyPath<Root, [Element]> & Sendable, _ path: String, @ValidationRuleBuilder<Element> _ rules: () -> [ValidationRule<Element>]) -> Self {
        let validation = Validation<Element>(rules)
        return Self { root, prefix in
            root[keyPath: field].enumerated().flatMap { index, element in
                validation.violations(of: element, prefix: join(prefix, path) + "[\(index)]")
            }
        }
    }

    /// A rule of your own: nil when the value is valid, else the message.
    public static func custom(_ path: String, _ check: @escaping @Sendable (Root) -> String?) -> Self {
        Self { root, prefix in check(root).map { [Violation(join(prefix, path), $0)] } ?? [] }
    }
}
