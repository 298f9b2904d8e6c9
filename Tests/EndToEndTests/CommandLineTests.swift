import AWS
import Foundation
import TestSupport
import Testing

/// The `fanout` executable, run as a user runs it.
@Suite(.timeLimit(.minutes(2))) struct CommandLineTests {
    struct Result {
        var status: Int32
        var standardOutput: String
        var standardError: String
        var seconds: Double
    }

    /// The built `fanout` binary, beside the test bundle.
    static var binary: URL {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("fanout")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return directory.appendingPathComponent("fanout")
    }

    /// Runs the binary to its end: `input` on its standard input, both outputs captured. Past
    /// `timeout` it is killed and the test records an issue.
    static func run(_ arguments: [String], environment: [String: String] = [:], input: String? = nil, timeout: Duration = .seconds(30)) async throws -> Result {
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let (result, timedOut) = try await ChildProcess.run(
            binary.path, arguments, environment: env, input: input.map { Data($0.utf8) }, timeout: timeout)
        if timedOut {
            Issue.record("fanout \(arguments.joined(separator: " ")) did not end within \(timeout)")
        }
        return Result(status: result.status, standardOutput: result.standardOutput, standardError: result.standardError, seconds: result.seconds)
    }

    static func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestServices.uniqueName("routes")).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func routesCheckSummarisesAValidFile() async throws {
        let root = TestServices.packageRoot.appendingPathComponent("routes.json").path
        let result = try await Self.run(["routes", "check", root])
        #expect(result.status == 0, "\(result.standardError)")
        // Four declared topics and the dead-letter topic: counted as /status counts them (routes.topicCount).
        #expect(result.standardOutput.hasPrefix("\(root): valid (version 1): 4 routes, 5 topics, 6 event-name patterns"))
        #expect(result.standardOutput.contains("  topic fanout.dead-letter: 3 partitions, replication 1"))
        #expect(result.standardOutput.contains("route billing: OrderPlaced, OrderCancelled, Payment* -> billing.events"))
    }

    @Test func routesCheckSaysOnePartitionAndOneRoute() async throws {
        let path = try Self.write(#"{"version": 1, "topics": {"t": {"partitions": 1}}, "routes": [{"name": "a", "events": ["A"], "to": ["t"]}], "deadLetterTopic": "t"}"#)
        let result = try await Self.run(["routes", "check", path])
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("\(path): valid (version 1): 1 route, 1 topic, 1 event-name pattern; sha256 ") == true, "\(result.standardOutput)")
        #expect(lines.contains("  topic t: 1 partition, replication 1, retention.ms=604800000"), "\(result.standardOutput)")
    }

    @Test func aMissingRoutesFileIsOneLineNamingThePath() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestServices.uniqueName("absent")).json").path
        let check = try await Self.run(["routes", "check", path])
        #expect(check.status == 1)
        #expect(check.standardError == "\(path): $: cannot read the file: no such file\n")
        let run = try await Self.run(["run", "--brokers", "127.0.0.1:1", "--table", "t", "--routes", path],
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"])
        #expect(run.status == 1)
        #expect(run.standardError.hasSuffix("fanout: error: invalid routes file: \(path): $: cannot read the file: no such file\n"), "\(run.standardError)")
    }

    @Test func usageMistakesAreOneErrorLineWithExitStatus1AndBareFanoutShowsHelp() async throws {
        let unknown = try await Self.run(["run", "--no-such-flag"])
        #expect(unknown.status == 1)
        #expect(unknown.standardError == "fanout: error: Unknown option '--no-such-flag' (see `fanout run --help`)\n", "\(unknown.standardError)")
        let missing = try await Self.run(["routes", "explain"])
        #expect(missing.status == 1)
        #expect(missing.standardError.hasPrefix("fanout: error: Missing expected argument '<file>'"), "\(missing.standardError)")
        #expect(missing.standardError.hasSuffix(" (see `fanout routes explain --help`)\n"))
        let bare = try await Self.run([], environment: ["FANOUT_TABLE": "t", "FANOUT_BROKERS": "127.0.0.1:1"])
        #expect(bare.status == 0, "\(bare.standardError)")
        #expect(bare.standardOutput.contains("USAGE: fanout <subcommand>"), "\(bare.standardOutput)")
        #expect(bare.standardError.isEmpty, "nothing was started: \(bare.standardError)")
    }

    @Test func routesCheckPrintsEveryProblemOnALineAndExits1() async throws {
        let path = try Self.write("""
            {
              "version": 1,
              "topics": { "t": {} },
              "routes": [
                { "name": "a", "events": ["X**"], "to": ["t"] },
                { "name": "b", "events": ["Y"], "to": ["missing"] }
              ]
            }
            """)
        let result = try await Self.run(["routes", "check", path])
        #expect(result.status == 1)
        let lines = result.standardError.split(separator: "\n").map(String.init)
        #expect(lines == [
            "\(path):5:31: $.routes[0].events[0]: \"X**\" has consecutive wildcards; one '*' already matches any run of characters",
            "\(path):6:44: $.routes[1].to[0]: topic \"missing\" is not declared in $.topics (declare it, with {} for the defaults)",
        ])
        #expect(result.standardOutput.isEmpty)
    }

    @Test func routesCheckOnMalformedJSONNamesThePosition() async throws {
        let path = try Self.write("{\n  \"version\": 1,\n  \"topics\": {}\n  \"routes\": []\n}\n")
        let result = try await Self.run(["routes", "check", path])
        #expect(result.status == 1)
        #expect(result.standardError == "\(path):4:3: $: unexpected '\"', expected ',' or '}'\n")
    }

    @Test func runFailsFastWhenKafkaIsNotThere() async throws {
        // A table that suits: the stream is checked before Kafka.
        let table = try await Self.makeTable(viewType: .newImage)
        let result = try await Self.run(
            ["run", "--brokers", "127.0.0.1:1", "--table", table.name, "--http-port", "0", "--routes", TestServices.packageRoot.appendingPathComponent("routes.json").path],
            environment: try Self.motoEnvironment()
        )
        #expect(result.status == 1)
        let lastLine = result.standardError.split(separator: "\n").last.map(String.init) ?? ""
        #expect(lastLine.hasPrefix("fanout: error: Kafka is not reachable at 127.0.0.1:1"), "\(result.standardError)")
        // The start-up check's 5 s ended the wait (README: "Kafka (within 5 s)"); the error says so. The elapsed bound
        // only guards against a hang: process start, those 5 s and librdkafka's clients closing took 5.3 s on an idle
        // machine and 15.1 s with both cores busy (a loop run of scripts/test).
        #expect(lastLine.contains("could not read cluster metadata within 5.0 seconds"), "\(lastLine)")
        #expect(result.seconds < 45)
    }

    @Test func runFailsFastWhenDynamoDBIsNotThere() async throws {
        let result = try await Self.run(
            ["run", "--http-port", "0", "--brokers", try TestServices.kafkaBrokers(), "--table", "t", "--routes", TestServices.packageRoot.appendingPathComponent("routes.json").path],
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"]
        )
        #expect(result.status == 1)
        #expect(result.seconds < 30)
        let lastLine = result.standardError.split(separator: "\n").last.map(String.init) ?? ""
        #expect(lastLine.hasPrefix("fanout: error: cannot describe table \"t\""), "\(result.standardError)")
        #expect(!result.standardError.contains("y\""))
    }

    @Test func runFailsWhenTheTableDoesNotExist() async throws {
        let result = try await Self.run(
            ["run", "--http-port", "0", "--brokers", try TestServices.kafkaBrokers(), "--table", "no-such-table", "--routes", TestServices.packageRoot.appendingPathComponent("routes.json").path],
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": try TestServices.awsEndpoint()]
        )
        #expect(result.status == 1)
        #expect(result.standardError.hasSuffix("fanout: error: table \"no-such-table\" does not exist in us-east-1 at \(try TestServices.awsEndpoint())\n"), "\(result.standardError)")
    }

    @Test func runRefusesAnInvalidRoutesFile() async throws {
        let path = try Self.write(#"{"version": 7, "topics": {}, "routes": []}"#)
        let result = try await Self.run(
            ["run", "--brokers", "127.0.0.1:1", "--table", "t", "--routes", path],
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"]
        )
        #expect(result.status == 1)
        #expect(result.standardError.hasSuffix("fanout: error: invalid routes file: \(path):1:13: $.version: unsupported version 7; this Fanout reads version 1\n"), "\(result.standardError)")
    }

    @Test func versionNamesLibrdkafka() async throws {
        let result = try await Self.run(["version"])
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("librdkafka 2."))
    }
}

