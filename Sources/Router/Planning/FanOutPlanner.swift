import AWS
import CQRSCore
import JSON
import Contracts
import StreamReader

/// What became of one stream record.
public enum RecordOutcome: Sendable, Hashable {
    /// Sent to these topics.
    case routed(topics: [String])
    /// No route matched; counted, and sent to the unrouted topic if one is set.
    case unrouted(eventName: String)
    /// Could not be read as an event; sent to the dead-letter topic.
    case deadLettered(reason: String)
    /// Not a new event (a MODIFY or REMOVE of an events-table item); events are immutable, so nothing is sent.
    case ignored(changeType: String)
}

/// Turns stream records into the Kafka records of their fan-out. Pure: no I/O.
public struct FanOutPlanner: Sendable {
    /// Kafka's default `message.max.bytes` (1 MB) less room for the key, headers and batch overhead.
    public static let defaultMaximumValueBytes = 1_000_000 - 16_384

    public let routes: CompiledRoutes
    /// A larger event value goes to the dead-letter topic (as its keys and size only), not to its topics,
    /// so a broker that would refuse it can never block the shard.
    public let maximumValueBytes: Int

    /// The longest event-derived header value (event name, message id, aggregate id, traceparent) and
    /// dead-letter reason; an event with a longer one goes to the dead-letter topic (a reason is shortened).
    public static let maximumHeaderValueBytes = 1024
    /// The longest record key (the aggregate id, or the field a route's `key` names); an event whose key
    /// for any of its topics is longer goes to the dead-letter topic instead, whole.
    public static let maximumKeyBytes = 4096

    /// How an event's Kafka records are made; both give the same records, byte for byte.
    public enum Path: Sendable, Hashable {
        /// Header fields read from the item, the value written straight from its attribute values
        /// (`EventItem`); the reference path for any item it does not cover, and whenever a content
        /// pattern or a payload or metadata key needs the whole event.
        case direct
        /// Item → `GenericDomainEventMessage` → JSON, for every event (what `direct` is checked against).
        case reference
    }

    public let path: Path

    public init(routes: CompiledRoutes, maximumValueBytes: Int = FanOutPlanner.defaultMaximumValueBytes, path: Path = .direct) {
        self.routes = routes
        self.maximumValueBytes = maximumValueBytes
        self.path = path
    }

    /// Appends the Kafka records for `record` to `output`, in topic order, and says what happened.
    public func plan(_ record: StreamRecord, streamARN: String, shardID: String, into output: inout [KafkaProducerRecord]) -> RecordOutcome {
        let source = Self.sourceHeader(streamARN: streamARN, shardID: shardID, sequenceNumber: record.sequenceNumber)
        if let unreadable = record.unreadable {
            // Not a DynamoDB change at all (a foreign record in a Kinesis stream): its bytes, unchanged, go to the dead letters.
            output.append(KafkaProducerRecord(
                topic: routes.file.deadLetterTopic,
                key: unreadable.partitionKey.map { Array($0.utf8) },
                value: unreadable.data,
                headers: [
                    KafkaHeader(key: FanoutHeader.contentType, string: "application/octet-stream"),
                    KafkaHeader(key: FanoutHeader.error, string: unreadable.reason),
                    source,
                ]
            ))
            return .deadLettered(reason: unreadable.reason)
        }
        guard record.eventName == "INSERT" else { return .ignored(changeType: record.eventName) }
        guard let image = record.newImageJSON.map(EventItemSource.json) ?? record.newImage.map(EventItemSource.item) else {
            return deadLetter(.object(JSONObject()), keys: record.keys, reason: "INSERT record has no NewImage (is the stream view type KEYS_ONLY or OLD_IMAGE?)", source: source, into: &output)
        }
        if path == .direct, let item = image.eventItem, let outcome = planDirectly(item, source: source, into: &output) {
            return outcome
        }
        return planThroughMessage(image.item, keys: record.keys, source: source, into: &output)
    }

    /// A record's NewImage as it holds it: still typed JSON (from a GetRecords page) or built.
    private enum EventItemSource {
        case json(ItemJSON)
        case item(DynamoDBItem)

        var eventItem: EventItem? {
            switch self {
            case .json(let json): EventItem(json: json)
            case .item(let item): EventItem(item: item)
            }
        }

        var item: DynamoDBItem {
            switch self {
            case .json(let json): json.item
            case .item(let item): item
            }
        }
    }

