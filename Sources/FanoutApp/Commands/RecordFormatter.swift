import CQRSCore
import Contracts
import Foundation
import JSON
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
    static let textHeaders = [FanoutHeader.route, FanoutHeader.source, FanoutHeader.error]

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
            if let name = header(FanoutHeader.eventName) ?? parsed?["eventName"]?.stringValue { fields.append(name) }
            if let aggregate = header(FanoutHeader.aggregateID) ?? parsed?["aggregateId"]?.stringValue {
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
