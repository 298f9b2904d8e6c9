import AWS
import CQRSCore
import Contracts
import Delivery
import Settings
import Foundation
import JSON
import Kafka
import Router
import StreamReader

/// One fuzz target: a parser of outside input, driven with arbitrary bytes.
///
/// `run` must return for every input; it stops the process (a finding) only when the
/// parser crashes, or when a property that must hold for every accepted input does not.
/// Errors the parser reports (thrown) are the expected answer to bad input.
public struct FuzzTarget: Sendable {
    public let name: String
    public let summary: String
    public let run: @Sendable ([UInt8]) -> Void
}

public enum FuzzTargets {
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "routes", summary: "routes file: parse, validate, compile, match sample events", run: routes),
        FuzzTarget(name: "patterns", summary: "event-name and content patterns against an event (pattern, 0xFF, event JSON)", run: patterns),
        FuzzTarget(name: "typed-json", summary: "DynamoDB typed JSON item, then read as an event and fanned out", run: typedJSON),
        FuzzTarget(name: "get-records", summary: "DynamoDB Streams GetRecords answer, every record fanned out", run: getRecords),
        FuzzTarget(name: "describe-stream", summary: "DynamoDB Streams DescribeStream answer, then shard lineage", run: describeStream),
        FuzzTarget(name: "kinesis", summary: "Kinesis GetRecords and ListShards answers", run: kinesis),
        FuzzTarget(name: "aws-error", summary: "AWS error bodies (JSON, XML, HTML) with a status (first byte)", run: awsError),
        FuzzTarget(name: "event-message", summary: "GenericDomainEventMessage JSON (a Kafka record value), round trip", run: eventMessage),
        FuzzTarget(name: "checkpoint", summary: "checkpoint record value (CheckpointRecords.decode)", run: checkpoint),
        FuzzTarget(name: "config", summary: "configuration file (SettingsLoader), then the sidecar configuration", run: config),
    ]

    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }

    // MARK: - Routes and patterns

    /// Events every compiled routes file is matched against.
    static let sampleEvents: [GenericDomainEventMessage] = [
        GenericDomainEventMessage(
            eventName: "OrderPlaced", aggregateID: "order-1", aggregateType: "Order", sequenceNumber: 1,
            payload: ["total": .number("1200.50"), "currency": "EUR", "items": [["sku": "a"], ["sku": "b"]], "source": "10.1.2.3"],
            metadata: MessageMetadata(correlationID: "c", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            messageID: "m-1", timestamp: Date(timeIntervalSince1970: 1_700_000_000)
        ),
        GenericDomainEventMessage(
            eventName: "", aggregateID: "x", aggregateType: "", sequenceNumber: 0, payload: .null,
            messageID: "", timestamp: Date(timeIntervalSince1970: 0)
        ),
        GenericDomainEventMessage(
            eventName: String(repeating: "Order", count: 200) + "Placed", aggregateID: "y", aggregateType: "Order",
            sequenceNumber: Int64.max, payload: ["nested": [[[["deep": true]]]], "n": .number("-1e308")],
            messageID: "m-2", timestamp: Date(timeIntervalSince1970: 1_700_000_000)
        ),
    ]

    static func routes(_ bytes: [UInt8]) {
        guard let file = try? RoutesFile.parse(bytes, file: "fuzz.json") else {
            checkOneLineIssues(bytes)
            return
        }
        let compiled = CompiledRoutes(file)
        for event in sampleEvents { check(compiled, event) }
    }

    /// Routing and explaining one event agree, and every target is a declared topic.
    static func check(_ compiled: CompiledRoutes, _ event: GenericDomainEventMessage) {
        let targets = compiled.targets(for: event)
        let topics = Set(compiled.file.topics.map { $0.name })
        for target in targets where !topics.contains(target.topic) {
            fatalError("routed to the undeclared topic \(target.topic)")
        }
        let verdicts = compiled.explain(event)
        let explained = Set(verdicts.filter(\.matched).flatMap(\.topics))
        guard explained == Set(targets.map(\.topic)) else {
            fatalError("explain says \(explained.sorted()), routing says \(targets.map(\.topic))")
        }
        var output: [KafkaProducerRecord] = []
        let record = StreamRecord(eventID: "e", eventName: "INSERT", keys: [:], newImage: event.item, sequenceNumber: "1")
        _ = FanOutPlanner(routes: compiled).plan(record, streamARN: "arn", shardID: "s", into: &output)
    }

    /// Every issue of a refused file is one line.
    static func checkOneLineIssues(_ bytes: [UInt8]) {
        do {
            _ = try RoutesFile.parse(bytes, file: "fuzz.json")
        } catch {
            for issue in error.issues where issue.description.contains(where: \.isNewline) {
                fatalError("a routes-file issue spans lines: \(issue.description.debugDescription)")
            }
        }
    }

    /// `<event-name pattern> 0xFF <where pattern JSON> 0xFF <event JSON>`: the patterns are put in a
    /// routes file, and the event (a GenericDomainEventMessage as JSON) is routed through it.
    static func patterns(_ bytes: [UInt8]) {
        let parts = bytes.split(separator: 0xFF, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return }
        let name = JSONWriter.bytes(.string(String(decoding: parts[0], as: UTF8.self)))
        var file = Array(#"{"version":1,"topics":{"t":{}},"routes":[{"name":"r","events":["#.utf8)
        file += name
        file += Array(#"],"to":["t"],"where":"#.utf8)
        file += parts[1]
        file += Array("}]}".utf8)
        guard let routesFile = try? RoutesFile.parse(file, file: "fuzz.json") else { return }
        let compiled = CompiledRoutes(routesFile)
        var events = sampleEvents
        if let event = try? GenericDomainEventMessage(jsonBytes: parts[2]) { events.append(event) }
        for event in events {
            check(compiled, event)
            let nameMatches = routesFile.routes[0].events.contains { $0.matches(event.eventName) }
            if !nameMatches && !compiled.targets(for: event).isEmpty {
                fatalError("routed although the event name \(event.eventName) matches no pattern of the route")
            }
        }
    }

    // MARK: - AWS responses

    /// A fixed routes file for the fan-out of decoded records: a name route, a content route, a catch-all.
    static let plannerRoutes = CompiledRoutes(try! RoutesFile.parse(Array("""
        {
          "version": 1,
          "topics": { "orders": {}, "big": {}, "all": {} },
          "routes": [
            { "name": "orders", "events": ["Order*"], "to": ["orders"], "key": "payload.customer.id" },
            { "name": "big", "events": ["*"], "where": { "payload": { "total": [{ "numeric": [">", 1000] }] } }, "to": ["big"] },
            { "name": "all", "events": ["*"], "to": ["all"] }
          ],
          "deadLetterTopic": "dlq"
        }
        """.utf8), file: "planner.json"))

    /// Fans out one record; its outcome must be routed (to the catch-all at least), ignored, or dead-lettered
    /// with the reason and the source coordinates in the headers: nothing vanishes.
    static func fanOut(_ record: StreamRecord) {
        var output: [KafkaProducerRecord] = []
        let planner = FanOutPlanner(routes: plannerRoutes, maximumValueBytes: 4096)
        let outcome = planner.plan(record, streamARN: "arn:s", shardID: "shard-1", into: &output)
        switch outcome {
        case .routed(let topics):
            guard topics.contains("all"), output.count == topics.count else { fatalError("routed to \(topics), records \(output.count)") }
        case .unrouted:
            fatalError("the catch-all route did not match \(record)")
        case .ignored:
            guard output.isEmpty else { fatalError("ignored but wrote \(output.count) records") }
        case .deadLettered(let reason):
            guard output.count == 1, let dead = output.first, dead.topic == "dlq",
                dead.headers.contains(where: { $0.key == FanoutHeader.error && $0.value == Array(reason.utf8) }),
                dead.headers.contains(where: { $0.key == FanoutHeader.source && $0.value == Array("arn:s/shard-1/\(record.sequenceNumber)".utf8) })
            else { fatalError("a dead letter without its reason and source: \(output)") }
        }
    }

    static func typedJSON(_ bytes: [UInt8]) {
        guard let item = try? AWSResponseDecoding.item(bytes) else { return }
        // What is decoded encodes back to the same item.
        guard let encoded = try? JSONEncoder().encode(item), let again = try? AWSResponseDecoding.item(Array(encoded)), again == item else {
            fatalError("a decoded item does not survive encoding and decoding again")
        }
        fanOut(StreamRecord(eventID: "e", eventName: "INSERT", keys: [:], newImage: item, sequenceNumber: "7"))
        samePlansFromAPage(bytes, item: item)
    }

    /// The same item as the NewImage of a GetRecords page: the page keeps it as checked typed JSON (or builds
    /// it), reads back the same item, and the planner's direct path (the value written from those bytes)
    /// writes exactly what the reference path writes.
    static func samePlansFromAPage(_ bytes: [UInt8], item: DynamoDBItem) {
        // A byte order mark opens a document, not a value inside one.
        let value = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        let page = Array(#"{"Records":[{"eventID":"e","eventName":"INSERT","dynamodb":{"SequenceNumber":"7","NewImage":"#.utf8) + value
            + Array("}}]}".utf8)
        let record: StreamRecord
        do {
            guard let first = try GetRecordsOutput(jsonBytes: page).records.first else { fatalError("a page of one record read as none") }
            record = first
        } catch {
            // The page nests the item four levels deeper: only the depth bound may refuse what the item alone passed.
            guard error.reason.contains("nesting deeper") else { fatalError("a page refused an item that reads alone: \(error)") }
            return
        }
        guard record.newImage == item else { fatalError("the page's NewImage reads as another item") }
        let routes = plannerRoutes
        var direct: [KafkaProducerRecord] = []
        var reference: [KafkaProducerRecord] = []
        let directOutcome = FanOutPlanner(routes: routes, maximumValueBytes: 4096, path: .direct)
            .plan(record, streamARN: "arn:s", shardID: "shard-1", into: &direct)
        let referenceOutcome = FanOutPlanner(routes: routes, maximumValueBytes: 4096, path: .reference)
            .plan(record, streamARN: "arn:s", shardID: "shard-1", into: &reference)
        guard directOutcome == referenceOutcome, direct.count == reference.count,
            zip(direct, reference).allSatisfy({ $0.topic == $1.topic && $0.key == $1.key && $0.value == $1.value && $0.headers == $1.headers })
        else {
            fatalError("the direct path wrote other records than the reference path: \(directOutcome) vs \(referenceOutcome)")
        }
    }

    static func getRecords(_ bytes: [UInt8]) {
        guard let output = try? AWSResponseDecoding.getRecords(bytes) else { return }
        for record in output.records { fanOut(record) }
    }

    static func describeStream(_ bytes: [UInt8]) {
        guard let description = try? AWSResponseDecoding.describeStream(bytes) else { return }
        let lineage = ShardLineage(shards: description.shards)
        _ = lineage.readyShards(finished: Set(description.shards.filter(\.isClosed).map(\.shardID)), running: [])
        checkEveryShardStarts(lineage)
    }

    /// Reading every shard to its end, round after round, starts each listed shard exactly once:
    /// no parent cycle (or shard that is its own parent) holds a shard back forever.
    static func checkEveryShardStarts(_ lineage: ShardLineage) {
        let all = Set(lineage.shards.map(\.shardID))
        var finished: Set<String> = []
        while true {
            let ready = lineage.readyShards(finished: finished, running: [])
            if ready.isEmpty { break }
            for shard in ready {
                guard finished.insert(shard.shardID).inserted else { fatalError("shard \(shard.shardID) started twice") }
            }
        }
        guard finished == all else {
            fatalError("shards never started: \(all.subtracting(finished).sorted().prefix(5)); cycles: \(lineage.parentCycles)")
        }
        for cycle in lineage.parentCycles where ShardLineage.describe(cycle, in: lineage.shards).contains(where: \.isNewline) {
            fatalError("a cycle's description is not one line")
        }
    }

    static func kinesis(_ bytes: [UInt8]) {
        _ = try? AWSResponseDecoding.kinesisGetRecords(bytes)
        _ = try? AWSResponseDecoding.kinesisListShards(bytes)
    }

    /// The first byte picks the status (400 + byte, so 4xx and 5xx and beyond), the rest is the body.
    static func awsError(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let status = 400 + Int(first)
        let headers: [(name: String, value: String)] = first & 1 == 0 ? [] : [(name: "x-amzn-ErrorType", value: "Throttling:x")]
        let error = AWSError.fromResponse(operation: "DynamoDBStreams.GetRecords", statusCode: status, headers: headers, body: Array(bytes.dropFirst()))
        let text = error.description
        guard !text.contains(where: \.isNewline) else { fatalError("an AWS error spans lines: \(text.debugDescription)") }
        guard !error.type.isEmpty, !error.message.isEmpty else { fatalError("an AWS error without a type or message: \(text)") }
        _ = error.isRetriable
    }

    // MARK: - Kafka record values

    static func eventMessage(_ bytes: [UInt8]) {
        guard let event = try? GenericDomainEventMessage(jsonBytes: bytes) else { return }
        // The canonical form reads back to itself.
        let canonical = event.jsonBytes()
        guard let again = try? GenericDomainEventMessage(jsonBytes: canonical) else {
            fatalError("a decoded event's own JSON does not decode: \(String(decoding: canonical, as: UTF8.self))")
        }
        guard again.jsonBytes() == canonical else {
            fatalError("an event's JSON changes on a round trip: \(String(decoding: canonical, as: UTF8.self))")
        }
        // (`again` is the event at the precision its JSON keeps: timestamps to the millisecond.)
        guard (try? GenericDomainEventMessage(jsonBytes: again.jsonBytes())) == again else {
            fatalError("an event is not equal to itself read back from its JSON: \(String(decoding: canonical, as: UTF8.self))")
        }
        // The same event as an events-table item reads back too (DynamoDB maps keep no key order: equal as values),
        // unless it lacks what an item must hold (a message id, an aggregate type): that item is refused, naming the field.
        if again.messageID.isEmpty || again.aggregateType.isEmpty {
            do throws(EventDecodingError) {
                _ = try GenericDomainEventMessage(item: again.item)
                fatalError("an events-table item without a message id or aggregate type was accepted: \(String(decoding: canonical, as: UTF8.self))")
            } catch {
                guard [GenericDomainEventMessage.Field.messageID, GenericDomainEventMessage.Field.aggregateType].contains(error.field) else {
                    fatalError("an events-table item without a message id or aggregate type was refused for \(error)")
                }
            }
        } else {
            guard (try? GenericDomainEventMessage(item: again.item)) == again else {
                fatalError("an event does not survive its events-table item: \(String(decoding: canonical, as: UTF8.self))")
            }
        }
        for compiled in [plannerRoutes] { check(compiled, event) }
    }

    static func checkpoint(_ bytes: [UInt8]) {
        guard let decoded = try? CheckpointRecords.decode(bytes) else { return }
        let (shardID, checkpoint) = (decoded.shardID, decoded.checkpoint)
        guard !shardID.isEmpty else { fatalError("a checkpoint without a shard id was accepted") }
        if let sequence = checkpoint.sequenceNumber,
            sequence.isEmpty || !sequence.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        {
            fatalError("a checkpoint with the sequence number \(sequence.debugDescription) was accepted")
        }
    }

    // MARK: - Configuration file

    /// This process's scratch file for the configuration target (the loader reads a path).
    static let configPath = FileManager.default.temporaryDirectory
        .appendingPathComponent("fanout-fuzz-config-\(ProcessInfo.processInfo.processIdentifier).json").path

    static func config(_ bytes: [UInt8]) {
        // Foundation's FileManager.contents(atPath:) leaks one 4 KiB buffer reading an empty file (found
        // by this target, swift-foundation of Swift 6.3.1; harmless: the file is read once at start). An
        // empty file is refused like any non-object: SettingsFileHostileInputTests checks it, not this target.
        if bytes.isEmpty { return }
        guard FileManager.default.createFile(atPath: configPath, contents: Data(bytes)) else {
            fatalError("cannot write \(configPath)")
        }
        let settings: ResolvedSettings
        do {
            settings = try SettingsLoader.load(flags: [:], environment: [:], configFile: configPath)
        } catch {
            let text = "\(error)"
            guard !text.contains(where: \.isNewline) else { fatalError("a configuration error spans lines: \(text.debugDescription)") }
            return
        }
        _ = settings.describe()
        _ = settings.redactedSummary
        _ = try? settings.kafkaProperties()
        _ = try? settings.logLevel()
        _ = try? settings.httpPort()
        _ = try? settings.sidecarConfiguration(environment: [:])
    }
}
