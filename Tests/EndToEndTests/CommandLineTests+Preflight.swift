import AWS
import AsyncHTTPClient
import Foundation
import Logging
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Misconfiguration refused before anything starts, by `run` and by `config` (`--check` for what needs the servers).
extension CommandLineTests {
    static let routesPath = TestServices.packageRoot.appendingPathComponent("routes.json").path

    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    /// The moto environment, credentials as the tables were created with.
    static func motoEnvironment() throws -> [String: String] {
        ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": try TestServices.awsEndpoint()]
    }

    /// A new events table in moto with a stream of `viewType`; its name and stream ARN.
    static func makeTable(viewType: StreamViewType) async throws -> (name: String, streamARN: String) {
        let name = TestServices.uniqueName("preflight")
        let aws = AWSConfiguration(
            region: "us-east-1", credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: try TestServices.awsEndpoint())!
        )
        let dynamoDB = DynamoDB(configuration: aws, httpClient: HTTPClient.forTests, logger: Logger(label: "test"))
        _ = try await dynamoDB.createTable(CreateTableInput(
            tableName: name, partitionKey: ("aggregateId", .string), sortKey: ("sequenceNumber", .number),
            streamSpecification: StreamSpecification(enabled: true, viewType: viewType)
        ))
        let table = try await dynamoDB.waitUntilActive(name, timeout: .seconds(30))
        return (name, try #require(table.latestStreamARN))
    }

    @Test func aKeysOnlyStreamIsRefusedByRunAndConfigCheckNamingTheTableTheViewTypeAndTheFix() async throws {
        let table = try await Self.makeTable(viewType: .keysOnly)
        let expected = "fanout: error: table \"\(table.name)\": the stream's view type is KEYS_ONLY, but Fanout reads each event from the new image: "
            + "give the table a NEW_IMAGE (or NEW_AND_OLD_IMAGES) stream: aws dynamodb update-table --table-name \(table.name) "
            + "--stream-specification StreamEnabled=false, then again with StreamEnabled=true,StreamViewType=NEW_IMAGE\n"
        // Brokers that are not there: the refusal comes before Kafka is tried.
        let run = try await Self.run(
            ["run", "--brokers", "127.0.0.1:1", "--table", table.name, "--routes", Self.routesPath, "--http-port", "0"],
            environment: try Self.motoEnvironment())
        #expect(run.status == 1)
        #expect(Self.lines(run.standardError).last.map { $0 + "\n" } == expected, "\(run.standardError)")
        #expect(!run.standardError.contains("starting fanout"))
        let byARN = try await Self.run(
            ["config", "--check", "--brokers", try TestServices.kafkaBrokers(), "--stream-arn", table.streamARN, "--routes", Self.routesPath, "--http-port", "0"],
            environment: try Self.motoEnvironment())
        #expect(byARN.status == 1)
        #expect(byARN.standardError == expected, "\(byARN.standardError)")
    }

    @Test func aStreamARNThatIsNotTheTablesStreamIsRefused() async throws {
        let table = try await Self.makeTable(viewType: .newImage)
        let other = try await Self.makeTable(viewType: .newImage)
        let arguments = ["--brokers", "127.0.0.1:1", "--table", table.name, "--stream-arn", other.streamARN, "--routes", Self.routesPath, "--http-port", "0"]
        let expected = "fanout: error: --stream-arn \(other.streamARN) is not the stream of table \"\(table.name)\" (\(table.streamARN)); "
            + "checkpoints are kept per stream, so another stream would be read from its start: drop --stream-arn or give the table's stream"
        let run = try await Self.run(["run"] + arguments, environment: try Self.motoEnvironment())
        #expect(run.status == 1)
        #expect(Self.lines(run.standardError).last == expected, "\(run.standardError)")
        let check = try await Self.run(["config", "--check"] + arguments, environment: try Self.motoEnvironment())
        #expect(check.status == 1)
        #expect(check.standardError == expected + "\n")
    }

