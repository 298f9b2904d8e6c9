import CQRSCore
import JSON

/// A problem in a `where` pattern, at a JSON path.
struct PatternIssue: Sendable, Hashable {
    var path: String
    var message: String
}

extension ContentPattern {
    /// Limits that keep matching time bounded for any event.
    public enum Limits {
        /// Nesting of objects and `$or`s.
        public static let maximumDepth = 10
        /// `*`s in one wildcard value.
        public static let maximumWildcards = 5
        /// Matchers in one pattern, all fields and alternatives together.
        public static let maximumMatchers = 1000
    }

    /// Compiles a `where` value; `path` names it in the issues (e.g. `$.routes[2].where`).
    static func compile(_ value: JSONValue, path: String) -> (ContentPattern?, [PatternIssue]) {
        var compiler = Compiler()
        let pattern = compiler.object(value, path: path, fieldPath: [], depth: 1)
        if compiler.matcherCount > Limits.maximumMatchers {
            compiler.issues.append(PatternIssue(path: path, message: "the pattern has \(compiler.matcherCount) matchers; at most \(Limits.maximumMatchers) are allowed"))
        }
        return compiler.issues.isEmpty ? (pattern, []) : (nil, compiler.issues)
    }
}

private struct Compiler {
    var issues: [PatternIssue] = []
    var matcherCount = 0

    mutating func issue(_ path: String, _ message: String) {
        issues.append(PatternIssue(path: path, message: message))
    }

    mutating func object(_ value: JSONValue, path: String, fieldPath: [String], depth: Int) -> ContentPattern? {
        guard case .object(let object) = value else {
            issue(path, "expected an object of fields, found \(value.typeName)")
            return nil
        }
        if depth > ContentPattern.Limits.maximumDepth {
            issue(path, "the pattern nests deeper than \(ContentPattern.Limits.maximumDepth) levels")
            return nil
        }
        if object.isEmpty {
            issue(path, "an empty pattern object matches nothing useful; remove it or add fields")
            return nil
        }
        var pattern = ContentPattern(tests: [], alternatives: [])
        for (key, member) in object {
            let memberPath = JSONParser.memberPath(path, key)
            if key == "$or" {
                guard case .array(let options) = member, options.count >= 2 else {
                    issue(memberPath, "$or takes an array of at least two pattern objects")
                    continue
                }
                var group: [ContentPattern] = []
                for (index, option) in options.enumerated() {
                    if let compiled = self.object(option, path: "\(memberPath)[\(index)]", fieldPath: fieldPath, depth: depth + 1) {
                        group.append(compiled)
                    }
                }
                pattern.alternatives.append(group)
                continue
            }
            let childPath = fieldPath + [key]
            switch member {
            case .object:
                if let nested = self.object(member, path: memberPath, fieldPath: childPath, depth: depth + 1) {
                    pattern.tests += nested.tests
                    pattern.alternatives += nested.alternatives
                }
            case .array(let elements):
                if elements.isEmpty {
                    issue(memberPath, "an empty array matches nothing; list at least one value or matcher")
                    continue
                }
                var matchers: [ValueMatcher] = []
                for (index, element) in elements.enumerated() {
                    if let matcher = self.matcher(element, path: "\(memberPath)[\(index)]") { matchers.append(matcher) }
                }
                matcherCount += matchers.count
                pattern.tests.append(ContentPattern.FieldTest(path: childPath, matchers: matchers))
            default:
                issue(memberPath, "a field's pattern must be an array of values or matchers (e.g. [\(JSONWriter.string(member))]) or an object of nested fields")
            }
        }
        return pattern
    }

    mutating func literal(_ value: JSONValue, path: String) -> ValueMatcher? {
        switch value {
        case .string(let text): return .string(text)
        case .number(let text):
            guard let number = Double(text), number.isFinite else {
                issue(path, "\(text) is not a number EventBridge patterns can compare")
                return nil
            }
            return .number(number, text: text)
        case .bool(let flag): return .bool(flag)
        case .null: return .null
        default:
            issue(path, "expected a string, number, boolean or null, found \(value.typeName)")
            return nil
        }
    }

    mutating func string(_ value: JSONValue, path: String, operator name: String) -> String? {
        guard case .string(let text) = value else {
            issue(path, "\"\(name)\" takes a string, found \(value.typeName)")
            return nil
        }
        return text
    }

    mutating func wildcard(_ value: JSONValue, path: String) -> WildcardText? {
        guard let text = string(value, path: path, operator: "wildcard") else { return nil }
        if text.contains("**") {
            issue(path, "\"\(text)\" has consecutive wildcards")
            return nil
        }
        let pattern = WildcardText(text)
        if pattern.wildcardCount > ContentPattern.Limits.maximumWildcards {
            issue(path, "\"\(text)\" has \(pattern.wildcardCount) wildcards; at most \(ContentPattern.Limits.maximumWildcards) are allowed")
            return nil
        }
        return pattern
    }

    /// `"text"` or `{"equals-ignore-case": "text"}`, for prefix and suffix.
    mutating func affix(_ value: JSONValue, path: String, operator name: String) -> (String, Bool)? {
        if case .object(let object) = value {
            guard object.count == 1, let inner = object["equals-ignore-case"] else {
                issue(path, "\"\(name)\" takes a string or {\"equals-ignore-case\": string}")
                return nil
            }
            guard let text = string(inner, path: JSONParser.memberPath(path, "equals-ignore-case"), operator: "equals-ignore-case") else { return nil }
            return (text.lowercased(), true)
        }
        guard let text = string(value, path: path, operator: name) else { return nil }
        return (text, false)
    }

