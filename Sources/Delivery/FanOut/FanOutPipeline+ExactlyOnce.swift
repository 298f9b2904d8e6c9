import Contracts
import Foundation
import JSON
import Kafka
import Logging
import Router
import StreamReader

/// Exactly-once delivery: a page's records and its checkpoint in one transaction, refused records probed and
/// dead-lettered without ever becoming visible to read_committed consumers.
extension FanOutPipeline {
    /// A record refused inside a page's transaction (which is then aborted).
    fileprivate struct RefusedInTransaction: Error {
        var results: [Result<KafkaAcknowledgement, KafkaError>]
    }

    /// The outcome of a probe transaction (always aborted).
    fileprivate struct ProbeResult: Error {
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
    func sendInTransaction(
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
}