    /// The direct path: nil (having written nothing) when the item needs the reference path after all:
    /// a content pattern or a payload or metadata key needs the whole event, or the event is dead-lettered.
    private func planDirectly(_ item: EventItem, source: KafkaHeader, into output: inout [KafkaProducerRecord]) -> RecordOutcome? {
        guard let targets = routes.fixedTargets(forEventName: item.eventName),
              targets.allSatisfy({ $0.key.isTakenFromEventFields })
        else { return nil }
        let value = item.jsonBytes()
        guard value.count <= maximumValueBytes else { return nil }
        let limit = Self.maximumHeaderValueBytes
        guard item.eventName.utf8.count <= limit, item.messageID.utf8.count <= limit, item.aggregateID.utf8.count <= limit,
              (item.traceparent?.utf8.count ?? 0) <= limit
        else { return nil }
        let fields = HeaderFields(eventName: item.eventName, messageID: item.messageID, aggregateID: item.aggregateID, traceparent: item.traceparent, source: source)
        if targets.isEmpty {
            if let topic = routes.file.unroutedTopic {
                output.append(makeRecord(topic: topic, key: Array(item.aggregateID.utf8), value: value, fields: fields, routeHeader: []))
            }
            return .unrouted(eventName: item.eventName)
        }
        let aggregateKey = Array(item.aggregateID.utf8)
        let keys = targets.map { target -> [UInt8] in
            switch target.key {
            case .messageID: Array(item.messageID.utf8)
            case .eventName: Array(item.eventName.utf8)
            case .aggregateType: Array(item.aggregateType.utf8)
            case .aggregateID, .payload, .metadata: aggregateKey
            }
        }
        guard keys.allSatisfy({ $0.count <= Self.maximumKeyBytes }) else { return nil }
        for (target, key) in zip(targets, keys) {
            output.append(makeRecord(topic: target.topic, key: key, value: value, fields: fields, routeHeader: target.routeHeaderBytes))
        }
        return .routed(topics: targets.map(\.topic))
    }

    /// The reference path: the item read as a `GenericDomainEventMessage`, which is routed and written.
    private func planThroughMessage(_ image: DynamoDBItem, keys recordKeys: DynamoDBItem, source: KafkaHeader, into output: inout [KafkaProducerRecord]) -> RecordOutcome {
        let event: GenericDomainEventMessage
        do {
            event = try GenericDomainEventMessage(item: image)
        } catch {
            return deadLetter(JSONValue(.m(image)), keys: recordKeys, reason: "not an event: \(error)", source: source, into: &output)
        }
        let value = event.jsonBytes()
        if value.count > maximumValueBytes {
            var summary = JSONObject()
            summary["keys"] = JSONValue(.m(recordKeys))
            summary["eventName"] = .string(event.eventName)
            summary["messageId"] = .string(event.messageID)
            summary["sizeBytes"] = .number(value.count)
            return deadLetter(
                .object(summary), keys: recordKeys,
                reason: "event of \(value.count) bytes exceeds the limit of \(maximumValueBytes) bytes; its value is not included",
                source: source, into: &output
            )
        }
        for (header, text) in [
            (FanoutHeader.eventName, event.eventName), (FanoutHeader.messageID, event.messageID),
            (FanoutHeader.aggregateID, event.aggregateID), (FanoutHeader.traceparent, event.metadata.traceparent ?? ""),
        ] where text.utf8.count > Self.maximumHeaderValueBytes {
            return deadLetter(
                .object(event.jsonObject), keys: recordKeys,
                reason: "the \(header) header would be \(text.utf8.count) bytes; at most \(Self.maximumHeaderValueBytes) are allowed",
                source: source, into: &output
            )
        }
        let targets = routes.targets(for: event)
        let fields = HeaderFields(
            eventName: event.eventName, messageID: event.messageID, aggregateID: event.aggregateID, traceparent: event.metadata.traceparent, source: source
        )
        if targets.isEmpty {
            if let topic = routes.file.unroutedTopic {
                output.append(makeRecord(topic: topic, key: Array(event.aggregateID.utf8), value: value, fields: fields, routeHeader: []))
            }
            return .unrouted(eventName: event.eventName)
        }
        let keys = targets.map { Self.key(for: event, from: $0.key) }
        if let long = keys.first(where: { $0.count > Self.maximumKeyBytes }) {
            return deadLetter(
                .object(event.jsonObject), keys: recordKeys,
                reason: "a record key would be \(long.count) bytes; at most \(Self.maximumKeyBytes) are allowed",
                source: source, into: &output
            )
        }
        for (target, key) in zip(targets, keys) {
            output.append(makeRecord(topic: target.topic, key: key, value: value, fields: fields, routeHeader: target.routeHeaderBytes))
        }
        return .routed(topics: targets.map(\.topic))
    }

    /// The headers every record of one event shares, made once per event (their bytes are shared, not copied).
    private struct HeaderFields {
        static let contentType = KafkaHeader(key: FanoutHeader.contentType, string: "application/json")
        var eventName: KafkaHeader
        var messageID: KafkaHeader
        var aggregateID: KafkaHeader
        var source: KafkaHeader
        var traceparent: KafkaHeader?

