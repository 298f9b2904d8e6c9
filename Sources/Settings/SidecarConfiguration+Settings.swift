import AWS
import Delivery
import Foundation
import Kafka
import Logging
import StreamReader

extension ResolvedSettings {
    /// Kafka client properties from `-X` pairs and the first-class security settings (which win
    /// over `-X`). Every value is checked for form here; librdkafka checks the rest at start-up.
    public func kafkaProperties() throws -> [String: String] {
        var properties: [String: String] = [:]
        for (pair, source) in listWithSources(.kafkaProperties) {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw SettingsError("\(source): \"\(ResolvedSettings.redactProperty(pair))\" is not key=value")
            }
            properties[String(pair[..<eq]).trimmingCharacters(in: .whitespaces)] = String(pair[pair.index(after: eq)...])
        }
        if let text = string(.kafkaSecurityProtocol) {
            let value = text.lowercased()
            guard ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(value) else {
                throw SettingsError("\(source(.kafkaSecurityProtocol)): \"\(text)\" is not plaintext, ssl, sasl_plaintext or sasl_ssl")
            }
            if source(.kafkaSecurityProtocol) != .defaultValue || properties["security.protocol"] == nil {
                properties["security.protocol"] = value
            }
        }
        for (setting, property) in [
            (Setting.kafkaSSLCALocation, "ssl.ca.location"), (.kafkaSSLCertificateLocation, "ssl.certificate.location"),
            (.kafkaSSLKeyLocation, "ssl.key.location"),
        ] {
            guard let path = string(setting) else { continue }
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw SettingsError("\(source(setting)): \"\(path)\" is not a readable file")
            }
            properties[property] = path
        }
        if let password = string(.kafkaSSLKeyPassword) { properties["ssl.key.password"] = password }
        if let text = string(.kafkaSASLMechanism) {
            let mechanism = text.uppercased()
            guard ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(mechanism) else {
                throw SettingsError("\(source(.kafkaSASLMechanism)): \"\(text)\" is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
            }
            properties["sasl.mechanisms"] = mechanism
        }
        if let username = string(.kafkaSASLUsername) { properties["sasl.username"] = username }
        if let password = string(.kafkaSASLPassword) { properties["sasl.password"] = password }
        let usesSASL = properties["security.protocol"]?.hasPrefix("sasl") ?? false
        if usesSASL, properties["sasl.mechanisms"] == nil, properties["sasl.mechanism"] == nil {
            throw SettingsError("\(source(.kafkaSecurityProtocol)): \(properties["security.protocol"]!) needs a SASL mechanism: set \(Setting.kafkaSASLMechanism.flagName) or \(Setting.kafkaSASLMechanism.environmentName)")
        }
        if usesSASL, properties["sasl.mechanisms"] != "GSSAPI", properties["sasl.username"] == nil || properties["sasl.password"] == nil {
            throw SettingsError("\(source(.kafkaSecurityProtocol)): SASL needs a user name and a password: set \(Setting.kafkaSASLUsername.flagName) and \(Setting.kafkaSASLPassword.environmentName)")
        }
        if !usesSASL, properties["sasl.username"] != nil || properties["sasl.password"] != nil {
            throw SettingsError("\(source(.kafkaSASLUsername)): SASL credentials are set but the security protocol is \(properties["security.protocol"] ?? "plaintext"): set \(Setting.kafkaSecurityProtocol.flagName) to sasl_ssl or sasl_plaintext")
        }
        return properties
    }

    /// The Kafka client settings of every command that talks to Kafka.
    public func kafkaConfiguration() throws -> KafkaConfiguration {
        guard let brokers = string(.brokers), !brokers.isEmpty else {
            throw SettingsError("no Kafka brokers: set \(Setting.brokers.flagName), \(Setting.brokers.environmentName) or \"brokers\" in the configuration file")
        }
        let configuration = KafkaConfiguration(bootstrapServers: brokers, properties: try kafkaProperties())
        // librdkafka checks every property itself (names and values), before anything connects.
        if let rejected = configuration.firstRejectedProperty() {
            let key = rejected.key, reason = rejected.reason
            let given = listWithSources(.kafkaProperties).last { $0.item.split(separator: "=", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces) == key }
            let value = Setting.secretKafkaProperties.contains(key) ? "<redacted>" : configuration[key] ?? ""
            let reasonText = Setting.secretKafkaProperties.contains(key) ? "librdkafka refuses the value" : reason
            throw SettingsError("\(given.map { "\($0.source)" } ?? "Kafka property"): \(key)=\(value): \(reasonText)")
        }
        return configuration
    }

    /// The log level of `--log-level`.
    public func logLevel() throws -> Logger.Level {
        let text = string(.logLevel) ?? "info"
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw SettingsError("\(source(.logLevel)): \"\(text)\" is not one of trace, debug, info, notice, warning, error, critical")
        }
        return level
    }

    /// `text` or `json`.
    public func logFormat() throws -> String {
        let format = (string(.logFormat) ?? "text").lowercased()
        guard ["text", "json"].contains(format) else {
            throw SettingsError("\(source(.logFormat)): \"\(format)\" is not text or json")
        }
        return format
    }

    /// The status server's port.
    public func httpPort() throws -> Int {
        let port = int(.httpPort) ?? defaultStatusPort
        guard (0...65535).contains(port) else {
            throw SettingsError("\(source(.httpPort)): \(port) is not a port number (0-65535)")
        }
        return port
    }

    /// The address the status server listens on.
    public func httpHost() throws -> String {
        let host = string(.httpHost) ?? "0.0.0.0"
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" }) else {
            throw SettingsError("\(source(.httpHost)): \"\(host)\" is not an address to listen on, such as 0.0.0.0 or 127.0.0.1")
        }
        return host
    }

    /// An ISO-8601 time with a zone (`Z` or `±hh:mm`), with or without fractional seconds.
    static func parseTimestamp(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return plain.date(from: text) ?? fractional.date(from: text)
    }

    /// Everything `fanout run` needs, checked.
    public func sidecarConfiguration(environment: [String: String]) throws -> SidecarConfiguration {
        let kafka = try kafkaConfiguration()
        let positionText = (string(.startPosition) ?? "TRIM_HORIZON").uppercased()
        guard let position = StartPosition(rawValue: positionText) else {
            throw SettingsError("\(source(.startPosition)): \"\(positionText)\" is not TRIM_HORIZON, LATEST or AT_TIMESTAMP")
        }
        let timestamp = try string(.startTimestamp).map { text in
            guard let date = Self.parseTimestamp(text) else {
                throw SettingsError("\(source(.startTimestamp)): \"\(text)\" is not an ISO-8601 time such as 2025-01-31T12:00:00Z")
            }
            return date
        }
        if (position == .atTimestamp) != (timestamp != nil) {
            throw SettingsError(position == .atTimestamp
                ? "\(source(.startPosition)): AT_TIMESTAMP needs \(Setting.startTimestamp.flagName) (\(Setting.startTimestamp.environmentName))"
                : "\(source(.startTimestamp)): a start timestamp is only used with --start-position AT_TIMESTAMP")
        }
        let pollSeconds = double(.routesPollInterval) ?? 2
        guard pollSeconds > 0, pollSeconds <= 3600 else {
            throw SettingsError("\(source(.routesPollInterval)): \(pollSeconds) is not a number of seconds between 0 and 3600")
        }
        let shardPollSeconds = double(.pollInterval) ?? 0.2
        guard shardPollSeconds >= 0.01, shardPollSeconds <= 60 else {
            throw SettingsError("\(source(.pollInterval)): \(shardPollSeconds) is not a number of seconds between 0.01 and 60")
        }
        let application = try application()
        let leases = try leaseConfiguration()
        let aws: AWSConfiguration
        do {
            aws = try AWSConfiguration.fromEnvironment(environment)
        } catch {
            throw SettingsError("AWS settings: \(error)")
        }
        try checkSource(position: position)
        return SidecarConfiguration(
            brokers: kafka["bootstrap.servers"] ?? "",
            routesPath: string(.routes) ?? "routes.json",
            tableName: string(.table),
            streamARN: string(.streamArn),
            kinesisStream: string(.kinesisStream),
            startPosition: position,
            startTimestamp: timestamp,
            kafkaProperties: kafka.properties.filter { $0.key != "bootstrap.servers" },
            pollInterval: .milliseconds(Int64((shardPollSeconds * 1000).rounded())),
            routesPollInterval: .milliseconds(Int64(pollSeconds * 1000)),
            application: application,
            exactlyOnce: bool(.exactlyOnce) ?? false,
            aws: aws,
            leases: leases
        )
    }

    /// Exactly one source: a Kinesis stream, or a DynamoDB table and/or stream ARN (which DynamoDB Streams has no
    /// AT_TIMESTAMP for). Whether the stream exists and suits is checked online (`Preflight`).
    func checkSource(position: StartPosition) throws {
        let table = string(.table), arn = string(.streamArn)
        if let stream = string(.kinesisStream) {
            if let other = table.map({ (Setting.table, $0) }) ?? arn.map({ (Setting.streamArn, $0) }) {
                throw SettingsError("\(source(.kinesisStream)) \(stream) and \(source(other.0)) \(other.1): set one source, a Kinesis stream or a DynamoDB table/stream ARN, not both")
            }
        } else if table == nil, arn == nil {
            throw SettingsError("no source: set \(Setting.table.flagName) (\(Setting.table.environmentName)), \(Setting.streamArn.flagName) (\(Setting.streamArn.environmentName)) or \(Setting.kinesisStream.flagName) (\(Setting.kinesisStream.environmentName))")
        } else if position == .atTimestamp {
            throw SettingsError("\(source(.startPosition)): DynamoDB Streams has no AT_TIMESTAMP iterator (only Kinesis streams have); use TRIM_HORIZON or LATEST")
        }
    }

    /// The application (default `fanout`), checked: it names Kafka topics and transactional ids.
    public func application() throws -> String {
        let application = string(.application) ?? SidecarConfiguration.defaultApplication
        guard !application.isEmpty, application.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) else {
            throw SettingsError("\(source(.application)): \"\(application)\" must be letters, digits, '.', '_' or '-' (it names Kafka topics)")
        }
        return application
    }

    /// The application's checkpoint topic: the one the sidecar resumes from.
    public func checkpointTopic() throws -> String {
        CheckpointRecords.topic(application: try application())
    }

    /// `--leases on` with its lease duration and worker id; nil for `off`.
    func leaseConfiguration() throws -> LeaseCoordinatorConfiguration? {
        let text = (string(.leases) ?? "off").lowercased()
        guard ["on", "off"].contains(text) else {
            throw SettingsError("\(source(.leases)): \"\(text)\" is not on or off")
        }
        guard text == "on" else { return nil }
        let seconds = double(.leaseDuration) ?? 10
        guard seconds >= 1, seconds <= 3600 else {
            throw SettingsError("\(source(.leaseDuration)): \(seconds) is not a number of seconds between 1 and 3600")
        }
        let worker = string(.workerId) ?? LeaseCoordinatorConfiguration.makeWorkerID()
        guard !worker.isEmpty, !worker.contains("#") else {
            throw SettingsError("\(source(.workerId)): \"\(worker)\" must be non-empty and without '#'")
        }
        return LeaseCoordinatorConfiguration(workerID: worker, leaseDuration: .milliseconds(Int64(seconds * 1000)))
    }
}
