import AWS
import Contracts
import Foundation
import CQRSCore
import JSON
import Kafka
import Logging
import Metrics
import Router
import StreamReader
import Synchronization

/// Routes pages of stream records to Kafka: plans each record's fan-out with
/// one snapshot of the live routes, produces the page's records in order, and
/// returns only when Kafka acknowledged all of them.
public final class FanOutPipeline: Sendable {
    public let routes: LiveRoutes
    let exactlyOnce: (checkpoints: KafkaCheckpointStore, transactions: ExactlyOnceTransactions)?
    let maximumValueBytes: Int
    let producer: KafkaProducer
    let logger: Logger
    /// The counts `/status` shows and the routing metrics.
    let metrics = DeliveryMetrics()

    /// - Parameters:
    ///   - exactlyOnce: in exactly-once mode, the checkpoint store whose record of each page is committed in the
    ///     page's transaction, and the transactional producers (shared, or one per leased shard) that run it.
    public init(
        routes: LiveRoutes,
        producer: KafkaProducer,
        exactlyOnce: (checkpoints: KafkaCheckpointStore, transactions: ExactlyOnceTransactions)? = nil,
        maximumValueBytes: Int = FanOutPlanner.defaultMaximumValueBytes,
        logger: Logger
    ) {
        self.routes = routes
        self.producer = producer
        self.exactlyOnce = exactlyOnce
        self.maximumValueBytes = maximumValueBytes
        self.logger = logger
    }

    /// Distinct event names counted as unrouted (in the status and the metric's label); past it, `(other)`.
    public static let maximumUnroutedNames = DeliveryMetrics.maximumUnroutedNames
    public static let otherEventNames = DeliveryMetrics.otherEventNames

    public var currentCounts: RouterCounts { metrics.currentCounts }

    /// Routes one page; throws if any record could not be delivered (the caller retries the page).
    public func process(_ page: ShardRecords) async throws {
        let planner = FanOutPlanner(routes: routes.current, maximumValueBytes: maximumValueBytes)
        var records: [KafkaProducerRecord] = []
        records.reserveCapacity(page.records.count * 2)
        // One more outcome is appended for each record a topic refuses (sent to the dead letters instead).
        var outcomes: [RecordOutcome] = []
        outcomes.reserveCapacity(page.records.count)
        for record in page.records {
            let outcome = planner.plan(record, streamARN: page.streamARN, shardID: page.shardID, into: &records)
            if case .deadLettered(let reason) = outcome {
                logger.warning("record sent to the dead-letter topic", metadata: [
                    LogKey.shard: "\(page.shardID)", LogKey.sequence: "\(record.sequenceNumber)", LogKey.error: "\(reason)",
                ])
            }
            outcomes.append(outcome)
        }
        if let exactlyOnce, let last = page.records.last {
            // The page's records and the checkpoint that covers them, in one transaction.
            let checkpoint = Checkpoint(sequenceNumber: last.sequenceNumber, epoch: page.epoch)
            let checkpointRecord = exactlyOnce.checkpoints.record(streamARN: page.streamARN, shardID: page.shardID, checkpoint: checkpoint)
            records = try await sendInTransaction(
                records, checkpoint: checkpointRecord, page: page, transactions: exactlyOnce.transactions,
                deadLetterTopic: planner.routes.file.deadLetterTopic, outcomes: &outcomes
            )
        } else if !records.isEmpty {
            records = try await send(records, deadLetterTopic: planner.routes.file.deadLetterTopic, outcomes: &outcomes)
        }
        metrics.record(page: page, records: records, outcomes: outcomes)
        metrics.recordLatency(page)
    }


    /// A dead letter for a record its topic refused: its headers (source coordinates included), the refusal as
    /// `fanout-error`, and its body unless the body was too large.
    func deadLetter(for record: KafkaProducerRecord, refusedWith error: KafkaError, deadLetterTopic: String) -> (KafkaProducerRecord, String) {
        let reason = "topic \(record.topic) refused the record: \(error)"
        var value = record.value
        if error.code == KafkaError.Code.messageSizeTooLarge || value.count > maximumValueBytes {
            value = JSONWriter.bytes(.object(JSONObject(["topic": .string(record.topic), "sizeBytes": .number(record.value.count)])))
        }
        let dead = KafkaProducerRecord(
            topic: deadLetterTopic, key: record.key, value: value,
            headers: record.headers.filter { $0.key != FanoutHeader.error }
                + [KafkaHeader(key: FanoutHeader.error, string: String(reason.prefix(FanOutPlanner.maximumHeaderValueBytes / 2)))]
        )
        logger.warning("record refused by its topic, sent to the dead-letter topic", metadata: [
            LogKey.topic: "\(record.topic)", LogKey.error: "\(error)",
        ])
        return (dead, reason)
    }

    /// Sends the page's records (at-least-once mode). A record its topic refuses for good (too large for
    /// the topic, invalid, not allowed) is sent once more alone and, refused again, replaced by a dead letter
    /// carrying its headers (source coordinates included) and the refusal as `fanout-error`: retrying the
    /// page could never succeed and would block the shard. Any other failure throws (the page is retried),
    /// as does a dead letter the dead-letter topic refuses too. Returns the records as finally written.
    private func send(_ records: [KafkaProducerRecord], deadLetterTopic: String, outcomes: inout [RecordOutcome]) async throws -> [KafkaProducerRecord] {
        let results = await producer.sendEach(records)
        var written: [KafkaProducerRecord] = []
        written.reserveCapacity(records.count)
        for (record, result) in zip(records, results) {
            switch result {
            case .success:
                written.append(record)
            case .failure(let error) where error.isRecordRefusal && record.topic != deadLetterTopic:
                // Records after one that could not be enqueued were never sent: try each alone.
                if case .success = await producer.sendEach([record]).first {
                    written.append(record)
                    continue
                }
                let (dead, reason) = deadLetter(for: record, refusedWith: error, deadLetterTopic: deadLetterTopic)
                _ = try await producer.send([dead])
                written.append(dead)
                outcomes.append(.deadLettered(reason: reason))
            case .failure(let error):
                throw error
            }
        }
        return written
    }
}
