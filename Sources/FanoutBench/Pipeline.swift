import AsyncHTTPClient
import Contracts
import Delivery
import Foundation
import Kafka
import Logging
import NIOCore
import Router

#if canImport(Glibc)
import Glibc
#endif

/// Pipeline throughput (3a) and memory (3e): the real `fanout` binary reads the
/// fast stream source, routes, and produces to a broker; kcat producing the same
/// records to the same broker is the baseline. Prints Markdown table rows.
struct PipelineBench {
    var fanoutPath: String
    var events: Int
    var shards: Int
    var workDirectory: URL
    var http: HTTPClient { .shared }
    let logger: Logger = {
        var logger = Logger(label: "fanout-bench")
        logger.logLevel = .error
        return logger
    }()

    struct Result {
        var records: Int
        var seconds: Double
        var recordsPerSecond: Double { Double(records) / seconds }
        var eventsPerSecond: Double { recordsPerSecond / PipelineEvents.fanOut }
        var peakRSS: Int
        /// fanout's (or kcat's) CPU time (user + system) over the measured interval, in seconds.
        var cpuSeconds: Double? = nil
        /// This process's CPU time over the same interval: the stream source and, on the mock cluster, the brokers.
        var benchCPUSeconds: Double? = nil
        var outagePeakRSS: Int?
        var outageSeconds: Double?
    }

    /// Runs Fanout and kcat against `brokers` (nil: a mock cluster of 3 brokers started here) and prints rows.
    func run(brokers externalBrokers: String?, label: String, outage: Duration?) async throws {
        let mock = externalBrokers == nil ? try KafkaMockCluster(brokers: 3, logger: logger) : nil
        let brokers = externalBrokers ?? mock!.bootstrapServers
        let run = UUID().uuidString.prefix(8).lowercased()
        let applications = ["bench-\(run)-a", "bench-\(run)-b"]
        if let mock {
            // The mock cluster has no controller, so no CreateTopics: every topic exists before fanout starts.
            for topic in try RoutesFile.parse(Array(PipelineEvents.routesJSON.utf8), file: "routes.json").allTopics {
                try mock.createTopic(name: topic.name, partitions: Int(topic.settings.partitions))
            }
            for application in applications { try mock.createTopic(name: CheckpointRecords.topic(application: application), partitions: 1) }
        }
        // kcat's own copies of the four topics (6 partitions each, as fanout's): a later run that reads fanout's
        // topics on the same broker does not read kcat's records too.
        // The earlier baseline, one kcat to one topic of 6 partitions, is kept beside it for comparison.
        let kcatSuffix = ".kcat-\(run)", kcatOneTopic = "bench.kcat-one-\(run)"
        let kcatTopics = PipelineEvents.topics.map { $0 + kcatSuffix } + [kcatOneTopic]
        if let mock {
            for topic in kcatTopics { try mock.createTopic(name: topic, partitions: 6) }
        } else {
            let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger)
            try await admin.createTopics(kcatTopics.map { KafkaTopicSpecification(name: $0, partitions: 6, replicationFactor: 1, configs: [:]) })
            admin.close()
        }

        let source = StreamSource(events: events, shardCount: shards)
        let sourcePort = try await source.start()
        let routesPath = workDirectory.appendingPathComponent("routes.json").path
        try PipelineEvents.routesJSON.write(toFile: routesPath, atomically: true, encoding: .utf8)
        let expected = (0..<events).reduce(0) { $0 + PipelineEvents.targets($1).count }