    @Test(arguments: [
        (["--table", "t", "--kinesis-stream", "s"], "--kinesis-stream s and --table t: set one source, a Kinesis stream or a DynamoDB table/stream ARN, not both"),
        (["--stream-arn", "arn:x", "--kinesis-stream", "s"], "--kinesis-stream s and --stream-arn arn:x: set one source, a Kinesis stream or a DynamoDB table/stream ARN, not both"),
        ([], "no source: set --table (FANOUT_TABLE), --stream-arn (FANOUT_STREAM_ARN) or --kinesis-stream (FANOUT_KINESIS_STREAM)"),
        (["--table", "t", "-X", "foo.bar=1"], #"-X: foo.bar=1: unknown configuration property 'foo.bar': No such configuration property: "foo.bar""#),
        (["--table", "t", "-X", "linger.ms=abc"], #"-X: linger.ms=abc: invalid value 'abc' for configuration property 'linger.ms': Invalid value for configuration property "queue.buffering.max.ms""#),  // librdkafka names linger.ms's alias
    ])
    func sourceAndKafkaPropertyMistakesAreRefusedByRunAndConfigBeforeAnythingStarts(arguments: [String], message: String) async throws {
        // Nothing is reachable: the refusal needs no server, and it is the only line (nothing was started, nothing logged).
        let environment = ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"]
        for command in ["run", "config"] {
            let result = try await Self.run([command, "--brokers", "127.0.0.1:1"] + arguments, environment: environment)
            #expect(result.status == 1, "\(command)")
            #expect(result.standardError == "fanout: error: \(message)\n", "\(command): \(result.standardError)")
            #expect(result.standardOutput.isEmpty)
        }
    }

    @Test func aKafkaPropertyFromTheEnvironmentIsNamedByItsVariable() async throws {
        let result = try await Self.run(
            ["config", "--brokers", "127.0.0.1:1", "--table", "t"],
            environment: ["AWS_REGION": "us-east-1", "FANOUT_KAFKA_PROPERTIES": "linger.ms=5,acks=some"])
        #expect(result.status == 1)
        #expect(result.standardError.hasPrefix("fanout: error: FANOUT_KAFKA_PROPERTIES: acks=some: invalid value 'some' for configuration property 'acks'"), "\(result.standardError)")
    }

    /// A socket listening on every address at a free port, as another process holding the port would.
    static func listen() throws -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && Glibc.listen(descriptor, 1) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func aPortInUseIsOneLineNamingThePortAndItsSettingBeforeAnythingStarts() async throws {
        let (descriptor, port) = try Self.listen()
        defer { close(descriptor) }
        let run = try await Self.run(
            ["run", "--brokers", "127.0.0.1:1", "--table", "t", "--routes", Self.routesPath, "--http-port", "\(port)"],
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"])
        #expect(run.status == 1)
        #expect(Self.lines(run.standardError).last == "fanout: error: --http-port: cannot listen on 0.0.0.0:\(port) for /healthz, /readyz, /status and /metrics: Address already in use; choose another port with --http-port (FANOUT_HTTP_PORT), or 0 for a free one", "\(run.standardError)")
        #expect(!run.standardError.contains("cannot describe table"))
        let check = try await Self.run(
            ["config", "--check", "--brokers", "127.0.0.1:1", "--table", "t", "--routes", Self.routesPath],
            environment: ["AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "FANOUT_HTTP_PORT": "\(port)"])
        #expect(check.status == 1)
        #expect(check.standardError.hasPrefix("fanout: error: FANOUT_HTTP_PORT: cannot listen on 0.0.0.0:\(port)"), "\(check.standardError)")
    }

    @Test func configCheckReachesTheServersAndExitsNonZeroOnAnyProblem() async throws {
        let table = try await Self.makeTable(viewType: .newAndOldImages)
        let arguments = ["--table", table.name, "--routes", Self.routesPath, "--http-port", "0"]
        let good = try await Self.run(["config", "--check", "--brokers", try TestServices.kafkaBrokers()] + arguments, environment: try Self.motoEnvironment())
        #expect(good.status == 0, "\(good.standardError)")
        let checks = Self.lines(good.standardOutput).filter { $0.hasPrefix("ok: ") }
        #expect(checks.count == 5, "\(good.standardOutput)")
        #expect(checks.contains("ok: source: table \"\(table.name)\", stream \(table.streamARN) (NEW_AND_OLD_IMAGES)"))
        let brokers = try TestServices.kafkaBrokers()
        #expect(checks.contains { $0.hasPrefix("ok: kafka: \(brokers) answers (") })
        #expect(checks.contains { $0.hasPrefix("ok: routes: \(Self.routesPath) is valid (") })
        // Without --check, only what needs no server: the same settings pass without Kafka.
        let offline = try await Self.run(["config", "--brokers", "127.0.0.1:1"] + arguments, environment: try Self.motoEnvironment())
        #expect(offline.status == 0, "\(offline.standardError)")
        #expect(!offline.standardOutput.contains("ok: "))
        let noKafka = try await Self.run(["config", "--check", "--brokers", "127.0.0.1:1"] + arguments, environment: try Self.motoEnvironment())
        #expect(noKafka.status == 1)
        #expect(noKafka.standardError.hasPrefix("fanout: error: Kafka is not reachable at 127.0.0.1:1"), "\(noKafka.standardError)")
        let noTable = try await Self.run(
            ["config", "--check", "--brokers", try TestServices.kafkaBrokers(), "--table", "no-such-table", "--routes", Self.routesPath, "--http-port", "0"],
            environment: try Self.motoEnvironment())
        #expect(noTable.status == 1)
        #expect(noTable.standardError == "fanout: error: table \"no-such-table\" does not exist in us-east-1 at \(try TestServices.awsEndpoint())\n")
    }
}
