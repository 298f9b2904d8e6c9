/// One setting of `fanout`: its key, flag, environment variable, type, default and meaning.
///
/// The key is the setting's path in a configuration file (`{"kafka": {"saslPassword": …}}` is
/// `kafka.saslPassword`); the environment variable is `FANOUT_` and the key in upper snake case
/// (`FANOUT_KAFKA_SASL_PASSWORD`), as swift-configuration's environment provider spells it.
public struct Setting: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case string, int, double, bool
        /// A list: repeated flags, a JSON array of strings, or comma-separated in the environment.
        case list
    }

    /// The key's components: `["kafka", "saslPassword"]`.
    public var key: [String]
    /// The long flag, without `--`, or `X` for `-X`.
    public var flag: String
    public var kind: Kind
    /// Shown in `fanout config` and docs/configuration.md; nil when there is none.
    public var defaultValue: String?
    /// Redacted in every output.
    public var isSecret: Bool
    public var help: String

    public init(_ key: [String], flag: String, kind: Kind = .string, default defaultValue: String? = nil, secret: Bool = false, help: String) {
        self.key = key
        self.flag = flag
        self.kind = kind
        self.defaultValue = defaultValue
        self.isSecret = secret
        self.help = help
    }

    /// `kafka.saslPassword`.
    public var dottedKey: String { key.joined(separator: ".") }

    /// `FANOUT_KAFKA_SASL_PASSWORD`.
    public var environmentName: String {
        (["FANOUT"] + key.map(Self.upperSnakeCase)).joined(separator: "_")
    }

    /// `--kafka-sasl-password`, or `-X`.
    public var flagName: String { flag.count == 1 ? "-\(flag)" : "--\(flag)" }

    static func upperSnakeCase(_ component: String) -> String {
        var out = ""
        var previousIsLower = false
        for character in component {
            if character.isUppercase, previousIsLower { out.append("_") }
            out.append(contentsOf: character.uppercased())
            previousIsLower = character.isLowercase || character.isNumber
        }
        return out
    }
}