    mutating func matcher(_ value: JSONValue, path: String) -> ValueMatcher? {
        guard case .object(let object) = value else { return literal(value, path: path) }
        guard object.count == 1, let (name, argument) = object.first(where: { _ in true }) else {
            issue(path, "a matcher object has exactly one operator (prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)")
            return nil
        }
        let argumentPath = JSONParser.memberPath(path, name)
        switch name {
        case "prefix":
            return affix(argument, path: argumentPath, operator: name).map { ValueMatcher.prefix($0.0, ignoringCase: $0.1) }
        case "suffix":
            return affix(argument, path: argumentPath, operator: name).map { ValueMatcher.suffix($0.0, ignoringCase: $0.1) }
        case "equals-ignore-case":
            return string(argument, path: argumentPath, operator: name).map { .equalsIgnoringCase($0.lowercased()) }
        case "wildcard":
            return wildcard(argument, path: argumentPath).map(ValueMatcher.wildcard)
        case "exists":
            guard case .bool(let flag) = argument else {
                issue(argumentPath, "\"exists\" takes true or false, found \(argument.typeName)")
                return nil
            }
            return .exists(flag)
        case "cidr":
            guard let text = string(argument, path: argumentPath, operator: name) else { return nil }
            guard let block = CIDRBlock(text) else {
                issue(argumentPath, "\"\(text)\" is not a CIDR block (e.g. 10.0.0.0/24 or 2001:db8::/32)")
                return nil
            }
            return .cidr(block)
        case "numeric":
            return numeric(argument, path: argumentPath)
        case "anything-but":
            return anythingBut(argument, path: argumentPath)
        default:
            issue(JSONParser.memberPath(path, name), "unknown matcher \"\(name)\" (prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr)")
            return nil
        }
    }

    mutating func numeric(_ value: JSONValue, path: String) -> ValueMatcher? {
        guard case .array(let items) = value, !items.isEmpty, items.count % 2 == 0, items.count <= 4 else {
            issue(path, "\"numeric\" takes [op, number] or [op, number, op, number], e.g. [\">\", 0, \"<=\", 5]")
            return nil
        }
        var bounds: [ValueMatcher.NumericBound] = []
        for index in stride(from: 0, to: items.count, by: 2) {
            guard case .string(let symbol) = items[index], let op = ValueMatcher.NumericBound.Operator(rawValue: symbol) else {
                issue("\(path)[\(index)]", "expected one of <, <=, =, >=, >, found \(JSONWriter.string(items[index]))")
                return nil
            }
            guard case .number(let text) = items[index + 1], let number = Double(text), number.isFinite else {
                issue("\(path)[\(index + 1)]", "a numeric bound must be a number, found \(JSONWriter.string(items[index + 1]))")
                return nil
            }
            bounds.append(.init(op: op, value: number))
        }
        if bounds.count == 2 {
            let lower = bounds.first { $0.op == .greater || $0.op == .greaterOrEqual }
            let upper = bounds.first { $0.op == .less || $0.op == .lessOrEqual }
            guard let lower, let upper else {
                issue(path, "a numeric range takes one lower bound (> or >=) and one upper bound (< or <=)")
                return nil
            }
            guard lower.value < upper.value else {
                issue(path, "the range is empty: the lower bound \(lower.value) is not below the upper bound \(upper.value)")
                return nil
            }
        }
        return .numeric(bounds)
    }

    mutating func anythingBut(_ value: JSONValue, path: String) -> ValueMatcher? {
        switch value {
        case .string, .number:
            return literal(value, path: path).map { .anythingBut(.values([$0])) }
        case .array(let items):
            guard !items.isEmpty else {
                issue(path, "\"anything-but\" needs at least one value")
                return nil
            }
            var matchers: [ValueMatcher] = []
            for (index, item) in items.enumerated() {
                switch item {
                case .string, .number: if let matcher = literal(item, path: "\(path)[\(index)]") { matchers.append(matcher) }
                default: issue("\(path)[\(index)]", "\"anything-but\" lists strings or numbers, found \(item.typeName)")
                }
            }
            return .anythingBut(.values(matchers))
        case .object(let object):
            guard object.count == 1, let (name, argument) = object.first(where: { _ in true }) else {
                issue(path, "\"anything-but\" takes a value, a list, or one of {prefix}, {suffix}, {equals-ignore-case}, {wildcard}")
                return nil
            }
            let argumentPath = JSONParser.memberPath(path, name)
            switch name {
            case "prefix": return string(argument, path: argumentPath, operator: name).map { .anythingBut(.prefix($0)) }
            case "suffix": return string(argument, path: argumentPath, operator: name).map { .anythingBut(.suffix($0)) }
            case "equals-ignore-case":
                let texts: [String]
                switch argument {
                case .string(let text): texts = [text]
                case .array(let items) where !items.isEmpty && items.allSatisfy({ $0.stringValue != nil }): texts = items.compactMap(\.stringValue)
                default:
                    issue(argumentPath, "takes a string or a list of strings")
                    return nil
                }
                return .anythingBut(.equalsIgnoringCase(texts.map { $0.lowercased() }))
            case "wildcard":
                let items: [JSONValue]
                if case .array(let list) = argument { items = list } else { items = [argument] }
                var patterns: [WildcardText] = []
                for (index, item) in items.enumerated() {
                    if let pattern = wildcard(item, path: items.count == 1 && argument.arrayValue == nil ? argumentPath : "\(argumentPath)[\(index)]") {
                        patterns.append(pattern)
                    }
                }
                return patterns.isEmpty ? nil : .anythingBut(.wildcard(patterns))
            default:
                issue(argumentPath, "\"anything-but\" does not take \"\(name)\" (prefix, suffix, equals-ignore-case, wildcard)")
                return nil
            }
        default:
            issue(path, "\"anything-but\" takes a string, a number, a list, or an object, found \(value.typeName)")
            return nil
        }
    }
}
