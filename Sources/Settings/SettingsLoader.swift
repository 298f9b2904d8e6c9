import Configuration
import Foundation

/// Where a setting's value came from.
public enum SettingSource: Sendable, Hashable, CustomStringConvertible {
    case flag(String)
    case environment(String)
    case file(path: String, key: String)
    case defaultValue

    public var description: String {
        switch self {
        case .flag(let name): name
        case .environment(let name): name
        case .file(let path, let key): "\(path): \(key)"
        case .defaultValue: "default"
        }
    }
}

/// A setting that could not be read: one line naming where it came from and what is wrong.
public struct SettingsError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// Line breaks and other control characters (from a file's keys or values) are escaped: one line.
    public init(_ description: String) {
        self.description = String(description.unicodeScalars.map { scalar -> String in
            switch scalar {
            case "\n": "\\n"
            case "\r": "\\r"
            case "\t": "\\t"
            case _ where scalar.properties.generalCategory == .control || (scalar.properties.isPatternWhitespace && scalar != " "):
                "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: String(scalar)
            }
        }.joined())
    }
}

/// The settings of one `fanout` invocation, each with the source that gave it.
public struct ResolvedSettings: Sendable {
    public struct Entry: Sendable {
        public var setting: Setting
        /// The value as text (a list joined with commas); nil when unset and without default.
        public var content: ConfigContent?
        public var source: SettingSource
        /// For a list: where each item came from (lists add up across sources); nil otherwise.
        public var itemSources: [SettingSource]? = nil
    }

    public var entries: [String: Entry]

    public func string(_ setting: Setting) -> String? {
        switch entries[setting.dottedKey]?.content {
        case .string(let value): value
        case .int(let value): String(value)
        case .double(let value): String(value)
        case .bool(let value): String(value)
        default: nil
        }
    }

    public func int(_ setting: Setting) -> Int? {
        if case .int(let value) = entries[setting.dottedKey]?.content { return value }
        return nil
    }

    public func double(_ setting: Setting) -> Double? {
        switch entries[setting.dottedKey]?.content {
        case .double(let value): value
        case .int(let value): Double(value)
        default: nil
        }
    }

    public func bool(_ setting: Setting) -> Bool? {
        if case .bool(let value) = entries[setting.dottedKey]?.content { return value }
        return nil
    }

    public func list(_ setting: Setting) -> [String] {
        if case .stringArray(let values) = entries[setting.dottedKey]?.content { return values }
        return []
    }

    public func source(_ setting: Setting) -> SettingSource {
        entries[setting.dottedKey]?.source ?? .defaultValue
    }

    /// A list's items, each with the source it came from (the configuration file's first, `-X` last).
    public func listWithSources(_ setting: Setting) -> [(item: String, source: SettingSource)] {
        let items = list(setting)
        let sources = entries[setting.dottedKey]?.itemSources ?? Array(repeating: source(setting), count: items.count)
        return Array(zip(items, sources))
    }

    /// One line per setting, `key = value (source)`, with every secret redacted: what `fanout config` prints.
    public func describe() -> [String] {
        Setting.all.map { setting in
            guard let entry = entries[setting.dottedKey], let content = entry.content else {
                return "\(setting.dottedKey) = (unset)"
            }
            let sources = entry.itemSources.map { sources in sources.reduce(into: [SettingSource]()) { if !$0.contains($1) { $0.append($1) } } } ?? [entry.source]
            return "\(setting.dottedKey) = \(Self.display(content, secret: setting.isSecret, listOfProperties: setting == .kafkaProperties)) (\(sources.map(\.description).joined(separator: ", ")))"
        }
    }

    /// The settings as log metadata-friendly text, secrets redacted.
    public var redactedSummary: String {
        Setting.all.compactMap { setting -> String? in
            guard let entry = entries[setting.dottedKey], let content = entry.content, entry.source != .defaultValue else { return nil }
            return "\(setting.dottedKey)=\(Self.display(content, secret: setting.isSecret, listOfProperties: setting == .kafkaProperties))"
        }.joined(separator: " ")
    }

    static func display(_ content: ConfigContent, secret: Bool, listOfProperties: Bool) -> String {
        if secret { return "<redacted>" }
        switch content {
        case .string(let value): return value
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .bool(let value): return String(value)
        case .stringArray(let values):
            // Written as FANOUT_KAFKA_PROPERTIES takes it: a comma or backslash in an item escaped with a backslash.
            return values.map { listOfProperties ? redactProperty($0) : $0 }
                .map { $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ",", with: "\\,") }
                .joined(separator: ",")
        default: return "\(content)"
        }
    }

    /// `sasl.password=s3cret` → `sasl.password=<redacted>`; other properties unchanged.
    public static func redactProperty(_ pair: String) -> String {
        guard let eq = pair.firstIndex(of: "=") else { return pair }
        let key = pair[..<eq].trimmingCharacters(in: .whitespaces)
        return Setting.secretKafkaProperties.contains(key) ? "\(key)=<redacted>" : pair
    }
}

