import CQRSCore
import Foundation
import JSON
import Kafka
import Logging
import Contracts
import StreamReader

/// The checkpoint topic's contract, in one place for the sidecar and `fanout checkpoints`: its name, the
/// record of a checkpoint, and how a topic's records resolve to each shard's checkpoint.
///
/// One compacted topic per application; key `<stream ARN>|<shard id>`; value JSON
/// `{"streamArn", "shardId", "sequenceNumber", "finished", "epoch", "writtenAt"}`. Of each key's records
/// the latest of the highest `epoch` wins (no epoch counts as 0): a zombie's stale-epoch record never
/// moves a checkpoint. An empty value (a tombstone) removes the key.
public enum CheckpointRecords {
    /// The topic of an application's checkpoints.
    public static func topic(application: String) -> String { "fanout.checkpoints.\(application)" }

    /// The record of a checkpoint.
    public static func record(topic: String, streamARN: String, shardID: String, checkpoint: Checkpoint, writtenAt: Date = Date()) -> KafkaProducerRecord {
        var value = JSONObject()
        value["streamArn"] = .string(streamARN)
        value["shardId"] = .string(shardID)
        value["sequenceNumber"] = checkpoint.sequenceNumber.map(JSONValue.string) ?? .null
        value["finished"] = .bool(checkpoint.isFinished)
        value["epoch"] = checkpoint.epoch.map { .number($0) } ?? .null
        value["writtenAt"] = .string(GenericDomainEventMessage.formatTimestamp(writtenAt))
        return KafkaProducerRecord(
            topic: topic,
            key: Array(key(streamARN: streamARN, shardID: shardID).utf8),
            value: JSONWriter.bytes(.object(value)),
            headers: [KafkaHeader(key: FanoutHeader.contentType, string: "application/json")]
        )
    }

    static func key(streamARN: String, shardID: String) -> String { "\(streamARN)|\(shardID)" }

    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    /// A checkpoint record's value, read.
    public struct Decoded: Sendable, Hashable {
        public var streamARN: String?
        public var shardID: String
        public var checkpoint: Checkpoint
        public var writtenAt: String?
    }

    /// Reads a checkpoint record's value.
    public static func decode(_ bytes: [UInt8]) throws -> Decoded {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes, maximumDepth: 8)
        } catch {
            throw DecodingError(description: "not JSON: \(error)")
        }
        guard let shardID = value["shardId"]?.stringValue, !shardID.isEmpty else {
            throw DecodingError(description: "shardId is missing")
        }
        let sequence: String?
        switch value["sequenceNumber"] {
        case .string(let text)?:
            guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
                throw DecodingError(description: "sequenceNumber \"\(text)\" is not a decimal number")
            }
            sequence = text
        case nil, .null?: sequence = nil
        case let other?: throw DecodingError(description: "sequenceNumber is \(other.typeName), expected a string")
        }
        guard let finished = value["finished"]?.boolValue else { throw DecodingError(description: "finished is missing") }
        var epoch: Int64?
        switch value["epoch"] {
        case .number(let text)?:
            guard let number = Int64(text) else { throw DecodingError(description: "epoch \(text) is not an integer") }
            epoch = number
        case nil, .null?: epoch = nil
        case let other?: throw DecodingError(description: "epoch is \(other.typeName), expected a number")
        }
        return Decoded(
            streamARN: value["streamArn"]?.stringValue, shardID: shardID,
            checkpoint: Checkpoint(sequenceNumber: sequence, isFinished: finished, epoch: epoch), writtenAt: value["writtenAt"]?.stringValue
        )
    }

    /// One shard's checkpoint as the topic resolves it.
    public struct Entry: Sendable, Hashable {
        public var streamARN: String
        public var shardID: String
        public var checkpoint: Checkpoint
        public var writtenAt: String?
        /// The offset of the record that won.
        public var offset: Int64
    }

    /// What a checkpoint topic's records resolve to.
    public struct Resolution: Sendable {
        /// Each shard's checkpoint, in the order of the shards' first records.
        public var entries: [Entry] = []
        /// Records that could not be read, as `offset N: reason`; they are ignored, never in silence.
        public var unreadable: [String] = []
        /// Records of a lower epoch than the shard's checkpoint already had, as `offset N: ...`: a fenced writer's.
        public var staleEpochs: [String] = []

        /// Every checkpoint of one stream, by shard id.
        public func checkpoints(streamARN: String) -> [String: Checkpoint] {
            Dictionary(entries.filter { $0.streamARN == streamARN }.map { ($0.shardID, $0.checkpoint) }, uniquingKeysWith: { $1 })
        }
    }

    /// Resolves a checkpoint topic's records (in offset order) to each shard's checkpoint: the rule the
    /// sidecar resumes by, and the one `fanout checkpoints list` shows.
    public static func resolve(_ messages: [KafkaConsumerMessage]) -> Resolution {
        var resolution = Resolution()
        var order: [String] = []
        var winners: [String: Entry] = [:]
        for message in messages {
            guard let key = message.key.map({ String(decoding: $0, as: UTF8.self) }), let bar = key.lastIndex(of: "|"),
                  bar != key.startIndex, key.index(after: bar) != key.endIndex
            else {
                resolution.unreadable.append("offset \(message.offset): the key is not <stream ARN>|<shard id>")
                continue
            }
            if message.value.isEmpty {
                winners[key] = nil
                continue
            }
            let decoded: Decoded
            do {
                decoded = try decode(message.value)
            } catch {
                resolution.unreadable.append("offset \(message.offset): \(error)")
                continue
            }
            let streamARN = String(key[..<bar]), shardID = String(key[key.index(after: bar)...])
            guard decoded.shardID == shardID, decoded.streamARN == nil || decoded.streamARN == streamARN else {
                resolution.unreadable.append("offset \(message.offset): the value names \(decoded.streamARN ?? "?")|\(decoded.shardID), the key \(key)")
                continue
            }
            if let current = winners[key], (current.checkpoint.epoch ?? 0) > (decoded.checkpoint.epoch ?? 0) {
                resolution.staleEpochs.append(
                    "offset \(message.offset): shard \(shardID) epoch \(decoded.checkpoint.epoch ?? 0) is older than epoch \(current.checkpoint.epoch ?? 0)"
                )
                continue
            }
            if !order.contains(key) { order.append(key) }
            winners[key] = Entry(streamARN: streamARN, shardID: shardID, checkpoint: decoded.checkpoint, writtenAt: decoded.writtenAt, offset: message.offset)
        }
        resolution.entries = order.compactMap { winners[$0] }
        return resolution
    }

    /// Reads an application's checkpoint topic to its end (committed records only) and resolves it.
    public static func read(topic: String, configuration: KafkaConfiguration, logger: Logger) async throws -> Resolution {
        var reading = configuration
        reading["isolation.level"] = "read_committed"
        return resolve(try await KafkaTopicReader.readToEnd(topic: topic, configuration: reading, logger: logger))
    }
}
