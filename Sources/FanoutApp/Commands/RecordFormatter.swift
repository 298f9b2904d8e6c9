import CQRSCore
import Foundation
import Kafka

/// How `fanout tail` shows a Kafka record: decoded as a Fanout record where it is one.
public enum RecordFormatter {
    public enum Format: String, Sendable, CaseIterable {
        /// One readable line: position, event name, aggregate, route, then the value as compact JSON.
        case text
        /// One JSON object a line: topic, partition, offset, timestamp, key, headers, value (parsed when JSON).
        case json
    }

    /// Headers shown in text mode, in this order, without their `fanout-` prefix.
    static let textHeaders = ["fanout-route", "fanout-source", "fanout-error", "fanout-reason"]

    public static func format(_ message: KafkaConsumerMessage, as format: Format) -> String {
        let parsed = try? JSONParser.parse(message.value, maximumDepth: 64)
        switch format {
        case .json:
            var object = JSONObject()
            object["topic"] = .string(message.topic)
            object["partition"] = .number(Int64(message.partition))
            object["offset"] = .number(message.offset)
            object["timestamp"] = message.timestamp.map { .string(GenericDomainEventMessage.formatTimestamp($0)) } ?? .null
            object["key"] = message.key.map { .string(String(decoding: $0, as: UTF8.self)) } ?? .null
            var headers = JSONObject()
            for header in message.headers {
                headers[header.key] = .string(header.stringValue ?? header.value.map { String(format: "%02x", $0) }.joined())
            }
            object["headers"] = .object(headers)
            object["value"] = parsed ?? .string(String(decoding: message.value, as: UTF8.self))
            return JSONWriter.string(.object(object))
        case .text:
            func header(_ name: String) -> String? { message.headers.first { $0.key == name }?.stringValue }
            var fields = ["\(message.topic)/\(message.partition)@\(message.offset)"]
            if let name = header("fanout-event-name") ?? parsed?["eventName"]?.stringValue { fields.append(name) }
            if let aggregate = header("fanout-aggregate-id") ?? parsed?["aggregateId"]?.stringValue {
                fields.append("aggregate=\(aggregate)")
            } else if let key = message.key {
                fields.append("key=\(String(decoding: key, as: UTF8.self))")
            }
            for name in textHeaders {
                if let value = header(name) { fields.append("\(name.dropFirst("fanout-".count))=\(value)") }
            }
            fields.append(parsed.map(JSONWriter.string) ?? "(not JSON, \(message.value.count) bytes) \(String(decoding: message.value.prefix(200), as: UTF8.self))")
            return fields.joined(separator: " ")
        }
    }
}

/// `fanout checkpoints`: the checkpoint topic of one application, decoded.
public enum CheckpointListing {
    public struct Entry: Sendable, Hashable {
        public var streamARN: String
        public var shardID: String
        public var sequenceNumber: String?
        public var isFinished: Bool
        public var epoch: Int64?
        public var writtenAt: String?
        public var offset: Int64
    }

    /// The latest checkpoint of every shard, in the order of their first record; unreadable records
    /// are returned as problems (offset and reason), never skipped in silence.
    public static func decode(_ messages: [KafkaConsumerMessage]) -> (entries: [Entry], problems: [String]) {
        var order: [String] = []
        var latest: [String: Entry] = [:]
        var problems: [String] = []
        for message in messages {
            guard let key = message.key.map({ String(decoding: $0, as: UTF8.self) }), let bar = key.lastIndex(of: "|") else {
                problems.append("offset \(message.offset): the key is not <stream ARN>|<shard id>")
                continue
            }
            if message.value.isEmpty {
                latest[key] = nil
                continue
            }
            guard let value = try? JSONParser.parse(message.value, maximumDepth: 8) else {
                problems.append("offset \(message.offset): the value is not JSON")
                continue
            }
            let stream = value["streamArn"]?.stringValue ?? String(key[..<bar])
            let shard = value["shardId"]?.stringValue ?? String(key[key.index(after: bar)...])
            var epoch: Int64?
            if case .number(let text)? = value["epoch"] { epoch = Int64(text) }
            if latest[key] == nil, !order.contains(key) { order.append(key) }
            latest[key] = Entry(
                streamARN: stream, shardID: shard, sequenceNumber: value["sequenceNumber"]?.stringValue,
                isFinished: value["finished"]?.boolValue ?? false, epoch: epoch,
                writtenAt: value["writtenAt"]?.stringValue, offset: message.offset
            )
        }
        return (order.compactMap { latest[$0] }, problems)
    }

    /// A table: one line per shard.
    public static func lines(_ entries: [Entry]) -> [String] {
        let rows = entries.map { entry in
            [
                entry.streamARN, entry.shardID, entry.sequenceNumber ?? "-", entry.isFinished ? "finished" : "open",
                entry.epoch.map(String.init) ?? "-", entry.writtenAt ?? "-",
            ]
        }
        let header = ["STREAM", "SHARD", "SEQUENCE", "STATE", "EPOCH", "WRITTEN"]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.indices.map { column in
                column == row.count - 1 ? row[column] : row[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }
}
