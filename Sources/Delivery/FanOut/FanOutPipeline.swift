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

/// Running totals of what the router did, for the status model.
public struct RouterCounts: Sendable, Hashable {
    public var recordsRead = 0
    /// Kafka records acknowledged, by topic.
    public var routedByTopic: [String: Int] = [:]
    public var unroutedByEventName: [String: Int] = [:]
    public var deadLettered = 0
    public var ignored = 0
}

/// Routes pages of stream records to Kafka: plans each record's fan-out with
/// one snapshot of the live routes, produces the page's records in order, and
/// returns only when Kafka acknowledged all of them.
public final class FanOutPipeline: Sendable {
    public let routes: LiveRoutes
    private let exactlyOnce: (checkpoints: KafkaCheckpointStore, transactions: ExactlyOnceTransactions)?
    private let maximumValueBytes: Int
    private let producer: KafkaProducer
    private let logger: Logger
    private let counts = Mutex(RouterCounts())
    private let metrics = Mutex<[String: Counter]>([:])
    private let recordsRead = Counter(label: "fanout_records_read_total")
    private let deadLettered = Counter(label: "fanout_records_dead_lettered_total")
    private let ignored = Counter(label: "fanout_records_ignored_total")
    private let deliveryLatency = Metrics.Timer(label: "fanout_delivery_latency_seconds")

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
    public static let maximumUnroutedNames = 1000
    public static let otherEventNames = "(other)"

    public var currentCounts: RouterCounts { counts.withLock { $0 } }

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
        record(page: page, records: records, outcomes: outcomes)
        recordLatency(page)
    }

    /// Delivery latency: from the record's ApproximateCreationDateTime (DynamoDB rounds it down to
    /// the second) to Kafka's acknowledgement, one observation per stream record.
    private func recordLatency(_ page: ShardRecords) {
        let now = Date()
        for record in page.records {
            guard let created = record.approximateCreationDateTime else { continue }
            deliveryLatency.recordSeconds(max(0, now.timeIntervalSince(created)))
        }
    }

    /// A record refused inside a page's transaction (which is then aborted).
    private struct RefusedInTransaction: Error {
        var results: [Result<KafkaAcknowledgement, KafkaError>]
    }

    /// The outcome of a probe transaction (always aborted).
    private struct ProbeResult: Error {
        var result: Result<KafkaAcknowledgement, KafkaError>?
    }

    /// Sends the page's records and its checkpoint in one transaction (exactly-once mode). When a topic refuses a
    /// record (too large for the topic, invalid, not allowed) the transaction is aborted (nothing of it is ever
    /// visible to read_committed consumers); each refused record is sent once more alone in a transaction that
    /// is aborted too (a probe), and, refused again, replaced by a dead letter; then the page's transaction runs
    /// again. A record the probe accepts (it shared the refused record's batch, or came after it) stays. A
    /// refusal anywhere in the batch is its cause: the records librdkafka purged when the transaction failed are
    /// not. A transaction that failed only in the aftermath of an earlier one (purged records, a broken sequence
    /// after an abort, a begin while the abort settles) runs again, up to ``transactionAftermathRetries`` times.
    /// Any other failure throws (the page is retried). Returns the records as finally committed.
    private func sendInTransaction(
        _ records: [KafkaProducerRecord], checkpoint: KafkaProducerRecord, page: ShardRecords, transactions: ExactlyOnceTransactions,
        deadLetterTopic: String, outcomes: inout [RecordOutcome]
    ) async throws -> [KafkaProducerRecord] {
        var attempt = records
        // Every refusal round dead-letters at least one record, or throws.
        var refusalRounds = 0
        var aftermathRetries = 0
        while true {
            let batch = attempt + [checkpoint]
            do {
                try await transactions.withTransaction(shardID: page.shardID, epoch: page.epoch) { producer in
                    let results = await producer.sendEach(batch)
                    if results.contains(where: { if case .failure(let error) = $0 { error.isRecordRefusal } else { false } }) {
                        throw RefusedInTransaction(results: results)
                    }
                    for case .failure(let error) in results { throw error }
                }
                return attempt
            } catch let refused as RefusedInTransaction {
                refusalRounds += 1
                guard refusalRounds <= records.count + 1 else {
                    throw KafkaError(code: .fatal, message: "the page's transaction kept being refused")
                }
                var replaced = false
                for (index, result) in refused.results.enumerated().dropLast() {
                    guard case .failure(let error) = result, error.isRecordRefusal, attempt[index].topic != deadLetterTopic else { continue }
                    let record = attempt[index]
                    switch try await probe(record, page: page, transactions: transactions) {
                    case .success:
                        continue
                    case .failure(let again):
                        let (dead, reason) = deadLetter(for: record, refusedWith: again, deadLetterTopic: deadLetterTopic)
                        attempt[index] = dead
                        outcomes.append(.deadLettered(reason: reason))
                        replaced = true
                    }
                }
                guard replaced else {
                    // Nothing refused when sent alone: a transient refusal; the page is retried.
                    throw refused.results.lazy.compactMap { if case .failure(let error) = $0 { error } else { nil } }.first
                        ?? KafkaError(code: .fatal, message: "a transaction was refused without a failed record")
                }
            } catch let error as KafkaError where error.isTransactionAftermath && aftermathRetries < Self.transactionAftermathRetries {
                aftermathRetries += 1
                logger.warning("the page's transaction failed in the aftermath of an earlier one; running it again", metadata: [
                    LogKey.shard: "\(page.shardID)", LogKey.attempt: "\(aftermathRetries)", LogKey.error: "\(error)",
                ])
                try await Task.sleep(for: .milliseconds(100 * aftermathRetries))
            }
        }
    }

    /// How many times a page's transaction that failed in the aftermath of an earlier one runs again before the
    /// failure is thrown (and the page retried by the reader).
    public static let transactionAftermathRetries = 3

    /// Sends one record alone in a transaction that is then aborted: success, or the refusal. Any other failure
    /// (the first send after an aborted transaction may fail while librdkafka bumps the producer epoch) is tried
    /// again, up to five times, then thrown.
    private func probe(
        _ record: KafkaProducerRecord, page: ShardRecords, transactions: ExactlyOnceTransactions
    ) async throws -> Result<Void, KafkaError> {
        var lastError: KafkaError?
        for attempt in 0..<5 {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(100 * attempt)) }
            var outcome: Result<KafkaAcknowledgement, KafkaError>?
            do {
                try await transactions.withTransaction(shardID: page.shardID, epoch: page.epoch) { producer in
                    throw ProbeResult(result: await producer.sendEach([record]).first)
                }
            } catch let result as ProbeResult {
                outcome = result.result
            } catch let error as KafkaError where !error.isFatal {
                // Beginning the probe's transaction failed (the abort before it is still settling).
                lastError = error
                continue
            }
            switch outcome {
            case .success?: return .success(())
            case .failure(let error)? where error.isRecordRefusal: return .failure(error)
            case .failure(let error)?: lastError = error
            case nil: lastError = KafkaError(code: .fatal, message: "a probe of a refused record returned no outcome")
            }
        }
        throw lastError!
    }

    /// A dead letter for a record its topic refused: its headers (source coordinates included), the refusal as
    /// `fanout-error`, and its body unless the body was too large.
    private func deadLetter(for record: KafkaProducerRecord, refusedWith error: KafkaError, deadLetterTopic: String) -> (KafkaProducerRecord, String) {
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

    private func record(page: ShardRecords, records: [KafkaProducerRecord], outcomes: [RecordOutcome]) {
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
