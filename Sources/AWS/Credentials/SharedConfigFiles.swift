import Foundation

/// The shared `credentials` and `config` files of the AWS CLI and SDKs.
///
/// Paths: `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`) and
/// `AWS_CONFIG_FILE` (default `~/.aws/config`). In the credentials file a
/// profile is `[name]`; in the config file it is `[profile name]`, except
/// `[default]`. Keys of the credentials file win over the config file's.
struct SharedConfigFiles: Sendable {
    var credentialsPath: String?
    var configPath: String?
    /// Profile name → settings, both files merged.
    var profiles: [String: [String: String]]

    init(environment env: [String: String]) {
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 }
        func path(_ key: String, _ defaultName: String) -> String? {
            if let explicit = env[key], !explicit.isEmpty { return Self.expandTilde(explicit, home: home) }
            return home.map { "\($0)/.aws/\(defaultName)" }
        }
        credentialsPath = path("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        configPath = path("AWS_CONFIG_FILE", "config")
        var profiles: [String: [String: String]] = [:]
        if let configPath, let text = try? String(contentsOfFile: configPath, encoding: .utf8) {
            for (section, values) in Self.parse(text) {
                let name: String
                if section.hasPrefix("profile ") {
                    name = section.dropFirst("profile ".count).trimmingCharacters(in: .whitespaces)
                } else if section == "default" {
                    name = section
                } else {
                    continue  // sso-session, services, …
                }
                profiles[name, default: [:]].merge(values) { $1 }
            }
        }
        if let credentialsPath, let text = try? String(contentsOfFile: credentialsPath, encoding: .utf8) {
            for (section, values) in Self.parse(text) {
                profiles[section, default: [:]].merge(values) { $1 }
            }
        }
        self.profiles = profiles
    }

    /// The files that exist, for messages.
    var existingPaths: [String] {
        [credentialsPath, configPath].compactMap { $0 }.filter { FileManager.default.fileExists(atPath: $0) }
    }

    static func expandTilde(_ path: String, home: String?) -> String {
        guard path.hasPrefix("~/"), let home else { return path }
        return home + path.dropFirst(1)
    }

    /// INI: `[section]`, `key = value`, comments with `#` or `;` at the start of a
    /// line. Indented lines (nested `s3 =` blocks) are skipped. Keys are lowercased.
    static func parse(_ text: String) -> [(String, [String: String])] {
        var sections: [(String, [String: String])] = []
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if rawLine.first == " " || rawLine.first == "\t" { continue }
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                sections.append((name, [:]))
                continue
            }
            guard let equals = line.firstIndex(of: "="), !sections.isEmpty else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[sections.count - 1].1[key] = value
        }
        return sections
    }
}
