import AWS
import Foundation
import Logging
import Synchronization

/// A page of records from one shard, in sequence order.
public struct ShardRecords: Sendable {
    public var streamARN: String
    public var shardID: String
    public var records: [StreamRecord]

    public init(streamARN: String, shardID: String, records: [StreamRecord]) {
        self.streamARN = streamARN
        self.shardID = shardID
        self.records = records
    }
}

/// Where to start a shard that has no checkpoint.
public enum StartPosition: String, Sendable, Hashable, CaseIterable {
    /// The oldest record still in the stream (the default: nothing is missed).
    case trimHorizon = "TRIM_HORIZON"
    /// Only records written after the reader starts.
    case latest = "LATEST"
}

public struct StreamReaderConfiguration: Sendable {
    public var streamARN: String
    public var startPosition: StartPosition
    /// Longest wait after an empty page before polling the shard again (250 ms: four polls a second, as Lambda does).
    public var idlePollInterval: Duration
    /// How often the shard list is refreshed even when no shard ended.
    public var discoveryInterval: Duration
    /// GetRecords `Limit` (nil: the service default, up to 1,000 records).
    public var pageLimit: Int?

    public init(
        streamARN: String,
        startPosition: StartPosition = .trimHorizon,
        idlePollInterval: Duration = .milliseconds(250),
        discoveryInterval: Duration = .seconds(30),
        pageLimit: Int? = nil
    ) {
        self.streamARN = streamARN
        self.startPosition = startPosition
        self.idlePollInterval = idlePollInterval
        self.discoveryInterval = discoveryInterval
        self.pageLimit = pageLimit
    }
}

/// Reads every shard of a DynamoDB stream, parents before children, each
/// shard strictly in order, and hands each page to `process`. A shard's
/// checkpoint moves only after `process` returned for the page, so a page
/// whose records were not all acknowledged is read again after a restart.
public final class DynamoDBStreamReader: Sendable {
    private let streams: DynamoDBStreams
    private let configuration: StreamReaderConfiguration
    private let checkpoints: any CheckpointStore
    private let logger: Logger
    private let state = Mutex(State())

    struct State {
        var stopRequested = false
        var finished: Set<String> = []
        var running: Set<String> = []
        var rediscover = false
        var failure: (any Error)?
    }

    public init(streams: DynamoDBStreams, configuration: StreamReaderConfiguration, checkpoints: any CheckpointStore, logger: Logger) {
        self.streams = streams
        self.configuration = configuration
        self.checkpoints = checkpoints
        self.logger = logger
    }

    /// Asks the reader to stop: every shard finishes the page it is processing, checkpoints it, and `run` returns.
    public func requestStop() {
        state.withLock { $0.stopRequested = true }
    }

    private var isStopping: Bool { state.withLock { $0.stopRequested } }

