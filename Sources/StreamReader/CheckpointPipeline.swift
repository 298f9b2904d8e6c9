import Contracts
import Foundation
import Logging
import Synchronization

/// One shard's checkpoints, written in page order while the next page is routed: a page's checkpoint is
/// started once the page was processed, and awaited before the next page's is started (and before the
/// shard stops). A checkpoint is never written for a lease this worker lost; a failed write is retried
/// with backoff until it is written or the shard must stop. When the store commits page checkpoints with
/// the pages (exactly-once mode), only the shard's final checkpoint is written here.
struct CheckpointPipeline {
    let reader: ShardedStreamReader
    let shardID: String
    let logger: Logger
    /// The last page's checkpoint, being saved.
    private var pending: Task<Bool, any Error>?

    init(reader: ShardedStreamReader, shardID: String, logger: Logger) {
        self.reader = reader
        self.shardID = shardID
        self.logger = logger
    }

    /// Awaits the previous page's checkpoint, then starts saving `checkpoint` in the background. False when
    /// the previous one could not be saved because the shard must stop.
    mutating func enqueue(_ checkpoint: Checkpoint) async throws -> Bool {
        guard try await drain() else { return false }
        if reader.checkpoints.pageCheckpointsCommitWithPages {
            // Committed with the page's records, by `process`.
            reader.update(shardID) { $0.status.lastCheckpoint = Date() }
            return true
        }
        pending = Task { [self] in try await save(checkpoint) }
        return true
    }

    /// Awaits the checkpoint being saved, if any: false when it was not saved because the shard must stop.
    mutating func drain() async throws -> Bool {
        guard let task = pending else { return true }
        pending = nil
        // Cancelling the caller cancels the write.
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// Drops the checkpoint being saved (the shard's reader ended by an error or cancellation).
    func cancel() {
        pending?.cancel()
    }

    /// Saves a checkpoint now, retrying with backoff; false when the shard must stop (or its lease was lost)
    /// before it was saved.
    func save(_ checkpoint: Checkpoint) async throws -> Bool {
        var failures = 0
        while true {
            // Never move a checkpoint for a lease this worker lost.
            if reader.isFenced(shardID, epoch: checkpoint.epoch) { return false }
            do {
                try await reader.checkpoints.save(streamARN: reader.configuration.streamARN, shardID: shardID, checkpoint: checkpoint)
                reader.update(shardID) { $0.status.lastCheckpoint = Date() }
                return true
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as ShardFencedError {
                reader.shardFenced(shardID, epoch: checkpoint.epoch, error, logger: logger)
                return false
            } catch {
                if reader.mustStop(shardID, epoch: checkpoint.epoch) {
                    logger.warning("the checkpoint was not saved before the shutdown: the page is read again at the next start", metadata: [
                        LogKey.error: "\(error)",
                    ])
                    return false
                }
                failures += 1
                logger.error("saving the checkpoint failed; retrying", metadata: [LogKey.error: "\(error)"])
                reader.recordError(shardID, error)
                try await reader.pause(reader.backoff(after: failures), shardID: shardID)
                if reader.mustStop(shardID, epoch: checkpoint.epoch) { return false }
            }
        }
    }
}
