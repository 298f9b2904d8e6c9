import ArgumentParser
import Configuration
import FanoutApp
import Foundation
import Logging
import Settings

/// The settings of `fanout run` beyond Kafka's.
struct RunOptions: ParsableArguments {
    @Option(name: .long, help: .setting(.routes, valueName: "file"))
    var routes: String?

    @Option(name: .customLong("routes-poll-interval"), help: .setting(.routesPollInterval, valueName: "seconds"))
    var routesPollInterval: String?

    @Option(name: .long, help: .setting(.table))
    var table: String?

    @Option(name: .customLong("stream-arn"), help: .setting(.streamArn))
    var streamARN: String?

    @Option(name: .customLong("kinesis-stream"), help: .setting(.kinesisStream))
    var kinesisStream: String?

    @Option(name: .customLong("start-position"), help: .setting(.startPosition))
    var startPosition: String?

    @Option(name: .customLong("start-timestamp"), help: .setting(.startTimestamp, valueName: "time"))
    var startTimestamp: String?

    @Option(name: .customLong("poll-interval"), help: .setting(.pollInterval, valueName: "seconds"))
    var pollInterval: String?

    @OptionGroup var application: ApplicationOption

    @Flag(name: .customLong("exactly-once"), help: .setting(.exactlyOnce))
    var exactlyOnce = false

    @Option(name: .long, help: .setting(.leases, valueName: "on|off"))
    var leases: String?

    @Option(name: .customLong("lease-duration"), help: .setting(.leaseDuration, valueName: "seconds"))
    var leaseDuration: String?

    @Option(name: .customLong("worker-id"), help: .setting(.workerId))
    var workerID: String?

    @Option(name: .customLong("http-port"), help: .setting(.httpPort))
    var httpPort: String?

    @Option(name: .customLong("http-host"), help: .setting(.httpHost, valueName: "address"))
    var httpHost: String?

    @Option(name: .customLong("log-format"), help: .setting(.logFormat))
    var logFormat: String?

    @Option(name: .customLong("log-level"), help: .setting(.logLevel))
    var logLevel: String?

    static let settings: [Setting] = [
        .routes, .routesPollInterval, .table, .streamArn, .kinesisStream, .startPosition, .startTimestamp, .pollInterval, .application,
        .exactlyOnce, .leases, .leaseDuration, .workerId, .httpPort, .httpHost, .logFormat, .logLevel,
    ]

    func flags() throws -> [Setting: ConfigContent] {
        var flags = application.flags
        flags[.routes] = routes.map(ConfigContent.string)
        flags[.routesPollInterval] = try routesPollInterval.map { try SettingsLoader.parse($0, as: .routesPollInterval) }
        flags[.table] = table.map(ConfigContent.string)
        flags[.streamArn] = streamARN.map(ConfigContent.string)
        flags[.kinesisStream] = kinesisStream.map(ConfigContent.string)
        flags[.startPosition] = startPosition.map(ConfigContent.string)
        flags[.startTimestamp] = startTimestamp.map(ConfigContent.string)
        flags[.pollInterval] = try pollInterval.map { try SettingsLoader.parse($0, as: .pollInterval) }
        if exactlyOnce { flags[.exactlyOnce] = .bool(true) }
        flags[.leases] = leases.map(ConfigContent.string)
        flags[.leaseDuration] = try leaseDuration.map { try SettingsLoader.parse($0, as: .leaseDuration) }
        flags[.workerId] = workerID.map(ConfigContent.string)
        flags[.httpPort] = try httpPort.map { try SettingsLoader.parse($0, as: .httpPort) }
        flags[.httpHost] = httpHost.map(ConfigContent.string)
        flags[.logFormat] = logFormat.map(ConfigContent.string)
        flags[.logLevel] = logLevel.map(ConfigContent.string)
        return flags
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the sidecar: read the stream, route each event, publish it to Kafka.",
        discussion: """
            Each setting comes from its flag, else its environment variable (in brackets), else the JSON \
            configuration file (--config), else its default; docs/configuration.md lists them all. Unknown \
            FANOUT_* variables and unknown keys in the configuration file are refused.

            AWS settings follow the AWS conventions: AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
            AWS_SESSION_TOKEN, AWS_PROFILE, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, \
            AWS_ENDPOINT_URL_DYNAMODB_STREAMS, AWS_ENDPOINT_URL_KINESIS.

            SIGTERM or SIGINT stops reading, drains what is in flight, flushes, checkpoints and exits 0 (within \
            30 s); a second signal exits at once with 128 + the signal's number (checkpoints already written stay; \
            records not yet acknowledged are read again on the next start). SIGHUP re-reads the routes file.
            """
    )

    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var options: RunOptions

    func run() async throws {
        try await reportingErrors {
            let settings = try kafka.resolve(adding: try options.flags(), settings: RunOptions.settings)
            try await RunCommand.run(settings: settings, environment: ProcessInfo.processInfo.environment, version: Fanout.version)
        }
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the settings `fanout run` would use with these flags, environment and configuration file, and where each came from; secrets are redacted.",
        discussion: """
            Exits 1 with one line naming the setting when any is invalid, as `fanout run` would: every check that needs \
            no server (values, one source, librdkafka's own check of every Kafka property). With --check, also every \
            check `fanout run` makes before it starts (the routes file, the HTTP port is free, the table and its stream \
            exist and the stream's view type is NEW_IMAGE or NEW_AND_OLD_IMAGES, or the Kinesis stream exists) and that \
            the Kafka brokers answer, printing one line per check: a linter for CI and a pre-flight for a deployment.
            """
    )

    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var options: RunOptions

    @Flag(name: .long, help: "Also check the routes file, the HTTP port, the stream in AWS and that Kafka answers.")
    var check = false

    func run() async throws {
        try await reportingErrors {
            let settings = try kafka.resolve(adding: try options.flags(), settings: RunOptions.settings)
            let environment = ProcessInfo.processInfo.environment
            try RunCommand.describe(settings: settings, environment: environment).forEach { print($0) }
            if check {
                let logger = Logger(label: "fanout") { _ in SwiftLogNoOpLogHandler() }
                try await RunCommand.check(settings: settings, environment: environment, logger: logger).forEach { print("ok: \($0)") }
            }
        }
    }
}
