import AWS
import Foundation
import Kafka
import StreamReader

/// Everything `fanout run` needs. Flags and `FANOUT_*` environment variables fill it (see docs/configuration.md).
public struct SidecarConfiguration: Sendable {
    /// Kafka bootstrap servers, `host:port[,host:port…]`.
    public var brokers: String
    /// Path of the routes file.
    public var routesPath: String
    /// The events table; its stream is found through DescribeTable. Ignored when `streamARN` is set.
    public var tableName: String?
    /// The stream to read, when given directly.
    public var streamARN: String?
    /// A Kinesis data stream (name or ARN) to read instead of a DynamoDB stream: DynamoDB's Kinesis
    /// streaming destination, whose records carry the item changes in their data.
    public var kinesisStream: String?
    /// Where a shard without a checkpoint starts.
    public var startPosition: StartPosition
    /// Where `.atTimestamp` starts (Kinesis only).
    public var startTimestamp: Date?
    /// Any librdkafka property (`-X key=value`), applied to every Kafka client after Fanout's defaults.
    public var kafkaProperties: [String: String]
    /// Least time between two GetRecords calls on one shard (`StreamReaderConfiguration.pollInterval`).
    public var pollInterval: Duration
    /// How long start-up waits for Kafka before it gives up.
    public var kafkaStartupTimeout: Duration
    /// How often the routes file is checked for changes (SIGHUP checks at once).
    public var routesPollInterval: Duration
    /// Names this deployment: its checkpoint topic (`fanout.checkpoints.<application>`) and transactional id.
    public var application: String
    /// The application when none is set.
    public static let defaultApplication = "fanout"
    /// Commit each page's records and its checkpoint in one Kafka transaction.
    public var exactlyOnce: Bool
    /// AWS region, credentials and endpoints.
    public var aws: AWSConfiguration
    /// Share the shards with the other instances of the application through a lease table (nil: read every shard).
    public var leases: LeaseCoordinatorConfiguration?

    public init(
        brokers: String,
        routesPath: String = "routes.json",
        tableName: String? = nil,
        streamARN: String? = nil,
        kinesisStream: String? = nil,
        startPosition: StartPosition = .trimHorizon,
        startTimestamp: Date? = nil,
        kafkaProperties: [String: String] = [:],
        pollInterval: Duration = .milliseconds(200),
        kafkaStartupTimeout: Duration = .seconds(5),
        routesPollInterval: Duration = .seconds(2),
        application: String = SidecarConfiguration.defaultApplication,
        exactlyOnce: Bool = false,
        aws: AWSConfiguration,
        leases: LeaseCoordinatorConfiguration? = nil
    ) {
        self.leases = leases
        self.application = application
        self.exactlyOnce = exactlyOnce
        self.brokers = brokers
        self.routesPath = routesPath
        self.tableName = tableName
        self.streamARN = streamARN
        self.kinesisStream = kinesisStream
        self.startPosition = startPosition
        self.startTimestamp = startTimestamp
        self.kafkaProperties = kafkaProperties
        self.pollInterval = pollInterval
        self.kafkaStartupTimeout = kafkaStartupTimeout
        self.routesPollInterval = routesPollInterval
        self.aws = aws
    }

    /// The Kafka client settings: bootstrap servers plus the pass-through properties.
    public var kafka: KafkaConfiguration {
        KafkaConfiguration(bootstrapServers: brokers, properties: kafkaProperties)
    }
}
