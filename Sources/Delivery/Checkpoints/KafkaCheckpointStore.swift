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
        let key = CheckpointRecords.key(streamARN: streamARN, shardID: shardID)
        if committed.withLock({ $0[key] }) == checkpoint { return }
        try await transactions.withTransaction(shardID: shardID, epoch: checkpoint.epoch) { producer in
            _ = try await producer.send([record])
        }
        committedInTransaction(streamARN: streamARN, shardID: shardID, checkpoint: checkpoint)
    }

    /// Notes that a committed transaction carried this checkpoint.
    func committedInTransaction(streamARN: String, shardID: String, checkpoint: Checkpoint) {
        committed.withLock { $0[CheckpointRecords.key(streamARN: streamARN, shardID: shardID)] = checkpoint }
    }

    /// The Kafka record of a checkpoint.
    public func record(streamARN: String, shardID: String, checkpoint: Checkpoint) -> KafkaProducerRecord {
        CheckpointRecords.record(topic: topic, streamARN: streamARN, shardID: shardID, checkpoint: checkpoint)
    }
}