        init(eventName: String, messageID: String, aggregateID: String, traceparent: String?, source: KafkaHeader) {
            self.eventName = KafkaHeader(key: FanoutHeader.eventName, string: eventName)
            self.messageID = KafkaHeader(key: FanoutHeader.messageID, string: messageID)
            self.aggregateID = KafkaHeader(key: FanoutHeader.aggregateID, string: aggregateID)
            self.source = source
            self.traceparent = traceparent.map { KafkaHeader(key: FanoutHeader.traceparent, string: $0) }
        }
    }

    /// The `fanout-source` header, `<stream ARN>/<shard id>/<sequence number>`, its bytes written straight
    /// (no `String` made first): made once per stream record.
    private static func sourceHeader(streamARN: String, shardID: String, sequenceNumber: String) -> KafkaHeader {
        var value: [UInt8] = []
        value.reserveCapacity(streamARN.utf8.count + shardID.utf8.count + sequenceNumber.utf8.count + 2)
        value.append(contentsOf: streamARN.utf8)
        value.append(UInt8(ascii: "/"))
        value.append(contentsOf: shardID.utf8)
        value.append(UInt8(ascii: "/"))
        value.append(contentsOf: sequenceNumber.utf8)
        return KafkaHeader(key: FanoutHeader.source, value: value)
    }

    /// `routeHeader`: the `fanout-route` header's bytes (the target's, shared).
    private func makeRecord(topic: String, key: [UInt8], value: [UInt8], fields: HeaderFields, routeHeader: [UInt8]) -> KafkaProducerRecord {
        var headers: [KafkaHeader] = []
        headers.reserveCapacity(7)
        headers.append(HeaderFields.contentType)
        headers.append(fields.eventName)
        headers.append(fields.messageID)
        headers.append(fields.aggregateID)
        headers.append(KafkaHeader(key: FanoutHeader.route, value: routeHeader))
        headers.append(fields.source)
        if let traceparent = fields.traceparent { headers.append(traceparent) }
        return KafkaProducerRecord(topic: topic, key: key, value: value, headers: headers)
    }

    /// The dead letter itself stays within every bound, so that the dead-letter topic never refuses it:
    /// a value too large is replaced by the keys and its size, a long key is left out, a long reason shortened.
    private func deadLetter(_ value: JSONValue, keys: DynamoDBItem, reason: String, source: KafkaHeader, into output: inout [KafkaProducerRecord]) -> RecordOutcome {
        let key = keys["aggregateId"].flatMap { JSONValue($0).stringValue } ?? ""
        var bytes = JSONWriter.bytes(value)
        if bytes.count > maximumValueBytes {
            let size = bytes.count
            var summary = JSONObject()
            summary["keys"] = JSONValue(.m(keys))
            summary["sizeBytes"] = .number(size)
            bytes = JSONWriter.bytes(.object(summary))
            if bytes.count > maximumValueBytes { bytes = JSONWriter.bytes(.object(JSONObject(["sizeBytes": .number(size)]))) }
        }
        var reason = reason
        if reason.utf8.count > Self.maximumHeaderValueBytes {
            reason = String(decoding: reason.utf8.prefix(Self.maximumHeaderValueBytes - 8), as: UTF8.self) + "…"
        }
        output.append(KafkaProducerRecord(
            topic: routes.file.deadLetterTopic,
            key: key.isEmpty || key.utf8.count > Self.maximumKeyBytes ? nil : Array(key.utf8),
            value: bytes,
            headers: [
                KafkaHeader(key: FanoutHeader.contentType, string: "application/json"),
                KafkaHeader(key: FanoutHeader.error, string: reason),
                source,
            ]
        ))
        return .deadLettered(reason: reason)
    }

    /// The record key a route asks for; falls back to the aggregate id when the field is absent.
    public static func key(for event: GenericDomainEventMessage, from source: KeySource) -> [UInt8] {
        func lookup(_ root: JSONValue, _ path: [String]) -> String? {
            var value = root
            for part in path {
                guard let next = value[part] else { return nil }
                value = next
            }
            switch value {
            case .string(let text): return text
            case .number(let text): return text
            case .bool(let flag): return flag ? "true" : "false"
            default: return nil
            }
        }
        let text: String? =
            switch source {
            case .aggregateID: event.aggregateID
            case .messageID: event.messageID
            case .eventName: event.eventName
            case .aggregateType: event.aggregateType
            case .payload(let path): lookup(event.payload, path)
            case .metadata(let path): lookup(.object(event.metadata.values), path)
            }
        return Array((text ?? event.aggregateID).utf8)
    }
}

extension KeySource {
    /// Whether the key is one of the event's own fields (not a path into its payload or metadata).
    var isTakenFromEventFields: Bool {
        switch self {
        case .aggregateID, .messageID, .eventName, .aggregateType: true
        case .payload, .metadata: false
        }
    }
}
