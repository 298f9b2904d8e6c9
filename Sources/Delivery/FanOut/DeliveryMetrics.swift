import AWS
import Contracts
import Foundation
import Metrics
import Router
import StreamReader
import Synchronization

/// Running totals of what the router did, for the status model.
public struct RouterCounts: Sendable, Hashable {
    public var recordsRead = 0
    /// Kafka records acknowledged, by topic.
    public var routedByTopic: [String: Int] = [:]
    public var unroutedByEventName: [String: Int] = [:]
    public var deadLettered = 0
    public var ignored = 0
}

/// What delivery did, as `/status` counts and as metrics: each metric created once, every label bounded
/// (topics and routes come from the routes file; event names past ``maximumUnroutedNames`` share `(other)`).
final class DeliveryMetrics: Sendable {
    private let counts = Mutex(RouterCounts())
    private let metrics = Mutex<[String: Counter]>([:])
    private let recordsRead = Counter(label: "fanout_records_read_total")
    private let deadLettered = Counter(label: "fanout_records_dead_lettered_total")
    private let ignored = Counter(label: "fanout_records_ignored_total")
    private let deliveryLatency = Metrics.Timer(label: "fanout_delivery_latency_seconds")

    /// Distinct event names counted as unrouted (in the status and the metric's label); past it, `(other)`.
    static let maximumUnroutedNames = 1000
    static let otherEventNames = "(other)"

    var currentCounts: RouterCounts { counts.withLock { $0 } }

    /// Delivery latency: from the record's ApproximateCreationDateTime (DynamoDB rounds it down to
    /// the second) to Kafka's acknowledgement, one observation per stream record.
    func recordLatency(_ page: ShardRecords) {
        let now = Date()
        for record in page.records {
            guard let created = record.approximateCreationDateTime else { continue }
            deliveryLatency.recordSeconds(max(0, now.timeIntervalSince(created)))
        }
    }

    func record(page: ShardRecords, records: [KafkaProducerRecord], outcomes: [RecordOutcome]) {
        recordsRead.increment(by: Int64(page.records.count))
        var routedByTopic: [String: Int] = [:]
        for record in records { routedByTopic[record.topic, default: 0] += 1 }
        var deadLetters = 0
        var ignoredCount = 0
        for outcome in outcomes {
            switch outcome {
            case .routed, .unrouted: break
            case .deadLettered: deadLetters += 1
            case .ignored: ignoredCount += 1
            }
        }
        let unroutedByLabel = counts.withLock { counts in
            counts.recordsRead += page.records.count
            counts.routedByTopic.merge(routedByTopic, uniquingKeysWith: +)
            // Event names come from the table's writers: past a bound, new names share one label.
            // Names are taken in the order the records came, so which ones keep their own label is deterministic.
            var byLabel: [String: Int] = [:]
            for case .unrouted(let name) in outcomes {
                let known = counts.unroutedByEventName[name] != nil || counts.unroutedByEventName.count < Self.maximumUnroutedNames
                let label = known ? name : Self.otherEventNames
                byLabel[label, default: 0] += 1
                counts.unroutedByEventName[label, default: 0] += 1
            }
            counts.deadLettered += deadLetters
            counts.ignored += ignoredCount
            return byLabel
        }
        for (topic, count) in routedByTopic {
            counter("fanout_records_routed_total", ("topic", topic)).increment(by: Int64(count))
        }
        var byRoute: [Substring: Int] = [:]
        for record in records {
            guard let routes = record.headers.first(where: { $0.key == FanoutHeader.route })?.value,
                  !record.headers.contains(where: { $0.key == FanoutHeader.error })
            else { continue }
            for name in String(decoding: routes, as: UTF8.self).split(separator: ",") { byRoute[name, default: 0] += 1 }
        }
        for (route, count) in byRoute {
            counter("fanout_route_records_total", ("route", String(route))).increment(by: Int64(count))
        }
        for (name, count) in unroutedByLabel {
            counter("fanout_events_unrouted_total", ("event", name)).increment(by: Int64(count))
        }
        if deadLetters > 0 { deadLettered.increment(by: Int64(deadLetters)) }
        if ignoredCount > 0 { ignored.increment(by: Int64(ignoredCount)) }
    }

    /// One counter per label value, created once.
    private func counter(_ label: String, _ dimension: (String, String)) -> Counter {
        let key = "\(label)|\(dimension.1)"
        return metrics.withLock { metrics in
            if let counter = metrics[key] { return counter }
            let counter = Counter(label: label, dimensions: [dimension])
            metrics[key] = counter
            return counter
        }
    }
}
