import ArgumentParser
import Configuration
import FanoutApp
import Foundation
import Settings

extension ArgumentHelp {
    /// A setting's help: its meaning, its environment variable and its default, as docs/configuration.md lists them.
    static func setting(_ setting: Setting, valueName: String? = nil) -> ArgumentHelp {
        let defaultText = setting.defaultValue.map { " (default: \($0))" } ?? ""
        return ArgumentHelp("\(setting.help) [\(setting.environmentName)]\(defaultText).", valueName: valueName)
    }
}

/// Prints one line to standard error.
func printError(_ line: String) {
    StandardStreams.writeError(line + "\n")
}

/// Runs a command body; any error becomes one `fanout: error:` line and exit status 1.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("fanout: error: \(error)")
        throw ExitCode.failure
    }
}

/// How to reach Kafka: every command that talks to it takes these, and the configuration file.
struct KafkaOptions: ParsableArguments {
    @Option(name: .long, help: .setting(.configFile, valueName: "file"))
    var config: String?

    @Option(name: .long, help: .setting(.brokers))
    var brokers: String?

    @Option(
        name: .customShort("X"), parsing: .unconditionalSingleValue,
        help: ArgumentHelp("A librdkafka property for every Kafka client, as key=value; repeatable [FANOUT_KAFKA_PROPERTIES, comma-separated].", valueName: "key=value"))
    var kafkaProperties: [String] = []

    @Option(name: .customLong("kafka-security-protocol"), help: .setting(.kafkaSecurityProtocol))
    var securityProtocol: String?

    @Option(name: .customLong("kafka-ssl-ca-location"), help: .setting(.kafkaSSLCALocation, valueName: "file"))
    var sslCALocation: String?

    @Option(name: .customLong("kafka-ssl-certificate-location"), help: .setting(.kafkaSSLCertificateLocation, valueName: "file"))
    var sslCertificateLocation: String?

    @Option(name: .customLong("kafka-ssl-key-location"), help: .setting(.kafkaSSLKeyLocation, valueName: "file"))
    var sslKeyLocation: String?

    @Option(name: .customLong("kafka-ssl-key-password"), help: .setting(.kafkaSSLKeyPassword))
    var sslKeyPassword: String?

    @Option(name: .customLong("kafka-sasl-mechanism"), help: .setting(.kafkaSASLMechanism))
    var saslMechanism: String?

    @Option(name: .customLong("kafka-sasl-username"), help: .setting(.kafkaSASLUsername))
    var saslUsername: String?

    @Option(name: .customLong("kafka-sasl-password"), help: .setting(.kafkaSASLPassword))
    var saslPassword: String?

    static let settings: [Setting] = [
        .brokers, .kafkaProperties, .kafkaSecurityProtocol, .kafkaSSLCALocation, .kafkaSSLCertificateLocation,
        .kafkaSSLKeyLocation, .kafkaSSLKeyPassword, .kafkaSASLMechanism, .kafkaSASLUsername, .kafkaSASLPassword,
    ]

    var flags: [Setting: ConfigContent] {
        var flags: [Setting: ConfigContent] = [:]
        flags[.brokers] = brokers.map(ConfigContent.string)
        if !kafkaProperties.isEmpty { flags[.kafkaProperties] = .stringArray(kafkaProperties) }
        flags[.kafkaSecurityProtocol] = securityProtocol.map(ConfigContent.string)
        flags[.kafkaSSLCALocation] = sslCALocation.map(ConfigContent.string)
        flags[.kafkaSSLCertificateLocation] = sslCertificateLocation.map(ConfigContent.string)
        flags[.kafkaSSLKeyLocation] = sslKeyLocation.map(ConfigContent.string)
        flags[.kafkaSSLKeyPassword] = sslKeyPassword.map(ConfigContent.string)
        flags[.kafkaSASLMechanism] = saslMechanism.map(ConfigContent.string)
        flags[.kafkaSASLUsername] = saslUsername.map(ConfigContent.string)
        flags[.kafkaSASLPassword] = saslPassword.map(ConfigContent.string)
        return flags
    }

    /// Flags, then `FANOUT_*`, then the configuration file, then defaults, for `settings` (plus Kafka's).
    func resolve(adding more: [Setting: ConfigContent] = [:], settings: [Setting] = []) throws -> ResolvedSettings {
        try SettingsLoader.load(
            flags: flags.merging(more) { _, new in new },
            environment: ProcessInfo.processInfo.environment,
            configFile: config,
            settings: Self.settings + settings
        )
    }
}

/// `--application`, for the commands that work on one deployment's checkpoints.
struct ApplicationOption: ParsableArguments {
    @Option(name: .long, help: .setting(.application))
    var application: String?

    var flags: [Setting: ConfigContent] {
        application.map { [.application: .string($0)] } ?? [:]
    }
}

/// `--format text|json`, for the listing commands.
struct ListFormatOption: ParsableArguments {
    @Option(name: .long, help: "text (lines for a person) or json (one JSON document).")
    var format: String = "text"

    func isJSON() throws -> Bool {
        switch format.lowercased() {
        case "text": return false
        case "json": return true
        default: throw SettingsError("--format: \"\(format)\" is not text or json")
        }
    }
}
