import AWS
import Contracts
import Delivery
import Foundation
import AsyncHTTPClient
import Kafka
import Logging
import Settings
import Synchronization
import Router
import StreamReader

/// A start-up failure, said in one line.
public struct StartupError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The topic drift of the routes file in force (see `TopicProvisioner.ensureTopics`), replaced at each reload.
final class TopicDrift: Sendable {
    private let lines = Mutex<[String]>([])
    var current: [String] { lines.withLock { $0 } }
    func set(_ drift: [String]) { lines.withLock { $0 = drift } }
}

/// The sidecar, built and checked: routes loaded, Kafka reachable, topics
/// created, the stream found. `run()` reads until `requestStop()` (or SIGTERM
/// under `runUntilSignalled`), then drains and flushes.
public final class Sidecar: Sendable {
    public let configuration: SidecarConfiguration
    /// The routes in force; swapped by the reloader.
    public let routes: LiveRoutes
    public let reloader: RoutesReloader
    public let streamARN: String
    public let pipeline: FanOutPipeline
    let reader: ShardedStreamReader
    /// With `--leases on`: this instance's leases.
    public let leases: LeaseCoordinator?
    let kafkaCheck = Mutex<(ok: Bool, detail: String)>((true, "reachable at start-up"))
    /// Existing topics whose partition count differs from the routes file in force (found at start-up and at
    /// each reload), a line each.
    let topicDrift: TopicDrift
    /// Exactly-once mode: the transactional producers (per leased shard with leases).
    let transactions: ExactlyOnceTransactions?
    let producer: KafkaProducer
    let admin: KafkaAdmin
    let httpClient: HTTPClient
    let logger: Logger

    private init(
        configuration: SidecarConfiguration, routes: LiveRoutes, reloader: RoutesReloader, streamARN: String, pipeline: FanOutPipeline,
        reader: ShardedStreamReader, leases: LeaseCoordinator?, transactions: ExactlyOnceTransactions?, producer: KafkaProducer,
        admin: KafkaAdmin, httpClient: HTTPClient, topicDrift: TopicDrift, logger: Logger
    ) {
        self.topicDrift = topicDrift
        self.leases = leases
        self.transactions = transactions
        self.configuration = configuration
        self.routes = routes
        self.reloader = reloader
        self.streamARN = streamARN
        self.pipeline = pipeline
        self.reader = reader
        self.producer = producer
        self.admin = admin
        self.httpClient = httpClient
        self.logger = logger
    }

