import Contracts
import Foundation
import Kafka
import Logging
import StreamReader
import Synchronization

/// Checkpoints in a compacted Kafka topic, one per application (`CheckpointRecords`: the topic's name, its
/// records and how they resolve). The topic is read to its end at start (and, with leases, whenever a shard's
/// lease is taken).
///
/// In exactly-once mode each page's checkpoint record (`record(streamARN:shardID:checkpoint:)`) is committed
/// in the page's transaction by the pipeline (``pageCheckpointsCommitWithPages``), and `save` writes, in a
/// transaction of its own, only what no page carries: a shard's final checkpoint. Each checkpoint has one writer.
public final class KafkaCheckpointStore: CheckpointStore {
    public let topic: String
    private let configuration: KafkaConfiguration
    private let producer: KafkaProducer
    private let transactions: ExactlyOnceTransactions?
    private let logger: Logger

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
        let resolution = try await CheckpointRecords.read(topic: topic, configuration: configuration, logger: logger)
        for problem in resolution.unreadable {
            logger.error("unreadable checkpoint record ignored", metadata: [LogKey.topic: "\(topic)", LogKey.error: "\(problem)"])
        }
        for stale in resolution.staleEpochs {
            logger.warning("checkpoint of an older lease epoch ignored", metadata: [LogKey.topic: "\(topic)", LogKey.error: "\(stale)"])
        }
        let checkpoints = resolution.checkpoints(streamARN: streamARN)
        logger.info("checkpoints loaded", metadata: [LogKey.topic: "\(topic)", LogKey.shards: "\(checkpoints.count)"])
        return checkpoints
    }

    public func save(streamARN: String, shardID: String, checkpoint: Checkpoint) async throws {
        let record = record(streamARN: streamARN, shardID: shardID, checkpoint: checkpoint)
        guard let transactions else {
            _ = try await producer.send([record])
            return
        }
        try await transactions.withTransaction(shardID: shardID, epoch: checkpoint.epoch) { producer in
            _ = try await producer.send([record])
        }
    }

    /// In exactly-once mode the pipeline commits each page's checkpoint with the page.
    public var pageCheckpointsCommitWithPages: Bool { transactions != nil }

    /// The Kafka record of a checkpoint.
    public func record(streamARN: String, shardID: String, checkpoint: Checkpoint) -> KafkaProducerRecord {
        CheckpointRecords.record(topic: topic, streamARN: streamARN, shardID: shardID, checkpoint: checkpoint)
    }
}
