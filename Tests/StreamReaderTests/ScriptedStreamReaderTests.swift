import AWS
import AsyncHTTPClient
import Foundation
import Logging
import StreamReader
import Synchronization
import TestSupport
import Testing

/// The reader against the scripted stream server: what moto cannot show (lineage,
/// rollover, paging, expired iterators, trimming, throttling, 500s).
@Suite(.timeLimit(.minutes(2))) struct ScriptedStreamReaderTests {
    /// One scripted server, one AWS client, one recording logger.
    struct Harness {
        let server: ScriptedStreamServer
        let httpClient: HTTPClient
        let streams: DynamoDBStreams
        let logger: Logger
        let logs: LogRecorder.Store

        /// Two attempts with short pauses, so errors reach the reader quickly.
        static let fastRetries = AWSRetryPolicy(
            maxAttempts: 2, baseDelay: .milliseconds(5), throttlingBaseDelay: .milliseconds(5),
            maxDelay: .milliseconds(20), maxElapsed: .seconds(2)
        )

        static func start(_ scenario: StreamScenario) async throws -> Harness {
            let server = try await ScriptedStreamServer.start(scenario)
            let aws = AWSConfiguration(
                region: "us-east-1",
                credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
                endpoint: server.endpoint,
                retryPolicy: fastRetries
            )
            let (logger, logs) = LogRecorder.makeLogger(label: "stream-reader-test")
            let httpClient = HTTPClient.forTests
            return Harness(
                server: server, httpClient: httpClient,
                streams: DynamoDBStreams(configuration: aws, httpClient: httpClient, logger: logger),
                logger: logger, logs: logs
            )
        }

        func configuration(_ change: (inout StreamReaderConfiguration) -> Void = { _ in }) -> StreamReaderConfiguration {
            var configuration = StreamReaderConfiguration(
                streamARN: server.scenario.streamArn, pollInterval: .milliseconds(50),
                discoveryInterval: .seconds(30), errorBackoff: .milliseconds(50), maximumErrorBackoff: .milliseconds(400)
            )
            change(&configuration)
            return configuration
        }

        func makeReader(checkpoints: any CheckpointStore = InMemoryCheckpointStore(), _ change: (inout StreamReaderConfiguration) -> Void = { _ in }) -> DynamoDBStreamReader {
            DynamoDBStreamReader(streams: streams, configuration: configuration(change), checkpoints: checkpoints, logger: logger)
        }

        func shutdown() async {
            await server.stop()
        }
    }

    /// Every page handed to `process`, in the order it returned.
    final class Collector: Sendable {
        let pages = Mutex<[ShardRecords]>([])
        var records: [StreamRecord] { pages.withLock { $0.flatMap(\.records) } }
        var labels: [String] { records.map(Self.label) }
        func add(_ page: ShardRecords) { pages.withLock { $0.append(page) } }
        func labels(ofShard shardID: String) -> [String] {
            pages.withLock { $0.filter { $0.shardID == shardID }.flatMap(\.records).map(Self.label) }
        }
        /// The events of one aggregate, in delivery order: `a1`, `a2`, …
        func labels(ofKey key: String) -> [String] { labels.filter { $0.hasPrefix(key) } }

        static func label(_ record: StreamRecord) -> String {
            guard case .s(let id) = record.keys["aggregateId"], case .n(let sequence) = record.keys["sequenceNumber"] else { return "?" }
            return "\(id)\(sequence)"
        }
    }

    /// Runs `reader` until `done` holds (or `timeout`), stops it, and returns what `run` threw.
    static func run(
        _ reader: DynamoDBStreamReader,
        timeout: Duration = .seconds(20),
        process: @escaping @Sendable (ShardRecords) async throws -> Void,
        until done: @escaping @Sendable () -> Bool
    ) async throws {
        let running = Task { try await reader.run(process: process) }
        let deadline = ContinuousClock.now + timeout
        while !done(), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(200))  // anything extra would show up now
        reader.requestStop()
        try await running.value
    }

    static func labels(_ key: String, _ range: ClosedRange<Int>) -> [String] { range.map { "\(key)\($0)" } }

    @Test func childrenWaitForTheirFinishedAndCheckpointedParentAndKeepPerKeyOrder() async throws {
        // Children listed before their parents, and 2 shards per DescribeStream page.
        let harness = try await Harness.start(StreamScenario(
            describePageSize: 2,
            shards: [
                .init(id: "shard-child", parent: "shard-parent", records: StreamScenario.events("a", 4...6) + StreamScenario.events("b", 3...4)),
                .init(id: "shard-parent", closed: true, records: StreamScenario.events("a", 1...3) + StreamScenario.events("b", 1...2)),
                .init(id: "shard-orphan", parent: "shard-trimmed-away", closed: true, records: StreamScenario.events("c", 1...2)),
                .init(id: "shard-independent", records: StreamScenario.events("d", 1...3)),
            ]
        ))
        let checkpoints = InMemoryCheckpointStore()
        let reader = harness.makeReader(checkpoints: checkpoints) { $0.pageLimit = 2 }
        let arn = harness.server.scenario.streamArn
        let collector = Collector()
        let parentFinishedFirst = Mutex<Bool?>(nil)
        try await Self.run(reader, process: { page in
            if page.shardID == "shard-child" {
                let parent = try await checkpoints.load(streamARN: arn)["shard-parent"]
                parentFinishedFirst.withLock { if $0 == nil { $0 = parent?.isFinished == true } }
            }
            try await Task.sleep(for: .milliseconds(30))
            collector.add(page)
        }, until: { collector.records.count >= 15 })

        #expect(collector.labels.count == 15)
        #expect(Set(collector.labels).count == 15, "no record twice")
        #expect(collector.labels(ofKey: "a") == Self.labels("a", 1...6))
        #expect(collector.labels(ofKey: "b") == Self.labels("b", 1...4))
        #expect(collector.labels(ofKey: "c") == Self.labels("c", 1...2))
        #expect(collector.labels(ofKey: "d") == Self.labels("d", 1...3))
        #expect(parentFinishedFirst.withLock { $0 } == true, "the child was read before its parent was finished and checkpointed")

        let stats = try await harness.server.stats(harness.httpClient)
        #expect((stats.calls["DescribeStream"] ?? 0) >= 2, "DescribeStream was not paged")
        #expect(stats.maxConcurrentGetRecords.values.allSatisfy { $0 <= 2 })
        let status = reader.status
        #expect(status.shards.map(\.shardID).sorted() == ["shard-child", "shard-independent", "shard-orphan", "shard-parent"])
        #expect(status.shard("shard-parent")?.state == .finished)
        #expect(status.shard("shard-orphan")?.state == .finished)
        #expect(status.shard("shard-child")?.state == .reading)
        #expect(status.shard("shard-child")?.parentShardID == "shard-parent")
        #expect(status.shard("shard-child")?.recordsRead == 5)
        #expect(status.shard("shard-independent")?.lastSequenceNumber == collector.pages.withLock { $0.last { $0.shardID == "shard-independent" }?.records.last?.sequenceNumber })
        #expect(status.shard("shard-independent")?.lastCheckpoint != nil)
        #expect((status.shard("shard-independent")?.newestRecordAge() ?? .zero) >= .milliseconds(500))
        let saved = try await checkpoints.load(streamARN: arn)
        #expect(saved["shard-parent"]?.isFinished == true)
        #expect(saved["shard-orphan"]?.isFinished == true)
        await harness.shutdown()
    }

    /// A store whose page checkpoints are committed by `process` with the pages (exactly-once mode's Kafka store):
    /// every save the reader makes is recorded.
    final class PagesCarryCheckpoints: CheckpointStore {
        let saves = Mutex<[Checkpoint]>([])
        func load(streamARN: String) async throws -> [String: Checkpoint] { [:] }
        func save(streamARN: String, shardID: String, checkpoint: Checkpoint) async throws { saves.withLock { $0.append(checkpoint) } }
        var pageCheckpointsCommitWithPages: Bool { true }
    }

    @Test func whenPagesCarryTheirCheckpointsTheReaderWritesOnlyTheShardsFinalOne() async throws {
        // Each checkpoint has one writer: the page's (exactly-once) transaction, or for a shard's end the reader.
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(id: "shard-closed", closed: true, records: StreamScenario.events("a", 1...5)),
        ]))
        let store = PagesCarryCheckpoints()
        let reader = harness.makeReader(checkpoints: store) { $0.pageLimit = 2 }
        let collector = Collector()
        try await Self.run(reader, process: { collector.add($0) }, until: { reader.status.shard("shard-closed")?.state == .finished })
        #expect(collector.pages.withLock { $0.count } == 3)
        #expect(store.saves.withLock { $0 } == [Checkpoint(sequenceNumber: collector.records.last?.sequenceNumber, isFinished: true)])
        #expect(reader.status.shard("shard-closed")?.lastCheckpoint != nil)
        await harness.shutdown()
    }

    @Test func independentShardsAreReadConcurrently() async throws {
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(id: "shard-x", records: StreamScenario.events("x", 1...2)),
            .init(id: "shard-y", records: StreamScenario.events("y", 1...2)),
        ]))
        let reader = harness.makeReader()
        let collector = Collector()
        let waitedForY = Mutex(false)
        try await Self.run(reader, process: { page in
            if page.shardID == "shard-x" {
                // Holds shard x until shard y delivered: only possible when both are read at once.
                let deadline = ContinuousClock.now + .seconds(5)
                while collector.labels(ofShard: "shard-y").isEmpty, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                waitedForY.withLock { $0 = !collector.labels(ofShard: "shard-y").isEmpty }
            }
            collector.add(page)
        }, until: { collector.records.count >= 4 })
        #expect(waitedForY.withLock { $0 }, "shard y was not read while shard x was busy")
        #expect(collector.labels.sorted() == ["x1", "x2", "y1", "y2"])
        await harness.shutdown()
    }

    @Test func shardsInAParentCycleAreReadAndReportedOnceAndTheirChildWaits() async throws {
        // A listing AWS never sends: a and b name each other as parent, s names itself; c is a's child.
        let harness = try await Harness.start(StreamScenario(
            describePageSize: 2,
            shards: [
                .init(id: "shard-c", parent: "shard-a", records: StreamScenario.events("a", 3...4)),
                .init(id: "shard-a", parent: "shard-b", closed: true, records: StreamScenario.events("a", 1...2)),
                .init(id: "shard-b", parent: "shard-a", closed: true, records: StreamScenario.events("b", 1...2)),
                .init(id: "shard-s", parent: "shard-s", records: StreamScenario.events("s", 1...2)),
            ]
        ))
        let reader = harness.makeReader { $0.discoveryInterval = .milliseconds(300) }
        let collector = Collector()
        try await Self.run(reader, process: { collector.add($0) }, until: { collector.records.count >= 8 })
        #expect(collector.labels(ofKey: "a") == Self.labels("a", 1...4), "the child was read before its parent ended, or not at all")
        #expect(collector.labels(ofKey: "b") == Self.labels("b", 1...2))
        #expect(collector.labels(ofKey: "s") == Self.labels("s", 1...2))
        let status = reader.status
        #expect(status.shard("shard-a")?.state == .finished)
        #expect(status.shard("shard-a")?.lastError?.contains("parents form a cycle (shard-a → shard-b → shard-a)") == true)
        #expect(status.shard("shard-b")?.lastError?.contains("shard-a → shard-b → shard-a") == true)
        #expect(status.shard("shard-s")?.lastError?.contains("(shard-s → shard-s)") == true)
        #expect(status.shard("shard-c")?.lastError == nil)
        // Each cycle logged once as an error, though the stream was listed again and again.
        #expect((try await harness.server.stats(harness.httpClient).calls["DescribeStream"] ?? 0) >= 4)
        #expect(harness.logs.count(.error, containing: "shard-a → shard-b → shard-a") == 1)
        #expect(harness.logs.count(.error, containing: "shard-s → shard-s") == 1)
        await harness.shutdown()
    }

    @Test func aRolloverAndANewShardArePickedUpWithoutARestart() async throws {
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(id: "shard-old", closeAfter: 1.0, records: StreamScenario.events("a", 1...2)),
            .init(id: "shard-new", parent: "shard-old", appearAfter: 1.0, records: StreamScenario.events("a", 3...4)),
            .init(id: "shard-late", appearAfter: 1.5, records: StreamScenario.events("z", 1...1)),
        ]))
        let reader = harness.makeReader { $0.discoveryInterval = .milliseconds(500) }
        let collector = Collector()
        try await Self.run(reader, process: { collector.add($0) }, until: { collector.records.count >= 5 })
        #expect(collector.labels(ofKey: "a") == Self.labels("a", 1...4))
        #expect(collector.labels(ofKey: "z") == ["z1"])
        #expect(reader.status.shard("shard-old")?.state == .finished)
        await harness.shutdown()
    }

    @Test func anExpiredIteratorIsRenewedAfterTheLastProcessedRecord() async throws {
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(
                id: "shard-1", closed: true, records: StreamScenario.events("a", 1...6),
                faults: [.error("ExpiredIteratorException", nth: 1), .error("ExpiredIteratorException", nth: 3)]
            )
        ]))
        let reader = harness.makeReader { $0.pageLimit = 2 }
        let collector = Collector()
        try await Self.run(reader, process: { collector.add($0) }, until: { reader.status.shard("shard-1")?.state == .finished })
        #expect(collector.labels == Self.labels("a", 1...6), "skipped or repeated records")
        let requests = try await harness.server.stats(harness.httpClient).getShardIterator
        try #require(collector.records.count >= 2)
        let afterA2 = collector.records[1].sequenceNumber
        #expect(requests.map(\.type) == ["TRIM_HORIZON", "TRIM_HORIZON", "AFTER_SEQUENCE_NUMBER"])
        #expect(requests.last?.sequenceNumber == afterA2)
        #expect(reader.status.shard("shard-1")?.lastError?.contains("ExpiredIteratorException") == true)
        await harness.shutdown()
    }

    @Test func trimmedDataRestartsAtTrimHorizonAndReportsTheGap() async throws {
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(
                id: "shard-1", closed: true, records: StreamScenario.events("a", 1...10),
                faults: [.error("TrimmedDataAccessException", nth: 2, trimTo: 6)]
            )
        ]))
        let reader = harness.makeReader { $0.pageLimit = 3 }
        let collector = Collector()
        try await Self.run(reader, process: { collector.add($0) }, until: { reader.status.shard("shard-1")?.state == .finished })
        #expect(collector.labels == Self.labels("a", 1...3) + Self.labels("a", 7...10))
        #expect(reader.status.shard("shard-1")?.trimmedGaps == 1)
        #expect(reader.status.trimmedGaps == 1)
        #expect(harness.logs.count(.error, containing: "trimmed") == 1, "the gap was not logged as an error")
        let requests = try await harness.server.stats(harness.httpClient).getShardIterator
        #expect(requests.map(\.type) == ["TRIM_HORIZON", "TRIM_HORIZON"])
        await harness.shutdown()
    }

    @Test func aThrottledShardBacksOffAloneAndRecovers() async throws {
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(id: "shard-slow", closed: true, records: StreamScenario.events("s", 1...2), faults: [.error("LimitExceededException", nth: 1, times: 8)]),
            .init(id: "shard-fast", closed: true, records: StreamScenario.events("f", 1...4)),
        ]))
        let reader = harness.makeReader { $0.pageLimit = 1 }
        let collector = Collector()
        try await Self.run(reader, process: { collector.add($0) }, until: { collector.records.count >= 6 })
        #expect(collector.labels(ofKey: "s") == ["s1", "s2"])
        #expect(collector.labels(ofKey: "f") == Self.labels("f", 1...4))
        // The fast shard finished while the slow one was still backing off.
        #expect(collector.labels.prefix(4).allSatisfy { $0.hasPrefix("f") }, "\(collector.labels)")
        #expect(reader.status.shard("shard-slow")?.lastError?.contains("LimitExceededException") == true)
        #expect(harness.logs.count(.warning, containing: "throttled") >= 1)
        #expect(reader.status.shard("shard-slow")?.state == .finished)
        await harness.shutdown()
    }

    @Test func serverErrorsInDiscoveryAndReadingAreWaitedOut() async throws {
        let harness = try await Harness.start(StreamScenario(
            shards: [.init(id: "shard-1", closed: true, records: StreamScenario.events("a", 1...4), faults: [.http(500, nth: 2, times: 3)])],
            describeFaults: [.http(500, nth: 1, times: 3)]
        ))
        let reader = harness.makeReader { $0.pageLimit = 2 }
        let collector = Collector()
        try await Self.run(reader, process: { collector.add($0) }, until: { collector.records.count >= 4 })
        #expect(collector.labels == Self.labels("a", 1...4))
        #expect(harness.logs.count(.warning, containing: "listing the stream's shards failed") >= 1)
        #expect(reader.status.lastDiscoveryError == nil)
        #expect(reader.status.lastDiscovery != nil)
        await harness.shutdown()
    }

    @Test func anAWSOutageIsLoggedWhenItBeginsAndWhenItEndsAndTheLagGrowsMeanwhile() async throws {
        // GetRecords 1 answers the records, 2 an empty page (caught up), 3 to 10 fail (a 500 each), then it answers again.
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(id: "shard-1", records: StreamScenario.events("a", 1...2), faults: [.http(500, nth: 3, times: 8)])
        ]))
        let reader = harness.makeReader { $0.pollInterval = .milliseconds(100) }
        let collector = Collector()
        let caughtUpLag = Mutex<Duration?>(nil)
        let outageLags = Mutex<[Duration]>([])
        let logs = harness.logs
        try await Self.run(reader, process: { collector.add($0) }, until: {
            let shard = reader.status.shard("shard-1")
            if logs.count(.warning, containing: "AWS is unreachable or failing") == 0 {
                if collector.records.count == 2, shard?.isCaughtUp == true { caughtUpLag.withLock { $0 = shard?.lag() } }
            } else if logs.count(.info, containing: "AWS is reachable again") == 0, let lag = shard?.lag() {
                outageLags.withLock { $0.append(lag) }
            }
            return logs.count(.info, containing: "AWS is reachable again") == 1 && shard?.isCaughtUp == true
        })
        #expect(collector.labels == Self.labels("a", 1...2))
        #expect(harness.logs.count(.warning, containing: "AWS is unreachable or failing") == 1, "one line when the outage begins")
        #expect(harness.logs.count(.info, containing: "AWS is reachable again after") == 1, "one line when it ends")
        #expect(caughtUpLag.withLock { $0 } == .zero, "caught up before the outage: no lag")
        // Measured against now: during the outage the lag grows (records may be waiting since the shard was caught up).
        let lags = outageLags.withLock { $0 }
        #expect((lags.first ?? .zero) > .zero && (lags.last ?? .zero) > (lags.first ?? .zero), "lags during the outage: \(lags)")
        #expect(reader.status.shard("shard-1")?.lag() == .zero, "caught up again")
        await harness.shutdown()
    }

    @Test func aFailedPageIsRetriedAndARestartResumesWithoutGapsOrRepeats() async throws {
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(id: "shard-1", records: StreamScenario.events("a", 1...6))
        ]))
        let checkpoints = InMemoryCheckpointStore()
        struct Refused: Error {}
        let first = harness.makeReader(checkpoints: checkpoints) { $0.pageLimit = 2 }
        let firstRun = Collector()
        let attempts = Mutex(0)
        try await Self.run(first, process: { page in
            if Collector.label(page.records[0]) == "a3", attempts.withLock({ $0 += 1; return $0 }) == 1 { throw Refused() }
            firstRun.add(page)
            if firstRun.records.count == 4 { first.requestStop() }
        }, until: { firstRun.records.count >= 4 })
        #expect(firstRun.labels == Self.labels("a", 1...4))
        #expect(attempts.withLock { $0 } == 2)

        let second = harness.makeReader(checkpoints: checkpoints) { $0.pageLimit = 2 }
        let secondRun = Collector()
        try await Self.run(second, process: { secondRun.add($0) }, until: { secondRun.records.count >= 2 })
        #expect(secondRun.labels == Self.labels("a", 5...6))
        await harness.shutdown()
    }

    @Test func theWatchdogFlagsAShardThatStopsProgressingOnce() async throws {
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(id: "shard-busy", records: StreamScenario.events("a", 1...2)),
            .init(id: "shard-idle"),
        ]))
        let reader = harness.makeReader { $0.pageLimit = 1; $0.stallTimeout = .seconds(1) }
        let collector = Collector()
        let sawStalled = Mutex(false)
        try await Self.run(reader, process: { page in
            if Collector.label(page.records[0]) == "a1" {
                let deadline = ContinuousClock.now + .seconds(3)
                while ContinuousClock.now < deadline {
                    if reader.status.shard("shard-busy")?.isStalled == true { sawStalled.withLock { $0 = true } }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            collector.add(page)
        }, until: { collector.records.count >= 2 })
        #expect(sawStalled.withLock { $0 }, "the busy shard was never flagged stalled")
        // One warning per stall episode, and each episode ends with one "progress again" line. (On a loaded
        // machine a slow GetRecords can make a second, real episode; the pairing still holds.)
        let warnings = harness.logs.count(.warning, containing: "stalled")
        #expect(warnings >= 1)
        #expect(reader.status.stalledShardIDs.isEmpty, "the flag did not clear after progress")
        #expect(harness.logs.count(.info, containing: "progress again") == warnings)
        await harness.shutdown()
    }

    @Test func pagesNeverExceedTheRecordsInFlightBound() async throws {
        let harness = try await Harness.start(StreamScenario(shards: [
            .init(id: "shard-1", closed: true, records: StreamScenario.events("a", 1...10))
        ]))
        let reader = harness.makeReader { $0.maximumRecordsInFlight = 3 }
        let collector = Collector()
        try await Self.run(reader, process: { collector.add($0) }, until: { collector.records.count >= 10 })
        #expect(collector.labels == Self.labels("a", 1...10))
        #expect(collector.pages.withLock { $0.map(\.records.count) }.max() == 3)
        let limits = try await harness.server.stats(harness.httpClient).getRecordsLimits
        #expect(!limits.isEmpty && limits.allSatisfy { $0 == 3 })
        #expect(StreamReaderConfiguration(streamARN: "x").effectivePageLimit == 1000)
        #expect(StreamReaderConfiguration(streamARN: "x", pageLimit: nil, maximumRecordsInFlight: 250).effectivePageLimit == 250)
        await harness.shutdown()
    }
}
