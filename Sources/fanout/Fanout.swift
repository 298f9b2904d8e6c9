import AWS
import ArgumentParser
import FanoutApp
import Foundation
import Kafka
import Logging
import StreamReader

@main
struct Fanout: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "Routes DynamoDB Streams events to Kafka topics by the rules in routes.json.",
        version: version,
        subcommands: [Run.self, Routes.self, DeadLetters.self, Replay.self, Version.self],
        defaultSubcommand: Run.self
    )
}

/// Prints one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the sidecar: read the stream, route each event, publish it to Kafka.",
        discussion: """
            Every option also reads from its environment variable (shown in brackets); a flag wins.
            AWS settings follow the AWS conventions: AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
            AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_DYNAMODB_STREAMS.
            SIGTERM or SIGINT stops reading, drains what is in flight, flushes and exits 0.
            """
    )

    @Option(name: .long, help: "Kafka bootstrap servers, host:port[,host:port…] [FANOUT_BROKERS].")
    var brokers: String?

    @Option(name: .long, help: "The routes file [FANOUT_ROUTES] (default: routes.json).")
    var routes: String?

    @Option(name: .long, help: "The events table; its stream is found through DescribeTable [FANOUT_TABLE].")
    var table: String?

    @Option(name: .customLong("stream-arn"), help: "The DynamoDB stream to read, instead of --table [FANOUT_STREAM_ARN].")
    var streamARN: String?

    @Option(name: .customLong("start-position"), help: "Where a shard without a checkpoint starts: TRIM_HORIZON or LATEST [FANOUT_START_POSITION] (default: TRIM_HORIZON).")
    var startPosition: String?

    @Option(name: .long, help: "Names this deployment: its checkpoint topic fanout.checkpoints.<application> and transactional id [FANOUT_APPLICATION] (default: fanout).")
    var application: String?

    @Flag(name: .customLong("exactly-once"), help: "Commit each page's records and its checkpoint in one Kafka transaction [FANOUT_EXACTLY_ONCE=true].")
    var exactlyOnce = false

    @Option(name: .customLong("routes-poll-interval"), help: "Seconds between checks of the routes file for changes; SIGHUP checks at once [FANOUT_ROUTES_POLL_INTERVAL] (default: 2).")
    var routesPollInterval: Double?

    @Option(name: .customShort("X"), parsing: .unconditionalSingleValue, help: ArgumentHelp("A librdkafka property for every Kafka client, as key=value; repeatable.", valueName: "key=value"))
    var kafkaProperties: [String] = []

    @Option(name: .customLong("http-port"), help: "Port of /healthz, /readyz, /status and /metrics; 0 picks a free one [FANOUT_HTTP_PORT] (default: 9400).")
    var httpPort: Int?

    @Option(name: .customLong("log-format"), help: "text (readable lines) or json (one JSON object a line) [FANOUT_LOG_FORMAT] (default: text).")
    var logFormat: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical [FANOUT_LOG_LEVEL] (default: info).")
    var logLevel: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let level = try parseLogLevel(logLevel ?? environment["FANOUT_LOG_LEVEL"] ?? "info")
        let format = (logFormat ?? environment["FANOUT_LOG_FORMAT"] ?? "text").lowercased()
        switch format {
        case "text":
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case "json":
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        default:
            printError("fanout: error: --log-format: \"\(format)\" is not text or json")
            throw ExitCode.failure
        }
        let logger = Logger(label: "fanout")
        let metrics = bootstrapMetrics()
        do {
            let configuration = try makeConfiguration(environment: environment)
            let portText = httpPort.map(String.init) ?? environment["FANOUT_HTTP_PORT"] ?? String(defaultStatusPort)
            guard let port = Int(portText), (0...65535).contains(port) else {
                throw StartupError("--http-port: \"\(portText)\" is not a port number (0-65535)")
            }
            let sidecar = try await Sidecar.make(configuration: configuration, logger: logger)
            try await sidecar.runUntilSignalled(statusPort: port, metrics: metrics)
        } catch {
            printError("fanout: error: \(error)")
            throw ExitCode.failure
        }
    }

    func makeConfiguration(environment: [String: String]) throws -> SidecarConfiguration {
        guard let brokers = brokers ?? environment["FANOUT_BROKERS"], !brokers.isEmpty else {
            throw StartupError("no Kafka brokers: set --brokers or FANOUT_BROKERS")
        }
        let positionText = (startPosition ?? environment["FANOUT_START_POSITION"] ?? "TRIM_HORIZON").uppercased()
        guard let position = StartPosition(rawValue: positionText) else {
            throw StartupError("--start-position: \"\(positionText)\" is not TRIM_HORIZON or LATEST")
        }
        var properties: [String: String] = [:]
        for pair in kafkaProperties {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw StartupError("-X \(pair): expected key=value")
            }
            properties[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        let aws: AWSConfiguration
        do {
            aws = try AWSConfiguration.fromEnvironment(environment)
        } catch {
            throw StartupError("AWS settings: \(error)")
        }
        let pollText = routesPollInterval.map { String($0) } ?? environment["FANOUT_ROUTES_POLL_INTERVAL"] ?? "2"
        guard let pollSeconds = Double(pollText), pollSeconds > 0, pollSeconds <= 3600 else {
            throw StartupError("--routes-poll-interval: \"\(pollText)\" is not a number of seconds between 0 and 3600")
        }
        let exactlyOnceText = environment["FANOUT_EXACTLY_ONCE"]?.lowercased()
        if let exactlyOnceText, !["true", "false", "1", "0", ""].contains(exactlyOnceText) {
            throw StartupError("FANOUT_EXACTLY_ONCE: \"\(exactlyOnceText)\" is not true or false")
        }
        return SidecarConfiguration(
            brokers: brokers,
            routesPath: routes ?? environment["FANOUT_ROUTES"] ?? "routes.json",
            tableName: table ?? environment["FANOUT_TABLE"],
            streamARN: streamARN ?? environment["FANOUT_STREAM_ARN"],
            startPosition: position,
            kafkaProperties: properties,
            routesPollInterval: .milliseconds(Int64(pollSeconds * 1000)),
            application: application ?? environment["FANOUT_APPLICATION"] ?? "fanout",
            exactlyOnce: exactlyOnce || exactlyOnceText == "true" || exactlyOnceText == "1",
            aws: aws
        )
    }

    func parseLogLevel(_ text: String) throws -> Logger.Level {
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ValidationError("--log-level: \"\(text)\" is not one of trace, debug, info, notice, warning, error, critical")
        }
        return level
    }
}

struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with routes files.",
        subcommands: [Check.self, Explain.self]
    )

    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which routes an event matches, the topics it would go to, and for every other route the first condition that failed.",
            discussion: """
                The event is a GenericDomainEventMessage as JSON (as in Fanout's Kafka records): at least eventName and
                aggregateId, with payload and metadata as plain JSON. Give it as an argument, or on standard input.
                Example: fanout routes explain routes.json '{"eventName": "OrderPlaced", "aggregateId": "o-1", "payload": {"total": 5}}'
                """
        )

        @Argument(help: "The routes file.")
        var file: String

        @Argument(help: "The event as JSON; read from standard input when omitted.")
        var event: String?

        func run() throws {
            let bytes = event.map { Array($0.utf8) } ?? Array(FileHandle.standardInput.readDataToEndOfFile())
            do {
                for line in try RoutesExplain.run(path: file, eventJSON: bytes) { print(line) }
            } catch {
                printError("fanout: error: \(error)")
                throw ExitCode.failure
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a routes file: print every problem (file:line:column: JSON path: problem) and exit 1, or print a summary and exit 0."
        )

        @Argument(help: "The routes file to check.")
        var file: String = "routes.json"

        func run() throws {
            let (lines, isValid) = RoutesCheck.run(path: file)
            if isValid {
                lines.forEach { print($0) }
            } else {
                lines.forEach(printError)
                throw ExitCode.failure
            }
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the versions of fanout and of the librdkafka it runs on.")

    func run() {
        print("fanout \(Fanout.version)")
        print("librdkafka \(Librdkafka.version)")
    }
}
