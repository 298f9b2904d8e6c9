import CQRSCore
import Foundation
import Kafka
import Logging
import StreamReader
import Synchronization

/// Checkpoints in a compacted Kafka topic, one per application: key = `<stream ARN>|<shard id>`,
/// value = JSON `{"streamArn", "shardId", "sequenceNumber", "finished", "epoch", "writtenAt"}`.
/// The topic is read to its end at start (and, with leases, whenever a shard's lease is taken); of each
/// key's records, the latest of the highest `epoch` wins (no epoch counts as 0).
///
/// In exactly-once mode the pipeline writes each page's checkpoint in the same
/// transaction as the page's records (`record(streamARN:shardID:checkpoint:)`),
/// and `save` only writes what that did not cover (a shard's end).
public final class KafkaCheckpointStore: CheckpointStore {
    public let topic: String
    private let configuration: KafkaConfiguration
    private let producer: KafkaProducer
    private let transactions: ExactlyOnceTransactions?
    private let logger: Logger
    /// In exactly-once mode: the checkpoint each shard's last committed transaction carried.
    private let committed = Mutex<[String: Checkpoint]>([:])

    /// The topic of an application's checkpoints.
    public static func topicName(application: String) -> String { "fanout.checkpoints.\(application)" }

    /// - Parameters:
    ///   - producer: an idempotent producer (unused in exactly-once mode, where `transactions` writes).
    ///   - transactions: in exactly-once mode, the transactional producers (shared, or one per leased shard).
    public init(
        topic: String, configuration: KafkaConfiguration, producer: KafkaProducer, transactions: ExactlyOnceTransactions? = nil, logger: Logger
    ) {
        self.topic = topic
        self.configuration = configuration
        self.producer = producer
        self.transactions = transactions
        self.logger = logger
    }

    /// Creates the compacted checkpoint topic if it is missing.
    public func ensureTopic(admin: KafkaAdmin) async throws {
        // An existing topic needs no CreateTopics request (see TopicProvisioner).
        guard try await admin.listTopics()[topic] == nil else { return }
        try await admin.createTopics([
            KafkaTopicSpecification(name: topic, partitions: 1, replicationFactor: 1, configs: ["cleanup.policy": "compact"])
        ])
    }

    public func load(streamARN: String) async throws -> [String: Checkpoint] {
        var reading = configuration
        reading["isolation.level"] = "read_committed"
        let messages = try await KafkaTopicReader.readToEnd(topic: topic, configuration: reading, logger: logger)
        var checkpoints: [String: Checkpoint] = [:]
        for message in messages {
            guard let key = message.key.map({ String(decoding: $0, as: UTF8.self) }), key.hasPrefix(streamARN + "|") else { continue }
            do {
                let (shardID, checkpoint) = try Self.decode(message.value)
                // The highest epoch's latest record wins: a zombie's stale-epoch record never moves a checkpoint.
                if let current = checkpoints[shardID], (current.epoch ?? 0) > (checkpoint.epoch ?? 0) {
                    logger.warning("checkpoint of an older lease epoch ignored", metadata: [
                        "fanout.shard": "\(shardID)", "fanout.epoch": "\(checkpoint.epoch ?? 0)", "kafka.offset": "\(message.offset)",
                    ])
                    continue
                }
                checkpoints[shardID] = checkpoint
            } catch {
                logger.error("unreadable checkpoint record ignored", metadata: [
                    "kafka.topic": "\(topic)", "kafka.offset": "\(message.offset)", "error": "\(error)",
                ])
            }
        }
        logger.info("checkpoints loaded", metadata: ["kafka.topic": "\(topic)", "fanout.shards": "\(checkpoints.count)"])
        return checkpoints
    }

    public func save(streamARN: String, shardID: String, checkpoint: Checkpoint) async throws {
        let record = record(streamARN: streamARN, shardID: shardID, checkpoint: checkpoint)
        guard let transactions else {
            _ = try await producer.send([record])
            return
        }
        let key = "\(streamARN)|\(shardID)"
        if committed.withLock({ $0[key] }) == checkpoint { return }
        try await transactions.withTransaction(shardID: shardID, epoch: checkpoint.epoch) { producer in
            _ = try await producer.send([record])
        }
        committedInTransaction(streamARN: streamARN, shardID: shardID, checkpoint: checkpoint)
    }

    /// Notes that a committed transaction carried this checkpoint.
    func committedInTransaction(streamARN: String, shardID: String, checkpoint: Checkpoint) {
        committed.withLock { $0["\(streamARN)|\(shardID)"] = checkpoint }
    }

    /// The Kafka record of a checkpoint.
    public func record(streamARN: String, shardID: String, checkpoint: Checkpoint) -> KafkaProducerRecord {
        var value = JSONObject()
        value["streamArn"] = .string(streamARN)
        value["shardId"] = .string(shardID)
        value["sequenceNumber"] = checkpoint.sequenceNumber.map(JSONValue.string) ?? .null
        value["finished"] = .bool(checkpoint.isFinished)
        value["epoch"] = checkpoint.epoch.map { .number($0) } ?? .null
        value["writtenAt"] = .string(GenericDomainEventMessage.formatTimestamp(Date()))
        return KafkaProducerRecord(
            topic: topic,
            key: Array("\(streamARN)|\(shardID)".utf8),
            value: JSONWriter.bytes(.object(value)),
            headers: [KafkaHeader(key: "content-type", string: "application/json")]
        )
    }

    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads a checkpoint record's value: the shard id and its checkpoint.
    public static func decode(_ bytes: [UInt8]) throws -> (shardID: String, checkpoint: Checkpoint) {
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
        if case .number(let text)? = value["epoch"] {
            guard let number = Int64(text) else { throw DecodingError(description: "epoch \(text) is not an integer") }
            epoch = number
        }
        return (shardID, Checkpoint(sequenceNumber: sequence, isFinished: finished, epoch: epoch))
    }
}

/// Serialises transactions on one transactional producer (librdkafka allows one open transaction at a time),
/// across the shards that route concurrently.
public final class TransactionLock: Sendable {
    private let lock = SerialAsyncLock()

    public init() {}

    /// Runs `body` inside one transaction: begin, body, commit; abort when anything fails.
    public func withTransaction<T: Sendable>(producer: KafkaProducer, _ body: () async throws -> T) async throws -> T {
        try await lock.withLock {
            try await producer.beginTransaction()
            do {
                let result = try await body()
                try await producer.commitTransaction()
                return result
            } catch {
                if let kafka = error as? KafkaError, kafka.isFatal { throw error }
                try? await producer.abortTransaction()
                throw error
            }
        }
    }
}
