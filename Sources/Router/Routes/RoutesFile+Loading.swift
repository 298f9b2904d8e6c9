import CQRSCore
import Crypto
import Foundation
import JSON

/// One problem in a routes file, with where it is.
public struct RoutesFileIssue: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var position: TextPosition?
    /// JSON path of the offending value, e.g. `$.routes[1].to[0]`.
    public var path: String
    public var message: String

    /// One line: `routes.json:12:7: $.routes[1].to[0]: topic "x" is not declared in $.topics`.
    public var description: String {
        let location = position.map { "\(file):\($0.line):\($0.column)" } ?? file
        return Self.oneLine("\(location): \(path): \(message)")
    }

    /// Line breaks and other control characters from the file's strings (member names, values) are
    /// escaped, so that an issue is always one line.
    static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0.properties.isPatternWhitespace && $0 != " " }) else {
            return text
        }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.properties.generalCategory == .control || (scalar.properties.isPatternWhitespace && scalar != " "):
                out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Every problem found in a routes file; the file is refused as a whole.
public struct RoutesFileError: Error, Sendable, CustomStringConvertible {
    public var issues: [RoutesFileIssue]
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

extension RoutesFile {
    /// Reads, parses and validates a routes file.
    public static func load(path: String) throws(RoutesFileError) -> RoutesFile {
        try parse(try read(path: path), file: path)
    }

    /// The bytes of a routes file; one larger than `Limits.maximumFileBytes` is refused unread.
    public static func read(path: String) throws(RoutesFileError) -> [UInt8] {
        func failure(_ message: String) -> RoutesFileError {
            RoutesFileError(issues: [RoutesFileIssue(file: path, position: nil, path: "$", message: message)])
        }
        // Foundation's text for these is "The operation could not be completed".
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw failure("cannot read the file: no such file") }
        guard !isDirectory.boolValue else { throw failure("cannot read the file: it is a directory") }
        guard FileManager.default.isReadableFile(atPath: path) else { throw failure("cannot read the file: permission denied") }
        do {
            let attribute = try FileManager.default.attributesOfItem(atPath: path)[.size]
            let size = (attribute as? NSNumber)?.intValue ?? (attribute as? Int) ?? 0
            if size > Limits.maximumFileBytes { throw failure(tooLarge(size)) }
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            // The file may have grown between the two looks.
            if bytes.count > Limits.maximumFileBytes { throw failure(tooLarge(bytes.count)) }
            return bytes
        } catch let error as RoutesFileError {
            throw error
        } catch {
            throw failure("cannot read the file: \((error as NSError).localizedDescription)")
        }
    }

    static func tooLarge(_ size: Int) -> String {
        "the file is \(size) bytes; at most \(Limits.maximumFileBytes) are allowed"
    }

    /// Parses and validates routes-file bytes; `file` names the source in errors.
    public static func parse(_ bytes: [UInt8], file: String) throws(RoutesFileError) -> RoutesFile {
        guard bytes.count <= Limits.maximumFileBytes else {
            throw RoutesFileError(issues: [RoutesFileIssue(file: file, position: nil, path: "$", message: tooLarge(bytes.count))])
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            let offset = firstInvalidUTF8Offset(bytes)
            throw RoutesFileError(issues: [RoutesFileIssue(file: file, position: nil, path: "$", message: "the file is not valid UTF-8 (first bad byte at offset \(offset))")])
        }
        let located: LocatedJSON
        do {
            located = try JSONParser.parseLocated(bytes)
        } catch {
            throw RoutesFileError(issues: [RoutesFileIssue(file: file, position: error.position, path: error.path, message: error.reason)])
        }
        var validator = Validator(file: file, located: located)
        let result = validator.validate()
        if !validator.issues.isEmpty { throw RoutesFileError(issues: validator.issues) }
        var routes = result!
        routes.contentHash = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        return routes
    }

    private static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while case .valid(let scalar) = parser.parseScalar(from: &iterator) {
            offset += scalar.count
        }
        return offset
    }
}

private struct Validator {
    let file: String
    let located: LocatedJSON
    var issues: [RoutesFileIssue] = []

    mutating func issue(_ path: String, _ message: String) {
        issues.append(RoutesFileIssue(file: file, position: located.position(of: path), path: path, message: message))
    }

