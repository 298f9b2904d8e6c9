import AWS
import CQRSCore
import Foundation
import Router

/// `fanout-bench`: micro-benchmarks of the routing path, run by scripts/bench in release mode.
/// Prints one Markdown table row per measurement: | benchmark | value | unit | notes |.
@main
struct Bench {
    static func main() throws {
        let selected = Set(CommandLine.arguments.dropFirst())
        func wants(_ name: String) -> Bool { selected.isEmpty || selected.contains(name) }
        if wants("matching") { try matching() }
        if wants("content") { try content() }
        if wants("decoding") { try decoding() }
        if wants("reload") { try reload() }
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

    /// A payload of about 1 KB.
    static func kilobytePayload(_ index: Int) -> JSONValue {
        [
            "total": .number(Double(index % 2000)), "currency": index % 3 == 0 ? "USD" : "EUR",
            "customer": ["id": .string("customer-\(index)"), "tier": index % 5 == 0 ? "Gold" : "Silver", "email": "someone@example.com"],
            "items": .array((0..<6).map { ["sku": .string("sku-\($0)-\(index)"), "qty": .number($0 + 1), "price": 19.99, "title": "A product with a long enough title"] }),
            "note": .string(String(repeating: "x", count: 200)), "source": "10.1.2.3",
        ]
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
        let events = (0..<256).map { event("OrderPlaced", payload: kilobytePayload($0)) }
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
            let item = event("OrderPlaced", payload: kilobytePayload(index)).item
            let image = String(decoding: try! JSONEncoder().encode(item), as: UTF8.self)
            return #"{"eventID": "e\#(index)", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": {"ApproximateCreationDateTime": 1795814466, "Keys": {"aggregateId": {"S": "order-1"}, "sequenceNumber": {"N": "\#(index)"}}, "NewImage": \#(image), "SequenceNumber": "\#(1000 + index)", "SizeBytes": 1100, "StreamViewType": "NEW_AND_OLD_IMAGES"}}"#
        }
        let body = Data(#"{"Records": [\#(records.joined(separator: ","))], "NextShardIterator": "it"}"#.utf8)
        var decoded = 0
        let value = rate(operationsPerCall: 100) {
            let page = try! JSONDecoder().decode(GetRecordsOutput.self, from: body)
            for record in page.records {
                if let image = record.newImage, (try? GenericDomainEventMessage(item: image)) != nil { decoded += 1 }
            }
        }
        precondition(decoded > 0)
        row("decoding GetRecords pages to events", value, "records/s", "one core; 100 records of ~1 KB a page")
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
