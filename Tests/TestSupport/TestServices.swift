import Foundation

/// Where the local servers started by `scripts/services start` listen.
///
/// Addresses come from the process environment first, then from the env file
/// that `scripts/services start` writes (`.services/env` at the package root,
/// or `$FANOUT_TEST_SERVICES_DIR/env`). A missing server is a test failure that
/// says how to start it, never a skip.
public enum TestServices {
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// `host:port` of the Kafka-protocol broker (noida-db).
    public static func kafkaBrokers() throws -> String {
        try value(
            "FANOUT_TEST_KAFKA_BROKERS",
            server: "the Kafka-protocol broker (noida-db)"
        )
    }

    /// `http://host:port` of moto_server (DynamoDB, DynamoDB Streams, Kinesis, STS).
    public static func awsEndpoint() throws -> String {
        try value("FANOUT_TEST_AWS_ENDPOINT", server: "moto_server")
    }

    /// The package root (the folder holding Package.swift).
    public static var packageRoot: URL {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url
            }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    /// A name no other test run uses, for topics, tables and groups.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    static func value(_ key: String, server: String) throws -> String {
        if let value = ProcessInfo.processInfo.environment[key], !value.isEmpty {
            return value
        }
        if let value = envFile()[key], !value.isEmpty {
            return value
        }
        throw Missing(
            description: "\(server) is not running: start it with `scripts/services start` "
                + "(or run the whole suite with `scripts/test`); \(key) is unset and \(envFilePath.path) has no such line"
        )
    }

    static var envFilePath: URL {
        if let dir = ProcessInfo.processInfo.environment["FANOUT_TEST_SERVICES_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir).appendingPathComponent("env")
        }
        return packageRoot.appendingPathComponent(".services/env")
    }

    static func envFile() -> [String: String] {
        guard let text = try? String(contentsOf: envFilePath, encoding: .utf8) else { return [:] }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            values[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return values
    }
}