    mutating func object(_ value: JSONValue?, _ path: String, allowed: Set<String>) -> JSONObject? {
        guard let value else { return nil }
        guard case .object(let object) = value else {
            issue(path, "expected an object, found \(value.typeName)")
            return nil
        }
        for key in object.keys where !allowed.contains(key) {
            issue(JSONParser.memberPath(path, key), "unknown field \"\(key)\" (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        return object
    }

    mutating func string(_ value: JSONValue?, _ path: String) -> String? {
        guard let value else { return nil }
        guard case .string(let text) = value else {
            issue(path, "expected a string, found \(value.typeName)")
            return nil
        }
        return text
    }

    mutating func integer(_ value: JSONValue?, _ path: String, range: ClosedRange<Int64>) -> Int64? {
        guard let value else { return nil }
        guard case .number(let text) = value, let number = Int64(text) else {
            issue(path, "expected an integer, found \(value.typeName == "number" ? value.numberText! : value.typeName)")
            return nil
        }
        guard range.contains(number) else {
            issue(path, "\(number) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return number
    }

    mutating func stringArray(_ value: JSONValue?, _ path: String) -> [(String, String)]? {
        guard let value else { return nil }
        guard case .array(let elements) = value else {
            issue(path, "expected an array of strings, found \(value.typeName)")
            return nil
        }
        if elements.isEmpty { issue(path, "must not be empty") }
        var result: [(String, String)] = []
        for (offset, element) in elements.enumerated() {
            let elementPath = "\(path)[\(offset)]"
            if let text = string(element, elementPath) { result.append((text, elementPath)) }
        }
        return result
    }

    static let topicFields: Set<String> = ["partitions", "replicationFactor", "retentionMs", "cleanupPolicy", "configs"]

    mutating func topicSettings(_ object: JSONObject, _ path: String, base: TopicSettings) -> TopicSettings {
        var settings = base
        if let partitions = integer(object["partitions"], JSONParser.memberPath(path, "partitions"), range: 1...100_000) {
            settings.partitions = Int32(partitions)
        }
        if let factor = integer(object["replicationFactor"], JSONParser.memberPath(path, "replicationFactor"), range: 1...32) {
            settings.replicationFactor = Int32(factor)
        }
        if let retention = integer(object["retentionMs"], JSONParser.memberPath(path, "retentionMs"), range: -1...Int64.max) {
            settings.configs["retention.ms"] = String(retention)
        }
        let policyPath = JSONParser.memberPath(path, "cleanupPolicy")
        if let policy = string(object["cleanupPolicy"], policyPath) {
            let parts = policy.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.isEmpty || !parts.allSatisfy({ $0 == "delete" || $0 == "compact" }) {
                issue(policyPath, "\"\(policy)\" is not a cleanup policy (delete, compact, or \"compact,delete\")")
            } else {
                settings.configs["cleanup.policy"] = parts.joined(separator: ",")
            }
        }
        let configsPath = JSONParser.memberPath(path, "configs")
        if let configs = object["configs"] {
            if case .object(let entries) = configs {
                for (key, value) in entries {
                    let entryPath = JSONParser.memberPath(configsPath, key)
                    switch value {
                    case .string(let text): settings.configs[key] = text
                    case .number(let text): settings.configs[key] = text
                    case .bool(let flag): settings.configs[key] = flag ? "true" : "false"
                    default: issue(entryPath, "a topic config value must be a string, number or boolean, found \(value.typeName)")
                    }
                }
            } else {
                issue(configsPath, "expected an object of topic configs, found \(configs.typeName)")
            }
        }
        return settings
    }

    mutating func validate() -> RoutesFile? {
        guard let root = object(located.value, "$", allowed: ["$schema", "version", "defaults", "topics", "routes", "unrouted", "deadLetterTopic"]) else {
            return nil
        }

        var version = RoutesFile.supportedVersion
        if root["version"] == nil {
            issue("$", "missing required field \"version\" (this Fanout reads version \(RoutesFile.supportedVersion))")
        } else if let number = integer(root["version"], "$.version", range: Int64.min...Int64.max) {
            if number != RoutesFile.supportedVersion {
                issue("$.version", "unsupported version \(number); this Fanout reads version \(RoutesFile.supportedVersion)")
            }
            version = Int(number)
        }

        var defaults = TopicSettings(partitions: 6, replicationFactor: 1, configs: ["retention.ms": String(RoutesFile.defaultRetentionMs)])
        if let object = object(root["defaults"], "$.defaults", allowed: Self.topicFields) {
            defaults = topicSettings(object, "$.defaults", base: defaults)
        }

        var topics: [(String, TopicSettings)] = []
        if let object = object(root["topics"], "$.topics", allowed: []) {
            // Every key is a topic name; `object` reported none as unknown because we handle them here.
            issues.removeAll { $0.path.hasPrefix("$.topics") && $0.message.hasPrefix("unknown field") }
            if object.count > RoutesFile.Limits.maximumTopics {
                issue("$.topics", "\(object.count) topics are declared; at most \(RoutesFile.Limits.maximumTopics) are allowed")
            }
            for (name, value) in object {
                let path = JSONParser.memberPath("$.topics", name)
                if let reason = Self.invalidTopicName(name) { issue(path, reason) }
                guard let settingsObject = self.object(value, path, allowed: Self.topicFields) else { continue }
                topics.append((name, topicSettings(settingsObject, path, base: defaults)))
            }
        } else if root["topics"] == nil {
            issue("$", "missing required field \"topics\"")
        }
        let declared = Set(topics.map(\.0))

        var routes: [Route] = []
        var routeNames: [String: String] = [:]
        if let value = root["routes"] {
            if case .array(let elements) = value {
                if elements.count > RoutesFile.Limits.maximumRoutes {
                    issue("$.routes", "the file has \(elements.count) routes; at most \(RoutesFile.Limits.maximumRoutes) are allowed")
                }
                for (offset, element) in elements.enumerated() {
                    let path = "$.routes[\(offset)]"
                    guard let object = object(element, path, allowed: ["name", "description", "events", "where", "to", "key"]) else { continue }
                    if let route = route(object, path, declared: declared) {
                        if let earlier = routeNames[route.name] {
                            issue(JSONParser.memberPath(path, "name"), "duplicate route name \"\(route.name)\" (first used at \(earlier))")
                        } else {
                            routeNames[route.name] = path
                        }
                        routes.append(route)
                    }
                }
            } else {
                issue("$.routes", "expected an array of routes, found \(value.typeName)")
            }
        } else {
            issue("$", "missing required field \"routes\"")
        }

        var unrouted = UnroutedPolicy.count
        if let value = root["unrouted"] {
            switch value {
            case .string("count"): unrouted = .count
            case .object(let object):
                _ = self.object(value, "$.unrouted", allowed: ["topic"])
                if let topic = string(object["topic"], "$.unrouted.topic") {
                    if let reason = Self.invalidTopicName(topic) { issue("$.unrouted.topic", reason) }
                    unrouted = .topic(topic)
                } else if object["topic"] == nil {
                    issue("$.unrouted", "expected \"count\" or {\"topic\": \"name\"}")
                }
            default:
                issue("$.unrouted", "expected \"count\" or {\"topic\": \"name\"}, found \(value.typeName == "string" ? "\"\(value.stringValue!)\"" : value.typeName)")
            }
        }

        var deadLetterTopic = RoutesFile.defaultDeadLetterTopic
        if let name = string(root["deadLetterTopic"], "$.deadLetterTopic") {
            if let reason = Self.invalidTopicName(name) { issue("$.deadLetterTopic", reason) }
            deadLetterTopic = name
        }

        return RoutesFile(
            version: version,
            defaults: defaults,
            topics: topics,
            routes: routes,
            unrouted: unrouted,
            deadLetterTopic: deadLetterTopic,
            contentHash: ""
        )
    }

    mutating func route(_ object: JSONObject, _ path: String, declared: Set<String>) -> Route? {
        let namePath = JSONParser.memberPath(path, "name")
        let name = string(object["name"], namePath)
        if object["name"] == nil { issue(path, "missing required field \"name\"") }
        if let name, name.isEmpty { issue(namePath, "must not be empty") }
        if object["description"] != nil { _ = string(object["description"], JSONParser.memberPath(path, "description")) }

        var patterns: [EventNamePattern] = []
        let eventsPath = JSONParser.memberPath(path, "events")
        if let events = stringArray(object["events"], eventsPath) {
            for (text, elementPath) in events {
                do {
                    patterns.append(try EventNamePattern(text))
                } catch {
                    issue(elementPath, error.reason)
                }
            }
        } else if object["events"] == nil {
            issue(path, "missing required field \"events\"")
        }

        var condition: ContentPattern?
        if let pattern = object["where"] {
            let (compiled, patternIssues) = ContentPattern.compile(pattern, path: JSONParser.memberPath(path, "where"))
            for patternIssue in patternIssues { issue(patternIssue.path, patternIssue.message) }
            condition = compiled
        }

        var topics: [String] = []
        let toPath = JSONParser.memberPath(path, "to")
        if let targets = stringArray(object["to"], toPath) {
            for (topic, elementPath) in targets {
                if !declared.contains(topic) {
                    issue(elementPath, "topic \"\(topic)\" is not declared in $.topics (declare it, with {} for the defaults)")
                } else if !topics.contains(topic) {
                    topics.append(topic)
                }
            }
        } else if object["to"] == nil {
            issue(path, "missing required field \"to\"")
        }

        var key = KeySource.aggregateID
        let keyPath = JSONParser.memberPath(path, "key")
        if let text = string(object["key"], keyPath) {
            if let source = KeySource(text) {
                key = source
            } else {
                issue(keyPath, "\"\(text)\" is not a key source (aggregateId, messageId, eventName, aggregateType, payload.<path>, metadata.<path>)")
            }
        }
        guard let name else { return nil }
        return Route(name: name, events: patterns, topics: topics, key: key, condition: condition)
    }

    /// Kafka's rule: 1–249 characters of [a-zA-Z0-9._-], not "." or "..".
    static func invalidTopicName(_ name: String) -> String? {
        if name.isEmpty { return "a topic name must not be empty" }
        if name == "." || name == ".." { return "\"\(name)\" is not a valid topic name" }
        if name.utf8.count > 249 { return "topic name is longer than 249 characters" }
        let valid = name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-")
        }
        return valid ? nil : "\"\(name)\" is not a valid topic name (use letters, digits, '.', '_' and '-')"
    }
}