/// Reads `fanout`'s settings through swift-configuration: flags first, then `FANOUT_*` environment
/// variables, then the JSON configuration file (`--config` or `FANOUT_CONFIG`), then the defaults.
/// Unknown `FANOUT_*` variables and unknown keys in the file are refused, as are values of the
/// wrong type, each with one line naming the variable or file and key.
public enum SettingsLoader {
    /// Environment variables that start with these are the test suite's and `fanout-demo`'s, never Fanout's settings.
    public static let reservedEnvironmentPrefixes = ["FANOUT_TEST_", "FANOUT_DEMO_"]

    /// - Parameters:
    ///   - flags: the flags given on the command line, by setting (as typed by the argument parser).
    ///   - environment: the process environment.
    ///   - settings: the settings this command takes (`run` takes all of them).
    public static func load(
        flags: [Setting: ConfigContent],
        environment: [String: String],
        configFile: String? = nil,
        settings: [Setting] = Setting.all
    ) throws -> ResolvedSettings {
        try refuseUnknownEnvironment(environment)
        let env = EnvironmentVariablesProvider(
            environmentVariables: environment.filter { $0.key.hasPrefix("FANOUT_") },
            secretsSpecifier: .specific(Set(Setting.all.filter(\.isSecret).map(\.environmentName)))
        ).prefixKeys(with: ["fanout"]).snapshot()

        let configPath = configFile ?? environment[Setting.configFile.environmentName]
        var file: (any ConfigSnapshot)?
        if let configPath {
            file = try loadFile(configPath)
        }

        var entries: [String: ResolvedSettings.Entry] = [:]
        for setting in settings {
            let key = AbsoluteConfigKey(setting.key)
            if setting.kind == .list {
                // A list adds up: the file's items, then the environment's, then the flags' (a later
                // librdkafka property with the same key wins).
                var items: [(String, SettingSource)] = []
                if let file, let configPath,
                   case .stringArray(let values)? = try lookup(file, key: key, setting: setting, describedAs: "\(configPath): \(setting.dottedKey)") {
                    items += values.map { ($0, .file(path: configPath, key: setting.dottedKey)) }
                }
                if let text = environment[setting.environmentName] {
                    items += splitList(text).map { ($0, .environment(setting.environmentName)) }
                }
                if case .stringArray(let values)? = flags[setting] {
                    items += values.map { ($0, .flag(setting.flagName)) }
                }
                if let last = items.last {
                    entries[setting.dottedKey] = .init(setting: setting, content: .stringArray(items.map { $0.0 }), source: last.1, itemSources: items.map { $0.1 })
                }
                continue
            }
            if let content = flags[setting] {
                entries[setting.dottedKey] = .init(setting: setting, content: content, source: .flag(setting.flagName))
                continue
            }
            if let content = try lookup(env, key: AbsoluteConfigKey(setting.key), setting: setting, describedAs: setting.environmentName) {
                entries[setting.dottedKey] = .init(setting: setting, content: content, source: .environment(setting.environmentName))
                continue
            }
            if let file, let configPath,
               let content = try lookup(file, key: key, setting: setting, describedAs: "\(configPath): \(setting.dottedKey)") {
                entries[setting.dottedKey] = .init(setting: setting, content: content, source: .file(path: configPath, key: setting.dottedKey))
                continue
            }
            if let defaultValue = setting.defaultValue {
                entries[setting.dottedKey] = .init(setting: setting, content: try parse(defaultValue, as: setting), source: .defaultValue)
            }
        }
        return ResolvedSettings(entries: entries)
    }