    /// Builds the sidecar and checks everything it depends on; fails fast with one clear error.
    /// - Parameter checkpoints: where checkpoints go; nil (the default) keeps them in the application's compacted
    ///   Kafka topic. Exactly-once mode always uses that topic.
    /// - Parameter reloadOnHangup: SIGHUP reloads the routes file at once (the reloader service owns the signal);
    ///   `fanout run` sets it, tests that share one process do not.
    public static func make(
        configuration: SidecarConfiguration, checkpoints: (any CheckpointStore)? = nil, reloadOnHangup: Bool = false, logger: Logger
    ) async throws -> Sidecar {
        logger.info("starting fanout", metadata: [LogKey.librdkafkaVersion: "\(Librdkafka.version)"])
        let routesFile: RoutesFile
        do {
            routesFile = try RoutesFile.load(path: configuration.routesPath)
        } catch {
            throw StartupError("invalid routes file: \(error.issues.first!.description)" + (error.issues.count > 1 ? " (and \(error.issues.count - 1) more; run `fanout routes check \(configuration.routesPath)`)" : ""))
        }
        let routes = LiveRoutes(CompiledRoutes(routesFile), path: configuration.routesPath)
        logger.info("routes loaded", metadata: [
            LogKey.routesFile: "\(configuration.routesPath)", LogKey.routesCount: "\(routesFile.routes.count)",
            LogKey.routesHash: "\(routesFile.contentHash.prefix(12))",
        ])

        let admin = try KafkaAdmin(configuration: configuration.kafka, logger: logger)
        do {
            _ = try await admin.listTopics(timeout: configuration.kafkaStartupTimeout)
        } catch {
            admin.close()
            throw StartupError("Kafka is not reachable at \(configuration.brokers): \(error)")
        }
        let topicDrift = TopicDrift()
        do {
            topicDrift.set(try await TopicProvisioner.ensureTopics(of: routesFile, admin: admin, logger: logger))
        } catch {
            admin.close()
            throw StartupError("cannot create the topics of \(configuration.routesPath): \(error)")
        }
        let reloader = RoutesReloader(
            path: configuration.routesPath, live: routes, pollInterval: configuration.routesPollInterval, reloadsOnHangup: reloadOnHangup,
            logger: logger
        ) { [admin, logger, topicDrift] file in
            let drift = try await TopicProvisioner.ensureTopics(of: file, admin: admin, logger: logger)
            topicDrift.set(drift)
        }

        let httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .forAWS())
        // Shut down when start-up fails after it was made (a client left open delays the process's exit).
        var createdProducer: KafkaProducer?
        do {
            let (streamARN, source) = try await resolveSource(configuration: configuration, httpClient: httpClient, logger: logger)
            var producerConfiguration = configuration.kafka
            if producerConfiguration["statistics.interval.ms"] == nil {
                producerConfiguration["statistics.interval.ms"] = "10000"
            }
            // Exactly-once: one transactional producer for the application, or with leases one per leased shard
            // (opened when the shard starts); the main producer then only reports statistics.
            let perShardTransactions = configuration.exactlyOnce && configuration.leases != nil
            if configuration.exactlyOnce, !perShardTransactions {
                producerConfiguration["transactional.id"] = "fanout.\(configuration.application)"
            }
            let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
            createdProducer = producer
            var transactions: ExactlyOnceTransactions?
            if perShardTransactions {
                transactions = ExactlyOnceTransactions(perShardConfiguration: configuration.kafka, application: configuration.application, logger: logger)
            } else if configuration.exactlyOnce {
                do {
                    // Fences any earlier instance with the same transactional id and aborts its open transaction.
                    try await producer.initTransactions()
                } catch {
                    throw StartupError("cannot start Kafka transactions for exactly-once mode: \(error)")
                }
                transactions = ExactlyOnceTransactions(sharedProducer: producer, logger: logger)
            }
            let kafkaCheckpoints = KafkaCheckpointStore(
                topic: CheckpointRecords.topic(application: configuration.application),
                configuration: configuration.kafka, producer: producer, transactions: transactions, logger: logger
            )
            let exactlyOnce = transactions.map { (checkpoints: kafkaCheckpoints, transactions: $0) }
            let checkpointStore: any CheckpointStore = configuration.exactlyOnce ? kafkaCheckpoints : (checkpoints ?? kafkaCheckpoints)
            if checkpointStore is KafkaCheckpointStore { try await kafkaCheckpoints.ensureTopic(admin: admin) }
            let pipeline = FanOutPipeline(routes: routes, producer: producer, exactlyOnce: exactlyOnce, logger: logger)
            let leases = try await makeLeaseCoordinator(
                configuration: configuration, streamARN: streamARN, source: source, httpClient: httpClient, logger: logger
            )
            let reader = ShardedStreamReader(
                source: source,
                configuration: StreamReaderConfiguration(
                    streamARN: streamARN,
                    startPosition: configuration.startPosition,
                    startTimestamp: configuration.startTimestamp,
                    pollInterval: configuration.pollInterval
                ),
                checkpoints: checkpointStore,
                ownership: leases,
                lifecycle: perShardTransactions ? transactions : nil,
                logger: logger
            )
            return Sidecar(
                configuration: configuration, routes: routes, reloader: reloader, streamARN: streamARN, pipeline: pipeline,
                reader: reader, leases: leases, transactions: transactions, producer: producer, admin: admin, httpClient: httpClient,
                topicDrift: topicDrift, logger: logger
            )
        } catch {
            await createdProducer?.shutdown()
            admin.close()
            try? await httpClient.shutdown()
            throw error
        }
    }

    /// With `--leases on`: the lease table `fanout-leases-<application>` (created if missing) and the coordinator.
    private static func makeLeaseCoordinator(
        configuration: SidecarConfiguration, streamARN: String, source: any StreamSource, httpClient: HTTPClient, logger: Logger
    ) async throws -> LeaseCoordinator? {
        guard let leases = configuration.leases else { return nil }
        let table = LeaseTable(
            dynamoDB: DynamoDB(configuration: configuration.aws, httpClient: httpClient, logger: logger),
            tableName: LeaseTable.tableName(application: configuration.application), streamARN: streamARN
        )
        do {
            try await table.ensureTable()
        } catch {
            throw StartupError("cannot create or find the lease table \"\(table.tableName)\" at \(configuration.aws.endpoint(for: .dynamoDB)): \(error)")
        }
        return LeaseCoordinator(table: table, source: source, configuration: leases, logger: logger)
    }

    /// The stream to read and its ARN (the key of its checkpoints): a Kinesis stream, or a DynamoDB stream given
    /// by ARN or by its table.
    private static func resolveSource(
        configuration: SidecarConfiguration, httpClient: HTTPClient, logger: Logger
    ) async throws -> (streamARN: String, source: any StreamSource) {
        if configuration.startPosition == .atTimestamp, configuration.startTimestamp == nil {
            throw StartupError("--start-position AT_TIMESTAMP needs --start-timestamp (FANOUT_START_TIMESTAMP), an ISO-8601 time")
        }
        if let stream = configuration.kinesisStream {
            if configuration.tableName != nil || configuration.streamARN != nil {
                throw StartupError("--kinesis-stream \(stream): set one source, a Kinesis stream or a DynamoDB table/stream ARN, not both")
            }
            return try await resolveKinesisStream(stream, configuration: configuration, httpClient: httpClient, logger: logger)
        }
        if configuration.startPosition == .atTimestamp {
            throw StartupError("--start-position AT_TIMESTAMP: DynamoDB Streams has no AT_TIMESTAMP iterator (only Kinesis streams have); use TRIM_HORIZON or LATEST")
        }
        let arn = try await resolveStreamARN(configuration: configuration, httpClient: httpClient, logger: logger)
        let streams = DynamoDBStreams(configuration: configuration.aws, httpClient: httpClient, logger: logger)
        return (arn, DynamoDBStreamsSource(streams: streams, streamARN: arn))
    }

    private static func resolveKinesisStream(
        _ stream: String, configuration: SidecarConfiguration, httpClient: HTTPClient, logger: Logger
    ) async throws -> (streamARN: String, source: any StreamSource) {
        let isARN = stream.hasPrefix("arn:")
        guard let name = isARN ? KinesisSource.streamName(fromARN: stream) : stream, !name.isEmpty, !name.contains(":"), !name.contains("/") else {
            throw StartupError("--kinesis-stream: \"\(stream)\" is neither a stream name nor a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)")
        }
        let kinesis = Kinesis(configuration: configuration.aws, httpClient: httpClient, logger: logger)
        let summary: (streamARN: String, status: String)
        do {
            summary = try await kinesis.describeStreamSummary(name: name)
        } catch let error as AWSError where error.type == AWSError.resourceNotFound {
            throw StartupError("Kinesis stream \"\(name)\" does not exist in \(configuration.aws.region) at \(configuration.aws.endpoint(for: .kinesis))")
        } catch {
            throw StartupError("cannot describe Kinesis stream \"\(name)\": \(error)")
        }
        if isARN, summary.streamARN != stream {
            throw StartupError("--kinesis-stream \(stream): the stream \"\(name)\" in \(configuration.aws.region) has the ARN \(summary.streamARN); set AWS_REGION to the ARN's region")
        }
        return (summary.streamARN, KinesisSource(kinesis: kinesis, streamName: name))
    }

    private static func resolveStreamARN(configuration: SidecarConfiguration, httpClient: HTTPClient, logger: Logger) async throws -> String {
        if let arn = configuration.streamARN { return arn }
        guard let table = configuration.tableName else {
            throw StartupError("no source: set --table (FANOUT_TABLE), --stream-arn (FANOUT_STREAM_ARN) or --kinesis-stream (FANOUT_KINESIS_STREAM)")
        }
        return try await Preflight.tableStream(table, aws: configuration.aws, httpClient: httpClient, logger: logger).streamARN
    }

    /// The stream reader's shard states.
    public var streamStatus: StreamReaderStatus { reader.status }

    /// The last background check of Kafka.
    var kafkaHealth: (ok: Bool, detail: String) { kafkaCheck.withLock { $0 } }
}
