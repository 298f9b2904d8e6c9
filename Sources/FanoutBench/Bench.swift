import AWS
import CQRSCore
import Contracts
import Foundation
import JSON
import Kafka
import NIOCore
import Router

/// `fanout-bench`: micro-benchmarks of the routing path, run by scripts/bench in release mode.
/// Prints one Markdown table row per measurement: | benchmark | value | unit | notes |.
@main
struct Bench {
    static func main() async {
        do {
            try await run(Array(CommandLine.arguments.dropFirst()))
        } catch {
            // write(contentsOf:) retries on EINTR and throws the rest; there is nothing left to report that to.
            try? FileHandle.standardError.write(contentsOf: Data("fanout-bench: error: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run(_ arguments: [String]) async throws {
        if arguments.first == "pipeline" { return try await pipeline(arguments.dropFirst()) }
        if arguments.first == "latency" { return try await latency(arguments.dropFirst()) }
        if arguments.first == "routing-cpu" { return try routingCPU(arguments.dropFirst()) }
        let selected = Set(arguments)
        func wants(_ name: String) -> Bool { selected.isEmpty || selected.contains(name) }
        if wants("matching") { try matching() }
        if wants("content") { try content() }
        if wants("decoding") { try decoding() }
        if wants("planning") { try planning() }
        if wants("routing") { try routingPages() }
        if wants("reload") { try reload() }
    }

    static func options(_ arguments: ArraySlice<String>, command: String) throws -> [String: String] {
        var options: [String: String] = [:]
        var rest = arguments
        while let name = rest.popFirst() {
            guard name.hasPrefix("--"), let value = rest.popFirst() else { throw BenchError("\(command): expected --name value, found \(name)") }
            options[String(name.dropFirst(2))] = value
        }
        return options
    }

    static func integer(_ options: [String: String], _ name: String, _ fallback: Int, command: String) throws -> Int {
        guard let text = options[name] else { return fallback }
        guard let value = Int(text), value >= 0 else { throw BenchError("\(command): --\(name) \(text) is not a non-negative integer") }
        return value
    }

    static func workDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fanout-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// `fanout-bench latency --fanout PATH --brokers HOST:PORT --aws-endpoint URL [--rate N] [--seconds N] [--stages-csv PATH]`.
    static func latency(_ arguments: ArraySlice<String>) async throws {
        let options = try options(arguments, command: "latency")
        guard let fanout = options["fanout"], let brokers = options["brokers"], let endpoint = options["aws-endpoint"] else {
            throw BenchError("latency: --fanout PATH, --brokers HOST:PORT and --aws-endpoint URL are required")
        }
        let directory = try workDirectory()
        let bench = LatencyBench(
            fanoutPath: fanout, brokers: brokers, awsEndpoint: endpoint,
            rate: max(1, try integer(options, "rate", 50, command: "latency")), seconds: max(1, try integer(options, "seconds", 20, command: "latency")),
            workDirectory: directory, stagesCSVPath: options["stages-csv"]
        )
        try await bench.run()
        try? FileManager.default.removeItem(at: directory)
    }

    /// `fanout-bench pipeline --fanout PATH [--brokers HOST:PORT] [--events N] [--shards N] [--outage SECONDS] [--label TEXT]`:
    /// the end-to-end pipeline against kcat (on a mock cluster started here unless `--brokers` is given).
    static func pipeline(_ arguments: ArraySlice<String>) async throws {
        let options = try options(arguments, command: "pipeline")
        guard let fanout = options["fanout"] else { throw BenchError("pipeline: --fanout PATH (the fanout binary) is required") }
        let directory = try workDirectory()
        let bench = PipelineBench(
            fanoutPath: fanout, events: max(1, try integer(options, "events", 100_000, command: "pipeline")),
            shards: max(1, try integer(options, "shards", 4, command: "pipeline")), workDirectory: directory
        )
        let outage = try integer(options, "outage", 0, command: "pipeline")
        try await bench.run(
            brokers: options["brokers"], label: options["label"] ?? (options["brokers"] == nil ? "mock cluster" : "broker"),
            outage: outage > 0 ? .seconds(outage) : nil
        )
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `body` repeatedly for about `seconds`; returns operations per second (best of 3 runs).
    static func rate(operationsPerCall: Int, seconds: Double = 1.0, _ body: () -> Void) -> Double {
        var best = 0.0
        for _ in 0..<3 {
            var calls = 0
            let start = ContinuousClock.now
            var elapsed = 0.0
            repeat {
                body()
                calls += 1
                let duration = ContinuousClock.now - start
                elapsed = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
            } while elapsed < seconds
            best = max(best, Double(calls * operationsPerCall) / elapsed)
        }
        return best
    }

    static func row(_ name: String, _ value: Double, _ unit: String, _ notes: String = "") {
        let formatted = value >= 100 ? String(Int(value.rounded())) : String(format: "%.2f", value)
        print("| \(name) | \(formatted) | \(unit) | \(notes) |")
    }

    static func routesFile(routes: Int) throws -> RoutesFile {
        var text = #"{"version": 1, "topics": {"t0": {}, "t1": {}, "t2": {}}, "routes": ["#
        text += (0..<routes).map { #"{"name": "r\#($0)", "events": ["Event\#($0)"], "to": ["t\#($0 % 3)"]}"# }.joined(separator: ",")
        text += "]}"
        return try RoutesFile.parse(Array(text.utf8), file: "bench.json")
    }

    static func event(_ name: String, payload: JSONValue = [:]) -> GenericDomainEventMessage {
        GenericDomainEventMessage(eventName: name, aggregateID: "order-1", aggregateType: "Order", sequenceNumber: 1, payload: payload)
    }

    /// Name-only routing with 1, 100 and 10,000 routes: every event matches exactly one route.
    static func matching() throws {
        var rates: [Int: Double] = [:]
        for count in [1, 100, 10_000] {
            let routes = CompiledRoutes(try routesFile(routes: count))
            let events = (0..<1024).map { event("Event\($0 % count)") }
            var matched = 0
            rates[count] = rate(operationsPerCall: events.count) {
                for event in events { matched &+= routes.targets(for: event).count }
            }
            precondition(matched > 0)
            row("name-only matching, \(count) route\(count == 1 ? "" : "s")", rates[count]!, "events/s", "one core; each event matches one route")
        }
        row("name-only matching, 10,000 / 1 routes", rates[10_000]! / rates[1]!, "ratio", "1.0 = cost independent of the number of routes")
    }

    /// Content patterns (numeric, prefix, anything-but, exists, nested fields, $or) on ~1 KB events.
    static func content() throws {
        let text = #"""
            {"version": 1, "topics": {"orders": {}, "fraud": {}, "vip": {}, "eu": {}},
             "routes": [
               {"name": "orders", "events": ["Order*"], "to": ["orders"]},
               {"name": "big", "events": ["OrderPlaced"], "where": {"payload": {"total": [{"numeric": [">", 1000]}]}}, "to": ["fraud"]},
               {"name": "vip", "events": ["OrderPlaced"], "where": {"payload": {"customer": {"tier": ["Gold", "Platinum"]}, "coupon": [{"exists": false}]}}, "to": ["vip"]},
               {"name": "eu", "events": ["OrderPlaced"], "where": {"$or": [{"payload": {"currency": [{"anything-but": ["USD", "GBP"]}]}}, {"payload": {"source": [{"cidr": "10.0.0.0/8"}]}}]}, "to": ["eu"]}
             ]}
            """#
        let routes = CompiledRoutes(try RoutesFile.parse(Array(text.utf8), file: "bench.json"))
        let events = (0..<256).map { event("OrderPlaced", payload: PipelineEvents.payload($0)) }
        let size = events[0].jsonBytes().count
        var matched = 0
        let value = rate(operationsPerCall: events.count) {
            for event in events { matched &+= routes.targets(for: event).count }
        }
        precondition(matched > 0)
        row("content-pattern matching, 4 routes (3 with where)", value, "events/s", "one core; events of \(size) bytes")
    }

    /// DynamoDB Streams wire JSON → StreamRecord → GenericDomainEventMessage.
    static func decoding() throws {
        let records = (0..<100).map { index -> String in
            let item = event("OrderPlaced", payload: PipelineEvents.payload(index)).item
            let image = String(decoding: try! JSONEncoder().encode(item), as: UTF8.self)
            return #"{"eventID": "e\#(index)", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": {"ApproximateCreationDateTime": 1795814466, "Keys": {"aggregateId": {"S": "order-1"}, "sequenceNumber": {"N": "\#(index)"}}, "NewImage": \#(image), "SequenceNumber": "\#(1000 + index)", "SizeBytes": 1100, "StreamViewType": "NEW_AND_OLD_IMAGES"}}"#
        }
        let body = Array(#"{"Records": [\#(records.joined(separator: ","))], "NextShardIterator": "it"}"#.utf8)
        var decoded = 0
        // Before: Foundation's JSONDecoder through the Codable conformances (what GetRecords used until issue 9).
        let before = rate(operationsPerCall: 100) {
            let page = try! JSONDecoder().decode(GetRecordsOutput.self, from: Data(body))
            for record in page.records {
                if let image = record.newImage, (try? GenericDomainEventMessage(item: image)) != nil { decoded += 1 }
            }
        }
        // After: JSONScanner straight from the bytes (what DynamoDBStreams.getRecords uses now).
        let after = rate(operationsPerCall: 100) {
            let page = try! GetRecordsOutput(jsonBytes: body)
            for record in page.records {
                if let image = record.newImage, (try? GenericDomainEventMessage(item: image)) != nil { decoded += 1 }
            }
        }
        let page = try GetRecordsOutput(jsonBytes: body)
        let pageOnly = rate(operationsPerCall: 100) { decoded &+= (try! GetRecordsOutput(jsonBytes: body)).records.count }
        let eventsOnly = rate(operationsPerCall: 100) {
            for record in page.records where (try? GenericDomainEventMessage(item: record.newImage!)) != nil { decoded += 1 }
        }
        precondition(decoded > 0)
        let size = body.count / 100
        row("decoding GetRecords pages to events, JSONDecoder (before)", before, "records/s", "one core; 100 records of \(size) bytes a page")
        row("decoding GetRecords pages to events, JSONScanner (after)", after, "records/s", "one core; same pages")
        row("decoding, after / before", after / before, "ratio", "same run")
        row("of which: GetRecords body → StreamRecords", pageOnly, "records/s", "one core")
        row("of which: NewImage → GenericDomainEventMessage", eventsOnly, "records/s", "one core")
    }

    /// StreamRecord → the Kafka records of its fan-out (FanOutPlanner.plan), name-only routes as in the pipeline
    /// benchmark: through a GenericDomainEventMessage (before) and straight from the item (after).
    static func planning() throws {
        let text = #"""
            {"version": 1, "topics": {"orders": {}, "billing": {}, "payments": {}, "customers": {}},
             "routes": [
               {"name": "orders", "events": ["Order*"], "to": ["orders"]},
               {"name": "billing", "events": ["OrderPlaced", "PaymentReceived"], "to": ["billing"]},
               {"name": "payments", "events": ["Payment*"], "to": ["payments"]},
               {"name": "customers", "events": ["Customer*"], "to": ["customers"]}
             ]}
            """#
        let routes = CompiledRoutes(try RoutesFile.parse(Array(text.utf8), file: "bench.json"))
        let names = ["OrderPlaced", "PaymentReceived", "OrderShipped", "CustomerRegistered"]
        let records = (0..<256).map { index -> StreamRecord in
            var event = event(names[index % names.count], payload: PipelineEvents.payload(index % 64))
            event.metadata = MessageMetadata(correlationID: "c-\(index)", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            return StreamRecord(
                eventID: "e\(index)", eventName: "INSERT", keys: ["aggregateId": .s(event.aggregateID)],
                newImage: event.item, sequenceNumber: String(1000 + index)
            )
        }
        var results: [FanOutPlanner.Path: Double] = [:]
        for path in [FanOutPlanner.Path.reference, .direct] {
            let planner = FanOutPlanner(routes: routes, path: path)
            var written = 0
            results[path] = rate(operationsPerCall: records.count) {
                var output: [KafkaProducerRecord] = []
                output.reserveCapacity(records.count * 2)
                for record in records { _ = planner.plan(record, streamARN: "arn:bench", shardID: "shard-0", into: &output) }
                written &+= output.count
            }
            precondition(written > 0)
        }
        let size = try GenericDomainEventMessage(item: records[0].newImage!).jsonBytes().count
        row("planning events into Kafka records, through the message (before)", results[.reference]!, "events/s", "one core; 4 name-only routes, values of \(size) bytes")
        row("planning events into Kafka records, straight from the item (after)", results[.direct]!, "events/s", "one core; same events")
        row("planning, after / before", results[.direct]! / results[.reference]!, "ratio", "same run")
    }

    /// A GetRecords body → the Kafka records of its events (decoding and planning, the router's CPU per event
    /// short of HTTP and librdkafka), NewImages built as `AttributeValue` trees (before) and kept as typed
    /// JSON, each value written from its bytes (after).
    static func routingPages() throws {
        let (page, planner) = try routingWork()
        let count = try GetRecordsOutput(jsonBytes: page).records.count
        precondition(count == 650)
        var results: [Bool: Double] = [:]
        for buildingImages in [true, false] {
            var written = 0
            results[buildingImages] = rate(operationsPerCall: 650) {
                written &+= try! route(page, with: planner, buildingImages: buildingImages)
            }
            precondition(written > 0)
        }
        let size = page.count / 650
        row("routing GetRecords pages, images built (before)", results[true]!, "events/s", "one core; body → Kafka records, 650 records of \(size) bytes a page, the pipeline's routes")
        row("routing GetRecords pages, images as typed JSON (after)", results[false]!, "events/s", "one core; same pages")
        row("routing pages, after / before", results[false]! / results[true]!, "ratio", "same run")
    }

    /// The work of the routing benchmarks: a GetRecords body of the pipeline benchmark's records (the stream
    /// source's bytes), and a planner for the pipeline's routes.
    static func routingWork() throws -> (page: [UInt8], planner: FanOutPlanner) {
        let routes = CompiledRoutes(try RoutesFile.parse(Array(PipelineEvents.routesJSON.utf8), file: "bench.json"))
        let source = StreamSource(events: StreamSource.maximumPageRecords, shardCount: 1)
        let answer = source.answer(target: "DynamoDBStreams_20120810.GetRecords", body: Array(#"{"ShardIterator":"0/0","Limit":1000}"#.utf8))
        return (Array(answer.body.readableBytesView), FanOutPlanner(routes: routes))
    }

    /// Routes one page: its body read (images built or kept as typed JSON) and planned into Kafka records;
    /// how many were written.
    static func route(_ page: [UInt8], with planner: FanOutPlanner, buildingImages: Bool) throws -> Int {
        let records = try GetRecordsOutput(jsonBytes: page, buildingImages: buildingImages).records
        var output: [KafkaProducerRecord] = []
        output.reserveCapacity(records.count * 2)
        for record in records { _ = planner.plan(record, streamARN: "arn:bench", shardID: "shard-0", into: &output) }
        return output.count
    }

    /// `fanout-bench routing-cpu [--pages N] [--runs N]`: the *after* half of `routing` (a page's records, images as
    /// typed JSON, into Kafka records), timed by the thread's CPU clock instead of the wall clock, so that other work
    /// sharing the cores does not count (for A/B comparisons while the cores are busy): CPU per event, the best and
    /// the median of the runs.
    static func routingCPU(_ arguments: ArraySlice<String>) throws {
        let options = try options(arguments, command: "routing-cpu")
        let pages = max(1, try integer(options, "pages", 200, command: "routing-cpu"))
        let runs = max(1, try integer(options, "runs", 7, command: "routing-cpu"))
        let (page, planner) = try routingWork()
        var written = 0
        var perEvent: [Double] = []
        for _ in 0..<runs {
            let start = threadCPUSeconds()
            for _ in 0..<pages { written &+= try route(page, with: planner, buildingImages: false) }
            perEvent.append((threadCPUSeconds() - start) / Double(pages * StreamSource.maximumPageRecords) * 1e6)
        }
        precondition(written > 0)
        perEvent.sort()
        row("routing GetRecords pages, images as typed JSON, CPU, best", perEvent[0], "µs an event", "thread CPU time; \(runs) runs of \(pages) pages")
        row("routing GetRecords pages, images as typed JSON, CPU, median", perEvent[runs / 2], "µs an event", "same runs")
    }

    /// The calling thread's CPU time so far.
    static func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Compiling and swapping in a routes file of 10,000 routes.
    static func reload() throws {
        var text = #"{"version": 1, "topics": {"t0": {}, "t1": {}, "t2": {}}, "routes": ["#
        text += (0..<10_000).map { #"{"name": "r\#($0)", "events": ["Event\#($0)", "Prefix\#($0)*"], "to": ["t\#($0 % 3)"]}"# }.joined(separator: ",")
        text += "]}"
        let bytes = Array(text.utf8)
        let live = LiveRoutes(CompiledRoutes(try RoutesFile.parse(Array(#"{"version": 1, "topics": {"t": {}}, "routes": []}"#.utf8), file: "x")), path: "x")
        var best = Duration.seconds(1000)
        for _ in 0..<3 {
            let start = ContinuousClock.now
            let compiled = CompiledRoutes(try RoutesFile.parse(bytes, file: "bench.json"))
            live.replaceForBenchmark(with: compiled)
            best = min(best, ContinuousClock.now - start)
        }
        let milliseconds = Double(best.components.seconds) * 1000 + Double(best.components.attoseconds) / 1e15
        row("parse, validate, compile and swap 10,000 routes", milliseconds, "ms", "\(bytes.count / 1024) KB file, 20,000 patterns")
    }
}