    /// A comma-separated list from the environment: `\,` is a comma inside an item, `\\` a backslash;
    /// empty items are dropped.
    public static func splitList(_ text: String) -> [String] {
        var items: [String] = []
        var current = ""
        var escaped = false
        for character in text {
            if escaped {
                if character != "," && character != "\\" { current.append("\\") }
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "," {
                items.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        if escaped { current.append("\\") }
        items.append(current)
        return items.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Converts a flag's or default's text to the setting's type.
    public static func parse(_ text: String, as setting: Setting) throws -> ConfigContent {
        switch setting.kind {
        case .string: return .string(text)
        case .list: return .stringArray([text])
        case .int:
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw SettingsError("\(setting.flagName): \"\(text)\" is not a whole number")
            }
            return .int(value)
        case .double:
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)) else {
                throw SettingsError("\(setting.flagName): \"\(text)\" is not a number")
            }
            return .double(value)
        case .bool:
            switch text.lowercased() {
            case "true", "1", "yes": return .bool(true)
            case "false", "0", "no", "": return .bool(false)
            default: throw SettingsError("\(setting.flagName): \"\(text)\" is not true or false")
            }
        }
    }

    private static func lookup(_ snapshot: any ConfigSnapshot, key: AbsoluteConfigKey, setting: Setting, describedAs name: String) throws -> ConfigContent? {
        let type: ConfigType =
            switch setting.kind {
            case .string: .string
            case .int: .int
            case .double: .double
            case .bool: .bool
            case .list: .stringArray
            }
        do {
            if let value = try snapshot.value(forKey: key, type: type).value {
                return value.content
            }
            // A double setting may be written as a whole number in a file.
            if setting.kind == .double, let value = try snapshot.value(forKey: key, type: .int).value, case .int(let int) = value.content {
                return .double(Double(int))
            }
            return nil
        } catch {
            let raw = (try? snapshot.value(forKey: key, type: .string).value).map { value in
                setting.isSecret ? "<redacted>" : "\"\(ResolvedSettings.display(value.content, secret: false, listOfProperties: false))\""
            }
            let expected =
                switch setting.kind {
                case .string: "text"
                case .int: "a whole number"
                case .double: "a number"
                case .bool: "true or false"
                case .list: "a list of text"
                }
            throw SettingsError("\(name): \(raw.map { "\($0) is not" } ?? "expected") \(expected)")
        }
    }

    private static func refuseUnknownEnvironment(_ environment: [String: String]) throws {
        let known = Set((Setting.all + [Setting.configFile]).map(\.environmentName))
        let unknown = environment.keys
            .filter { name in
                name.hasPrefix("FANOUT_") && !reservedEnvironmentPrefixes.contains { name.hasPrefix($0) } && !known.contains(name)
            }
            .sorted()
        guard !unknown.isEmpty else { return }
        let each = unknown.map { name in "\(name) is not a Fanout setting\(closest(name, in: known).map { " (did you mean \($0)?)" } ?? "")" }
        throw SettingsError("environment: \(each.joined(separator: "; ")); docs/configuration.md lists them all")
    }

    private static func loadFile(_ path: String) throws -> any ConfigSnapshot {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingsError("\(path): cannot read the configuration file (set by \(Setting.configFile.flagName) or \(Setting.configFile.environmentName))")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw SettingsError("\(path): not valid JSON: \(error.localizedDescription)")
        }
        guard let root = object as? [String: Any] else {
            throw SettingsError("\(path): the configuration file must be a JSON object of settings")
        }
        let known = Set(Setting.all.map(\.dottedKey))
        let prefixes = Set(Setting.all.flatMap { setting in (1..<setting.key.count).map { setting.key[..<$0].joined(separator: ".") } })
        // Every unknown key, in one line.
        var unknown: [String] = []
        func check(_ object: [String: Any], path keyPath: [String]) {
            for (name, value) in object.sorted(by: { $0.key < $1.key }) {
                let dotted = (keyPath + [name]).joined(separator: ".")
                if known.contains(dotted) { continue }
                if prefixes.contains(dotted), let nested = value as? [String: Any] {
                    check(nested, path: keyPath + [name])
                    continue
                }
                let suggestion = closest(dotted, in: known).map { " (did you mean \"\($0)\"?)" } ?? ""
                unknown.append("\"\(dotted)\" is not a Fanout setting\(suggestion)")
            }
        }
        check(root, path: [])
        if !unknown.isEmpty {
            throw SettingsError("\(path): \(unknown.joined(separator: "; ")); docs/configuration.md lists them all")
        }
        let bytes = [UInt8](data)
        do {
            return try JSONSnapshot(
                data: bytes.span.bytes,
                providerName: path,
                parsingOptions: .init(secretsSpecifier: .dynamic { key, _ in
                    Setting.all.contains { $0.isSecret && $0.dottedKey == key }
                })
            )
        } catch {
            throw SettingsError("\(path): \(error)")
        }
    }

    /// The known name nearest to `name` (at most a third of its letters changed), for "did you mean".
    static func closest(_ name: String, in candidates: Set<String>) -> String? {
        let scored = candidates.map { ($0, editDistance(Array(name.lowercased()), Array($0.lowercased()))) }
        guard let best = scored.min(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }), best.1 <= max(2, name.count / 3) else {
            return nil
        }
        return best.0
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, cb) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
