import AWS
import AsyncHTTPClient
import Foundation
import Kafka
import Logging
import Router
import Settings
import StreamReader

#if canImport(Glibc)
import Glibc
#endif

/// The checks `fanout run` makes before it starts anything, and `fanout config --check` makes as a pre-flight:
/// each throws one line naming the setting, what is wrong and the fix, or returns one line saying what it found.
public enum Preflight {
    /// The routes file loads and is valid.
    public static func checkRoutes(path: String) throws -> String {
        do {
            let file = try RoutesFile.load(path: path)
            return "routes: \(path) is valid (\(plural(file.routes.count, "route")), \(plural(file.allTopics.count, "topic")))"
        } catch {
            throw StartupError("invalid routes file: \(error.issues.first!.description)" + (error.issues.count > 1 ? " (and \(error.issues.count - 1) more; run `fanout routes check \(path)`)" : ""))
        }
    }

    /// The status server can listen on `host:port` (port 0 always can); `setting` names where the port was set.
    public static func checkPort(_ port: Int, host: String = "0.0.0.0", setting: String) throws -> String {
        guard port != 0 else { return "http: port 0: a free port is picked at start-up" }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let address = found else {
            throw StartupError("\(Setting.httpHost.flagName): \"\(host)\" is not an address of this host to listen on")
        }
        defer { freeaddrinfo(found) }
        let descriptor = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard descriptor >= 0 else { throw StartupError("\(setting): cannot open a socket: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        // As the server binds: with SO_REUSEADDR, so a port left in TIME_WAIT by a previous run counts as free.
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(descriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            throw StartupError("\(setting): cannot listen on \(host):\(port) for /healthz, /readyz, /status and /metrics: \(String(cString: strerror(errno))); choose another port with \(Setting.httpPort.flagName) (\(Setting.httpPort.environmentName)), or 0 for a free one")
        }
        return "http: \(host):\(port) is free"
    }

    /// The source exists and suits: a table with a stream whose records carry the new image (and, with
    /// `--stream-arn` too, that it is the table's stream), a stream ARN of such a stream, or a Kinesis stream.
    public static func checkSource(_ configuration: SidecarConfiguration, logger: Logger) async throws -> String {
        let httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .forAWS())
        do {
            let line = try await checkSource(configuration, httpClient: httpClient, logger: logger)
            try? await httpClient.shutdown()
            return line
        } catch {
            try? await httpClient.shutdown()
            throw error
        }
    }

    private static func checkSource(_ configuration: SidecarConfiguration, httpClient: HTTPClient, logger: Logger) async throws -> String {
        let aws = configuration.aws
        if let stream = configuration.kinesisStream {
            let name = stream.hasPrefix("arn:") ? KinesisSource.streamName(fromARN: stream) ?? stream : stream
            do {
                let summary = try await Kinesis(configuration: aws, httpClient: httpClient, logger: logger).describeStreamSummary(name: name)
                return "source: Kinesis stream \(summary.streamARN) (\(summary.status))"
            } catch let error as AWSError where error.type == AWSError.resourceNotFound {
                throw StartupError("Kinesis stream \"\(name)\" does not exist in \(aws.region) at \(aws.endpoint(for: .kinesis))")
            } catch {
                throw StartupError("cannot describe Kinesis stream \"\(name)\": \(error)")
            }
        }
        guard let table = configuration.tableName else {
            guard let arn = configuration.streamARN else { throw StartupError("no source") }
            let description: StreamDescription
            do {
                description = try await DynamoDBStreams(configuration: aws, httpClient: httpClient, logger: logger).describeStream(streamARN: arn, limit: 1)
            } catch let error as AWSError where error.type == "ResourceNotFoundException" {
                throw StartupError("\(Setting.streamArn.flagName) \(arn): no such stream in \(aws.region) at \(aws.endpoint(for: .dynamoDBStreams))")
            } catch {
                throw StartupError("cannot describe stream \(arn): \(error)")
            }
            try checkViewType(description.streamViewType, of: description.tableName.map { "table \"\($0)\"" } ?? "stream \(arn)", table: description.tableName)
            return "source: DynamoDB stream \(arn) (\(description.streamViewType?.rawValue ?? "view type unknown"))"
        }
        let (description, arn) = try await tableStream(table, aws: aws, httpClient: httpClient, logger: logger)
        if let given = configuration.streamARN, given != arn {
            throw StartupError("\(Setting.streamArn.flagName) \(given) is not the stream of table \"\(table)\" (\(arn)); checkpoints are kept per stream, so another stream would be read from its start: drop \(Setting.streamArn.flagName) or give the table's stream")
        }
        try checkViewType(description.streamSpecification?.viewType, of: "table \"\(table)\"", table: table)
        return "source: table \"\(table)\", stream \(arn) (\(description.streamSpecification?.viewType?.rawValue ?? "view type unknown"))"
    }

    /// The events table's description and its stream's ARN; one line naming the table when it does not exist, cannot
    /// be described, or has no stream enabled.
    static func tableStream(
        _ table: String, aws: AWSConfiguration, httpClient: HTTPClient, logger: Logger
    ) async throws -> (description: TableDescription, streamARN: String) {
        let description: TableDescription
        do {
            description = try await DynamoDB(configuration: aws, httpClient: httpClient, logger: logger).describeTable(table)
        } catch let error as AWSError where error.type == "ResourceNotFoundException" {
            throw StartupError("table \"\(table)\" does not exist in \(aws.region) at \(aws.endpoint(for: .dynamoDB))")
        } catch {
            throw StartupError("cannot describe table \"\(table)\": \(error)")
        }
        guard let arn = description.latestStreamARN, description.streamSpecification?.enabled ?? true else {
            throw StartupError("table \"\(table)\" has no stream enabled; enable one: aws dynamodb update-table --table-name \(table) --stream-specification StreamEnabled=true,StreamViewType=NEW_IMAGE")
        }
        return (description, arn)
    }

    /// Fanout reads each event from the record's new image: KEYS_ONLY and OLD_IMAGE streams carry none.
    static func checkViewType(_ viewType: StreamViewType?, of subject: String, table: String?) throws {
        guard let viewType, viewType != .newImage, viewType != .newAndOldImages else { return }
        throw StartupError(
            "\(subject): the stream's view type is \(viewType.rawValue), but Fanout reads each event from the new image: "
                + "give the table a NEW_IMAGE (or NEW_AND_OLD_IMAGES) stream: aws dynamodb update-table --table-name \(table ?? "TABLE") "
                + "--stream-specification StreamEnabled=false, then again with StreamEnabled=true,StreamViewType=NEW_IMAGE")
    }

    /// The brokers answer within `timeout`.
    public static func checkKafka(_ configuration: SidecarConfiguration, timeout: Duration = .seconds(5), logger: Logger) async throws -> String {
        let admin = try KafkaAdmin(configuration: configuration.kafka, logger: logger)
        defer { admin.close() }
        do {
            let topics = try await admin.listTopics(timeout: timeout)
            return "kafka: \(configuration.brokers) answers (\(plural(topics.count, "topic")))"
        } catch {
            throw StartupError("Kafka is not reachable at \(configuration.brokers): \(error)")
        }
    }

    /// "1 topic", "2 topics".
    static func plural(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }
}