        let fanout = try await runFanout(
            brokers: brokers, sourcePort: sourcePort, routesPath: routesPath, application: applications[0], expected: expected, outage: nil
        )
        let kcat = try runKcat(brokers: brokers) { $0 + kcatSuffix }
        let kcatOne = try runKcat(brokers: brokers) { _ in kcatOneTopic }
        let notes = "\(events) events of \(source.eventBytes) B from \(shards) shards, \(expected) records; \(label)"
        Bench.row("pipeline, Fanout, \(label)", fanout.eventsPerSecond, "events/s", notes)
        Bench.row("pipeline, Fanout, \(label)", fanout.recordsPerSecond, "records/s", "acknowledged Kafka records")
        Bench.row("pipeline, kcat baseline, \(label)", kcat.recordsPerSecond, "records/s", "the same \(kcat.records) records, pre-rendered, to copies of the \(PipelineEvents.topics.count) topics, one kcat -P a topic, at once")
        Bench.row("pipeline, Fanout / kcat, \(label)", fanout.recordsPerSecond / kcat.recordsPerSecond, "ratio", "records/s over records/s")
        Bench.row(
            "pipeline, kcat to one topic, \(label)", kcatOne.recordsPerSecond, "records/s",
            "the same records, one kcat -P to one topic of 6 partitions (the baseline before 2026-12-02); Fanout / this: "
                + String(format: "%.2f", fanout.recordsPerSecond / kcatOne.recordsPerSecond)
        )
        if let cpu = fanout.cpuSeconds {
            let events = Double(fanout.records) / PipelineEvents.fanOut
            Bench.row(
                "CPU used by fanout, \(label)", cpu / fanout.seconds, "cores",
                "user + system CPU time over the measured interval (\(String(format: "%.2f", cpu)) s in \(String(format: "%.2f", fanout.seconds)) s), of 2 cores"
            )
            Bench.row(
                "CPU of fanout per event, \(label)", cpu / events * 1e6, "µs",
                "that CPU time over the events routed in the interval (every thread: decoding, routing, librdkafka, HTTP)"
            )
            if let bench = fanout.benchCPUSeconds {
                Bench.row(
                    "CPU of the bench process per event, \(label)", bench / events * 1e6, "µs",
                    mock == nil
                        ? "fanout-bench's CPU time over the same interval and events: the stream source (the broker is another process)"
                        : "fanout-bench's CPU time over the same interval and events: the stream source and the 3 mock brokers"
                )
            }
        }
        if let cpu = kcat.cpuSeconds, let bench = kcat.benchCPUSeconds {
            Bench.row(
                "CPU of kcat per record, \(label)", cpu / Double(kcat.records) * 1e6, "µs",
                "kcat's user + system CPU time (getrusage of the waited child) over its records"
            )
            if mock != nil {
                Bench.row(
                    "CPU of the mock brokers per record, kcat run, \(label)", bench / Double(kcat.records) * 1e6, "µs",
                    "fanout-bench's CPU time while kcat ran (the source idle) over kcat's records"
                )
            }
        }
        Bench.row("peak RSS of fanout, steady state, \(label)", Double(fanout.peakRSS) / 1024, "MB", "VmHWM over the run above")