extension Setting {
    public static let brokers = Setting(["brokers"], flag: "brokers", help: "Kafka bootstrap servers, host:port[,host:port…] (required)")
    public static let routes = Setting(["routes"], flag: "routes", default: "routes.json", help: "the routes file; reloaded when it changes")
    public static let routesPollInterval = Setting(
        ["routesPollInterval"], flag: "routes-poll-interval", kind: .double, default: "2",
        help: "seconds between checks of the routes file; SIGHUP checks at once")
    public static let pollInterval = Setting(
        ["pollInterval"], flag: "poll-interval", kind: .double, default: "0.2",
        help: "least seconds between two GetRecords calls on one shard (0.2: five a second, AWS's per-shard limit); a backlog is read on at once")
    public static let table = Setting(["table"], flag: "table", help: "the events table; its stream is found through DescribeTable")
    public static let streamArn = Setting(["streamArn"], flag: "stream-arn", help: "the DynamoDB stream to read, instead of --table")
    public static let kinesisStream = Setting(
        ["kinesisStream"], flag: "kinesis-stream",
        help: "a Kinesis data stream (name or ARN) carrying DynamoDB changes, instead of --table or --stream-arn")
    public static let startPosition = Setting(
        ["startPosition"], flag: "start-position", default: "TRIM_HORIZON",
        help: "where a shard without a checkpoint starts: TRIM_HORIZON, LATEST or (Kinesis only) AT_TIMESTAMP")
    public static let startTimestamp = Setting(
        ["startTimestamp"], flag: "start-timestamp",
        help: "with --start-position AT_TIMESTAMP: the ISO-8601 time to start at, e.g. 2025-01-31T12:00:00Z")
    public static let application = Setting(
        ["application"], flag: "application", default: "fanout",
        help: "names the deployment: checkpoint topic fanout.checkpoints.<application>, transactional id fanout.<application> (with --leases on: fanout.<application>.<shard id>)")
    public static let exactlyOnce = Setting(
        ["exactlyOnce"], flag: "exactly-once", kind: .bool, default: "false",
        help: "commit each page's records and its checkpoint in one Kafka transaction (with --leases on: one transactional producer per leased shard)")
    public static let leases = Setting(
        ["leases"], flag: "leases", default: "off",
        help: "on: share the stream's shards with the other instances of this application through the lease table fanout-leases-<application> (docs/scaling.md)")
    public static let leaseDuration = Setting(
        ["leaseDuration"], flag: "lease-duration", kind: .double, default: "10",
        help: "with --leases on: seconds after which a lease that is not renewed expires; renewed every third of it")
    public static let workerId = Setting(
        ["workerId"], flag: "worker-id",
        help: "with --leases on: this instance's id in the lease table (default <host>-<pid>-<random>); unique per process")
    public static let httpPort = Setting(
        ["httpPort"], flag: "http-port", kind: .int, default: "9400",
        help: "port of /healthz, /readyz, /status and /metrics; 0 picks a free one")
    public static let httpHost = Setting(
        ["httpHost"], flag: "http-host", default: "0.0.0.0",
        help: "address the status endpoint listens on: 0.0.0.0 (every interface: a container's port can be published) or 127.0.0.1 (this host only)")
    public static let logFormat = Setting(["logFormat"], flag: "log-format", default: "text", help: "text or json (one JSON object a line)")
    public static let logLevel = Setting(
        ["logLevel"], flag: "log-level", default: "info", help: "trace, debug, info, notice, warning, error or critical")
    public static let kafkaProperties = Setting(
        ["kafka", "properties"], flag: "X", kind: .list,
        help: "librdkafka properties as key=value for every Kafka client (secret ones are redacted)")
    public static let kafkaSecurityProtocol = Setting(
        ["kafka", "securityProtocol"], flag: "kafka-security-protocol", default: "plaintext",
        help: "plaintext, ssl, sasl_plaintext or sasl_ssl (librdkafka security.protocol)")
    public static let kafkaSSLCALocation = Setting(
        ["kafka", "sslCaLocation"], flag: "kafka-ssl-ca-location",
        help: "PEM file of the CA certificates that verify the brokers (ssl.ca.location)")
    public static let kafkaSSLCertificateLocation = Setting(
        ["kafka", "sslCertificateLocation"], flag: "kafka-ssl-certificate-location",
        help: "PEM file of the client certificate, for TLS client authentication (ssl.certificate.location)")
    public static let kafkaSSLKeyLocation = Setting(
        ["kafka", "sslKeyLocation"], flag: "kafka-ssl-key-location", help: "PEM file of the client certificate's private key (ssl.key.location)")
    public static let kafkaSSLKeyPassword = Setting(
        ["kafka", "sslKeyPassword"], flag: "kafka-ssl-key-password", secret: true,
        help: "password of the private key (ssl.key.password); secret")
    public static let kafkaSASLMechanism = Setting(
        ["kafka", "saslMechanism"], flag: "kafka-sasl-mechanism", help: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl.mechanisms)")
    public static let kafkaSASLUsername = Setting(["kafka", "saslUsername"], flag: "kafka-sasl-username", help: "SASL user name (sasl.username)")
    public static let kafkaSASLPassword = Setting(
        ["kafka", "saslPassword"], flag: "kafka-sasl-password", secret: true, help: "SASL password (sasl.password); secret")

    /// Every setting, in the order `fanout config` and docs/configuration.md list them.
    public static let all: [Setting] = [
        .brokers, .routes, .routesPollInterval, .table, .streamArn, .kinesisStream, .startPosition, .startTimestamp, .pollInterval, .application,
        .exactlyOnce, .leases, .leaseDuration, .workerId,
        .httpPort, .httpHost, .logFormat, .logLevel,
        .kafkaProperties, .kafkaSecurityProtocol, .kafkaSSLCALocation, .kafkaSSLCertificateLocation, .kafkaSSLKeyLocation,
        .kafkaSSLKeyPassword, .kafkaSASLMechanism, .kafkaSASLUsername, .kafkaSASLPassword,
    ]

    /// The setting that names the configuration file: a flag or environment variable only.
    public static let configFile = Setting(["config"], flag: "config", help: "a JSON configuration file (settings as in docs/configuration.md)")

    /// librdkafka properties whose values are secrets: redacted wherever a property is shown.
    public static let secretKafkaProperties: Set<String> = [
        "sasl.password", "ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret",
        "ssl.key.pem", "sasl.oauthbearer.config",
    ]
}

/// The port the status endpoint listens on unless told otherwise.
public let defaultStatusPort = 9400