    /// Reads until `requestStop()` or cancellation. Throws on errors that retrying cannot fix
    /// (a missing stream, refused credentials); retriable AWS errors are retried by the AWS client.
    public func run(process: @escaping @Sendable (ShardRecords) async throws -> Void) async throws {
        let arn = configuration.streamARN
        let saved = try await checkpoints.load(streamARN: arn)
        state.withLock { state in
            state.finished = Set(saved.filter { $0.value.isFinished }.map(\.key))
        }
        await withTaskGroup(of: Void.self) { group in
            var lastDiscovery = ContinuousClock.now - configuration.discoveryInterval
            while !isStopping, !Task.isCancelled {
                let asked = state.withLock { state in
                    defer { state.rediscover = false }
                    return state.rediscover
                }
                if asked || ContinuousClock.now - lastDiscovery >= configuration.discoveryInterval {
                    lastDiscovery = ContinuousClock.now
                    do {
                        for shard in try await discoverReadyShards() {
                            let checkpoint = saved[shard.shardID]
                            group.addTask { await self.readShardReportingFailure(shard, from: checkpoint, process: process) }
                        }
                    } catch {
                        fail(with: error)
                    }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            if Task.isCancelled { requestStop() }
            await group.waitForAll()
        }
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }

    /// Lists every shard (paging DescribeStream to the end) and marks the ready ones as running.
    private func discoverReadyShards() async throws -> [Shard] {
        let (description, shards) = try await streams.describeAllShards(streamARN: configuration.streamARN)
        let status = description.streamStatus
        if status == "DISABLED" || status == "DISABLING" {
            logger.warning("stream is \(status): no new records will arrive", metadata: ["fanout.stream": "\(configuration.streamARN)"])
        }
        return state.withLock { state in
            let ready = ShardLineage(shards: shards).readyShards(finished: state.finished, running: state.running)
            state.running.formUnion(ready.map(\.shardID))
            return ready
        }
    }

    private func fail(with error: any Error) {
        state.withLock { state in
            if state.failure == nil { state.failure = error }
            state.stopRequested = true
        }
    }

    private func readShardReportingFailure(_ shard: Shard, from checkpoint: Checkpoint?, process: @escaping @Sendable (ShardRecords) async throws -> Void) async {
        do {
            try await readShard(shard, from: checkpoint, process: process)
        } catch is CancellationError {
            return
        } catch {
            logger.error("reading shard failed", metadata: ["fanout.shard": "\(shard.shardID)", "error": "\(error)"])
            fail(with: error)
        }
    }

    private func readShard(_ shard: Shard, from checkpoint: Checkpoint?, process: @escaping @Sendable (ShardRecords) async throws -> Void) async throws {
        let arn = configuration.streamARN
        var logger = self.logger
        logger[metadataKey: "fanout.shard"] = "\(shard.shardID)"
        var lastSequence = checkpoint?.sequenceNumber
        let startType: ShardIteratorType =
            if let lastSequence { .afterSequenceNumber(lastSequence) } else {
                configuration.startPosition == .latest ? .latest : .trimHorizon
            }
        logger.info("shard opened", metadata: ["fanout.start": "\(lastSequence.map { "after \($0)" } ?? configuration.startPosition.rawValue)"])
        var iterator: String? = try await streams.getShardIterator(streamARN: arn, shardID: shard.shardID, type: startType)
        var idleWait = Duration.milliseconds(25)
        while let current = iterator, !isStopping {
            let page = try await streams.getRecords(shardIterator: current, limit: configuration.pageLimit)
            if !page.records.isEmpty {
                let batch = ShardRecords(streamARN: arn, shardID: shard.shardID, records: page.records)
                try await processUntilDone(batch, logger: logger, process: process)
                lastSequence = page.records.last!.sequenceNumber
                try await checkpoints.save(streamARN: arn, shardID: shard.shardID, checkpoint: Checkpoint(sequenceNumber: lastSequence))
                idleWait = .milliseconds(25)
            }
            iterator = page.nextShardIterator
            if iterator != nil, page.records.isEmpty {
                try await sleepUnlessStopping(idleWait)
                idleWait = min(idleWait * 2, configuration.idlePollInterval)
            }
        }
        if iterator == nil {
            try await checkpoints.save(streamARN: arn, shardID: shard.shardID, checkpoint: Checkpoint(sequenceNumber: lastSequence, isFinished: true))
            logger.info("shard finished")
            state.withLock { state in
                state.finished.insert(shard.shardID)
                state.running.remove(shard.shardID)
                state.rediscover = true
            }
        }
    }

    /// Delivers a page, retrying with backoff until it is processed: a page is never skipped.
    private func processUntilDone(_ batch: ShardRecords, logger: Logger, process: @Sendable (ShardRecords) async throws -> Void) async throws {
        var backoff = Duration.milliseconds(200)
        while true {
            do {
                try await process(batch)
                return
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.error("routing a page failed; retrying it (the checkpoint stays put)", metadata: ["error": "\(error)", "fanout.records": "\(batch.records.count)"])
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(10))
            }
        }
    }

    private func sleepUnlessStopping(_ duration: Duration) async throws {
        var remaining = duration
        while remaining > .zero, !isStopping {
            let step = min(remaining, .milliseconds(50))
            try await Task.sleep(for: step)
            remaining -= step
        }
    }
}