        if let outage, let mock {
            let result = try await runFanout(
                brokers: brokers, sourcePort: sourcePort, routesPath: routesPath, application: applications[1], expected: expected,
                outage: (duration: outage, down: { for id in mock.brokerIDs { try mock.setBroker(id, up: false) } },
                         up: { for id in mock.brokerIDs { try mock.setBroker(id, up: true) } })
            )
            let seconds = Double(outage.components.seconds)
            Bench.row("peak RSS of fanout, \(Int(seconds)) s broker outage, \(label)", Double(result.outagePeakRSS ?? 0) / 1024, "MB",
                      "all 3 brokers down while the stream still held a backlog; every record acked after (\(result.records))")
            Bench.row("peak RSS of fanout, whole outage run, \(label)", Double(result.peakRSS) / 1024, "MB", "VmHWM")
        }
    }

    typealias Outage = (duration: Duration, down: () throws -> Void, up: () throws -> Void)

    private func runFanout(
        brokers: String, sourcePort: Int, routesPath: String, application: String, expected: Int, outage: Outage?
    ) async throws -> Result {
        let statusPort = try Self.freePort()
        let logPath = workDirectory.appendingPathComponent("fanout-\(application).log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fanoutPath)
        process.arguments = ["run"]
        var environment = ProcessInfo.processInfo.environment
        environment.merge([
            "FANOUT_BROKERS": brokers, "FANOUT_ROUTES": routesPath, "FANOUT_STREAM_ARN": StreamSource.streamARN,
            "FANOUT_APPLICATION": application, "FANOUT_HTTP_PORT": String(statusPort), "FANOUT_LOG_LEVEL": "warning",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:\(sourcePort)", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        ]) { $1 }
        environment["AWS_PROFILE"] = nil
        process.environment = environment
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
        func failure(_ what: String) -> BenchError {
            let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
            return BenchError("fanout (\(application)): \(what); its log \(logPath) ends:\n\(tail)")
        }

        let deadline = ContinuousClock.now + .seconds(180)
        var first: (count: Int, at: ContinuousClock.Instant)?
        var firstCPU: Double?
        var firstBenchCPU: Double?
        var last = (count: 0, at: ContinuousClock.now)
        var outagePeak: Int?
        var outageStarted: ContinuousClock.Instant?
        var outageDone = outage == nil
        while last.count < expected {
            guard process.isRunning else { throw failure("exited with status \(process.terminationStatus)") }
            guard ContinuousClock.now < deadline else { throw failure("only \(last.count) of \(expected) records acknowledged after 180 s") }
            try await Task.sleep(for: .milliseconds(50))
            guard let count = await acknowledged(statusPort: statusPort) else { continue }
            let now = ContinuousClock.now
            if count > 0, first == nil {
                first = (count, now)
                firstCPU = Self.cpuSeconds(pid: process.processIdentifier)
                firstBenchCPU = Self.cpuSeconds(pid: getpid())
            }
            last = (count, now)
            if let outage, !outageDone {
                if outageStarted == nil, count >= expected / 10 {
                    try outage.down()
                    outageStarted = now
                    outagePeak = Self.rss(pid: process.processIdentifier).current
                } else if let started = outageStarted {
                    outagePeak = max(outagePeak ?? 0, Self.rss(pid: process.processIdentifier).current)
                    if now - started >= outage.duration {
                        try outage.up()
                        outageDone = true
                    }
                }
            }
        }
        let peak = Self.rss(pid: process.processIdentifier).peak
        let lastCPU = Self.cpuSeconds(pid: process.processIdentifier)
        let lastBenchCPU = Self.cpuSeconds(pid: getpid())
        process.terminate()
        process.waitUntilExit()
        guard let first, last.at > first.at else { throw failure("finished before two samples") }
        let elapsed = last.at - first.at
        return Result(
            records: last.count - first.count,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            peakRSS: peak, cpuSeconds: firstCPU.flatMap { start in lastCPU.map { $0 - start } },
            benchCPUSeconds: firstBenchCPU.flatMap { start in lastBenchCPU.map { $0 - start } }, outagePeakRSS: outagePeak
        )
    }

    /// CPU time (user + system) `pid` has used, in seconds (`/proc/<pid>/stat` fields 14 and 15).
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)": field 3 is the state, so utime (14) and stime (15) are the 12th and 13th here.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// CPU time (user + system) of every child process waited for so far, in seconds (`getrusage(RUSAGE_CHILDREN)`).
    static func childrenCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Acknowledged Kafka records so far, from `GET /status` (nil while it does not answer).
    private func acknowledged(statusPort: Int) async -> Int? {
        do {
            let response = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(statusPort)/status"), timeout: .seconds(2))
            let body = try await response.body.collect(upTo: 16 << 20)
            guard let status = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
                let counts = status["counts"] as? [String: Any], let routed = counts["routedByTopic"] as? [String: Any]
            else { return nil }
            return routed.values.reduce(0) { $0 + (($1 as? Int) ?? 0) }
        } catch {
            return nil
        }
    }

    /// kcat producing the records Fanout writes (same keys and values) on the same broker, each to the topic
    /// `kcatTopic` names for its fanout topic: one `kcat -P` a topic, all at once, each with that topic's records
    /// in Fanout's order; timed from the first start to the last exit.
    private func runKcat(brokers: String, kcatTopic: (String) -> String) throws -> Result {
        var texts: [String: String] = [:]
        var records = 0
        for index in 0..<events {
            let line = "\(PipelineEvents.event(index).aggregateID)\t\(PipelineEvents.plainJSON(index))\n"
            for topic in PipelineEvents.targets(index) {
                texts[kcatTopic(topic), default: ""] += line
                records += 1
            }
        }
        var processes: [(topic: String, process: Process, errors: String)] = []
        for (topic, text) in texts.sorted(by: { $0.key < $1.key }) {
            let path = workDirectory.appendingPathComponent("kcat-records-\(topic).txt").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "kcat", "-P", "-b", brokers, "-t", topic, "-K", "\t", "-l",
                "-X", "enable.idempotence=true", "-X", "acks=all", "-X", "partitioner=murmur2_random",
                "-X", "max.in.flight.requests.per.connection=5", "-X", "linger.ms=5",
                "-H", "content-type=application/json", "-H", "fanout-route=bench", path,
            ]
            // Standard error to a file, read once kcat has exited: no pipe to drain while it runs.
            let errors = workDirectory.appendingPathComponent("kcat-errors-\(topic).txt").path
            FileManager.default.createFile(atPath: errors, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
            processes.append((topic, process, errors))
        }
        let start = ContinuousClock.now
        let childrenBefore = Self.childrenCPUSeconds(), benchBefore = Self.cpuSeconds(pid: getpid())
        for entry in processes { try entry.process.run() }
        var failures: [String] = []
        for entry in processes {
            entry.process.waitUntilExit()
            let stderr = String(decoding: try Data(contentsOf: URL(fileURLWithPath: entry.errors)), as: UTF8.self)
            if entry.process.terminationStatus != 0 || stderr.contains("Failed") {
                failures.append("kcat -P -t \(entry.topic) failed (status \(entry.process.terminationStatus)): \(stderr.prefix(400))")
            }
        }
        let elapsed = ContinuousClock.now - start
        let childrenAfter = Self.childrenCPUSeconds(), benchAfter = Self.cpuSeconds(pid: getpid())
        guard failures.isEmpty else { throw BenchError(failures.joined(separator: "; ")) }
        return Result(
            records: records, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, peakRSS: 0,
            cpuSeconds: childrenAfter - childrenBefore, benchCPUSeconds: benchBefore.flatMap { start in benchAfter.map { $0 - start } }
        )
    }

    /// Current and peak resident set size of `pid`, in KiB (`VmRSS`, `VmHWM`).
    static func rss(pid: Int32) -> (current: Int, peak: Int) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// A free TCP port on 127.0.0.1.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw BenchError("cannot bind a port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
