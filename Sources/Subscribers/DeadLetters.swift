import CQRSCore
import Foundation
import Kafka
import Logging
import Contracts

/// The kinds of records in a group's dead-letter topic.
public enum DeadLetterKind: String, Sendable, CaseIterable {
    /// Every attempt of a handler failed.
    case failed
    /// A later event of an aggregate that has a failed event: held back to keep the order.
    case parked
    /// The record could not be read as a Fanout event (value not a GenericDomainEventMessage).
    case notAnEvent = "not-an-event"
    /// A request (from `fanout dead-letters retry`) to run an aggregate's entries again.
    case retry
    /// Marker: the listed entries were handled on a retry; the aggregate is unparked.
    case resolved
    /// Marker: a retry failed again; the listed entries (if any) were handled before it.
    case retryFailed = "retry-failed"
    /// A record of the Router's dead-letter topic (`fanout-error` header).
    case router
}

/// One record of a dead-letter topic, decoded.
public struct DeadLetterEntry: Sendable {
    /// Where the dead-letter record is.
    public var partition: Int32
    public var offset: Int64
    public var kind: DeadLetterKind?
    public var key: String?
    public var reason: String?
    public var attempts: Int?
    public var group: String?
    public var originTopic: String?
    public var originPartition: Int32?
    public var originOffset: Int64?
    public var parkedBehind: Int64?
    public var resolves: [Int64]
    public var time: String?
    /// The original record: value and headers (without the dead-letter headers).
    public var value: [UInt8]
    public var headers: [KafkaHeader]

    public init(_ record: KafkaConsumerMessage) {
        func header(_ name: String) -> String? {
            record.headers.last { $0.key == name }.flatMap(\.stringValue)
        }
        partition = record.partition
        offset = record.offset
        key = record.key.map { String(decoding: $0, as: UTF8.self) }
        kind = header(DeadLetterHeader.kind).flatMap(DeadLetterKind.init(rawValue:))
            ?? (header(DeadLetterHeader.routerError) != nil ? .router : nil)
        reason = header(DeadLetterHeader.reason) ?? header(DeadLetterHeader.routerError)
        attempts = header(DeadLetterHeader.attempts).flatMap { Int($0) }
        group = header(DeadLetterHeader.group)
        originTopic = header(DeadLetterHeader.originTopic)
        originPartition = header(DeadLetterHeader.originPartition).flatMap { Int32($0) }
        originOffset = header(DeadLetterHeader.originOffset).flatMap { Int64($0) }
        parkedBehind = header(DeadLetterHeader.parkedBehind).flatMap { Int64($0) }
        resolves = header(DeadLetterHeader.resolves).map { $0.split(separator: ",").compactMap { Int64($0) } } ?? []
        time = header(DeadLetterHeader.time)
        value = record.value
        headers = record.headers.filter { !$0.key.hasPrefix("fanout-dlq-") }
        if kind == .router, originTopic == nil { originTopic = header(DeadLetterHeader.routerSource) }
    }

    /// The original record as the group's consumer saw it.
    var originalMessage: KafkaConsumerMessage {
        KafkaConsumerMessage(
            topic: originTopic ?? "", partition: originPartition ?? -1, offset: originOffset ?? -1,
            key: key.map { Array($0.utf8) }, value: value, headers: headers
        )
    }

    /// Whether the record is an event a group gave up on (a failed or parked one).
    public var isEvent: Bool { kind == .failed || kind == .parked }
}

/// The dead-letter topic of a subscriber group: naming, reading, and retry requests.
public enum DeadLetterTopic {
    /// `<group>.dead-letter`.
    public static func name(forGroup group: String) -> String { "\(group).dead-letter" }

    /// Every record of a dead-letter topic (a group's, or the Router's), decoded, in order.
    public static func read(topic: String, configuration: KafkaConfiguration, timeout: Duration = .seconds(30), logger: Logger) async throws -> [DeadLetterEntry] {
        try await KafkaTopicReader.readToEnd(topic: topic, configuration: configuration, timeout: timeout, logger: logger).map(DeadLetterEntry.init)
    }

    /// Asks the running group to run the unresolved entries of an aggregate (record key)
    /// again, in order, through its handlers; it writes a `resolved` (or `retry-failed`)
    /// marker when done. A group that is not running picks the request up when it starts.
    /// - Returns: the offset of the request in the dead-letter topic.
    @discardableResult
    public static func requestRetry(group: String, key: String, configuration: KafkaConfiguration, logger: Logger) async throws -> Int64 {
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        let record = KafkaProducerRecord(
            topic: name(forGroup: group), key: Array(key.utf8), value: [],
            headers: [
                KafkaHeader(key: DeadLetterHeader.kind, string: DeadLetterKind.retry.rawValue),
                KafkaHeader(key: DeadLetterHeader.group, string: group),
                KafkaHeader(key: DeadLetterHeader.time, string: Date().formatted(.iso8601)),
            ],
            partition: 0
        )
        do {
            let ack = try await producer.send([record])
            await producer.shutdown()
            return ack[0].offset
        } catch {
            await producer.shutdown()
            throw error
        }
    }
}

/// The unresolved dead letters of a group, by aggregate (record key), rebuilt from its
/// dead-letter topic: records are applied in topic order, each at most once.
struct DeadLetterLedger: Sendable {
    /// Failed and parked entries not resolved yet, by key, in dead-letter order.
    private(set) var unresolved: [String: [DeadLetterEntry]] = [:]
    /// Keys with a retry request not answered yet by a marker.
    private(set) var pendingRetries: Set<String> = []
    /// Offsets of the dead-letter records read in order so far: the next one to read.
    private(set) var nextOffset: Int64 = 0
    private var known: Set<Int64> = []

    /// Applies a record read from the topic (in order); records already applied are ignored.
    mutating func applyRead(_ entry: DeadLetterEntry) {
        guard entry.offset >= nextOffset else { return }
        nextOffset = entry.offset + 1
        apply(entry)
    }

    /// Applies an entry this process wrote, before it is read back.
    mutating func apply(_ entry: DeadLetterEntry) {
        guard known.insert(entry.offset).inserted, let key = entry.key else { return }
        switch entry.kind {
        case .failed, .parked:
            unresolved[key, default: []].append(entry)
        case .retry:
            pendingRetries.insert(key)
        case .resolved, .retryFailed:
            let done = Set(entry.resolves)
            unresolved[key]?.removeAll { done.contains($0.offset) }
            if unresolved[key]?.isEmpty == true { unresolved[key] = nil }
            pendingRetries.remove(key)
        case .notAnEvent, .router, nil:
            break
        }
    }
}