extension CommandLineTests {
    @Test func routesExplainShowsMatchesTopicsAndTheFirstFailedCondition() async throws {
        let path = try Self.write(#"""
            {"version": 1, "topics": {"orders": {}, "fraud": {}, "audit": {}},
             "routes": [
               {"name": "orders", "events": ["Order*"], "to": ["orders"]},
               {"name": "big", "events": ["OrderPlaced"], "where": {"payload": {"total": [{"numeric": [">", 1000]}]}}, "to": ["fraud"], "key": "payload.customer"},
               {"name": "payments", "events": ["Payment*"], "to": ["audit"]}
             ]}
            """#)
        let result = try await Self.run(["routes", "explain", path, #"{"eventName": "OrderPlaced", "aggregateId": "o-1", "payload": {"total": 5, "customer": "c-9"}}"#])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.split(separator: "\n").map(String.init) == [
            "OrderPlaced -> orders",
            "  orders: routes orders; key \"o-1\" (aggregateId)",
            "  match     orders -> orders",
            "  no match  big: where: payload.total is 5, not {numeric: > 1000.0}",
            "  no match  payments: event name \"OrderPlaced\" matches none of Payment*",
        ])
    }

    @Test func routesExplainReadsTheEventFromStandardInputAndRefusesANonEvent() async throws {
        let root = TestServices.packageRoot.appendingPathComponent("routes.json").path
        let good = try await Self.run(["routes", "explain", root], input: #"{"eventName": "PaymentReceived", "aggregateId": "p-1"}"#)
        #expect(good.status == 0, "\(good.standardError)")
        #expect(good.standardOutput.hasPrefix("PaymentReceived -> billing.events, audit.all\n"))
        let bad = try await Self.run(["routes", "explain", root, #"{"aggregateId": "o-1"}"#])
        #expect(bad.status == 1)
        #expect(bad.standardError == "fanout: error: event: eventName: is missing\n")
    }
}

extension CommandLineTests {
    @Test func jsonLogsAreOneObjectALine() async throws {
        let path = try Self.write(#"{"version": 7, "topics": {}, "routes": []}"#)
        let result = try await Self.run(
            ["run", "--brokers", "127.0.0.1:1", "--table", "t", "--routes", path, "--log-format", "json"],
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"]
        )
        #expect(result.status == 1)
        let lines = result.standardError.split(separator: "\n").map(String.init)
        let logLines = lines.filter { $0.hasPrefix("{") }
        #expect(!logLines.isEmpty)
        for line in logLines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] as? String != nil, "\(line)")
            #expect(object?["message"] as? String != nil)
            #expect(object?["timestamp"] as? String != nil)
        }
        #expect(logLines.contains { $0.contains(#""message":"settings""#) && $0.contains(#""fanout.version":"#) })
        #expect(lines.last?.hasPrefix("fanout: error: invalid routes file") == true)
    }

    @Test func anUnknownLogFormatIsRefused() async throws {
        let result = try await Self.run(["run", "--log-format", "xml"])
        #expect(result.status == 1)
        #expect(result.standardError == "fanout: error: --log-format: \"xml\" is not text or json\n")
    }
}

extension CommandLineTests {
    @Test(arguments: [
        (["--start-position", "AT_TIMESTAMP"], "--start-position: AT_TIMESTAMP needs --start-timestamp (FANOUT_START_TIMESTAMP)"),
        (["--start-position", "AT_TIMESTAMP", "--start-timestamp", "yesterday"], #"--start-timestamp: "yesterday" is not an ISO-8601 time such as 2025-01-31T12:00:00Z"#),
        (["--start-timestamp", "2025-01-31T12:00:00Z"], "--start-timestamp: a start timestamp is only used with --start-position AT_TIMESTAMP"),
        (["--start-position", "EARLIEST"], #"--start-position: "EARLIEST" is not TRIM_HORIZON, LATEST or AT_TIMESTAMP"#),
    ])
    func startPositionAndTimestampMistakesAreOneClearLine(arguments: [String], message: String) async throws {
        let result = try await Self.run(
            ["run", "--brokers", "127.0.0.1:1", "--kinesis-stream", "s"] + arguments,
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"]
        )
        #expect(result.status == 1)
        #expect(result.standardError == "fanout: error: \(message)\n")
    }

    @Test func runFailsWhenTheKinesisStreamDoesNotExist() async throws {
        let endpoint = try TestServices.awsEndpoint()
        let result = try await Self.run(
            ["run", "--http-port", "0", "--brokers", try TestServices.kafkaBrokers(), "--kinesis-stream", "no-such-stream",
             "--start-position", "AT_TIMESTAMP", "--start-timestamp", "2025-01-31T12:00:00.500+01:00",
             "--routes", TestServices.packageRoot.appendingPathComponent("routes.json").path],
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": endpoint]
        )
        #expect(result.status == 1)
        #expect(result.standardError.hasSuffix("fanout: error: Kinesis stream \"no-such-stream\" does not exist in us-east-1 at \(endpoint)\n"), "\(result.standardError)")
    }
}
