import AWS
import Foundation
import Logging
import StreamReader
import Synchronization
import Testing

/// How often the reader calls GetRecords on a shard with its default configuration: at most once per
/// `pollInterval` (200 ms, AWS's five calls a second per shard) whether pages are empty or carry a few
/// new records, and at once after a page that shows a backlog (full, or with old records).
@Suite(.timeLimit(.minutes(1))) struct PollPacingTests {
    /// One open shard; each GetRecords answers `recordsPerPage(call)` new records and is timed.
    final class CountingSource: StreamSource {
        let recordsPerPage: @Sendable (Int) -> Int
        /// How long before the call its records were created.
        let recordAge: TimeInterval
        let calls = Mutex<[ContinuousClock.Instant]>([])

        init(recordAge: TimeInterval = 0, recordsPerPage: @escaping @Sendable (Int) -> Int) {
            self.recordAge = recordAge
            self.recordsPerPage = recordsPerPage
        }

        var supportsTimestampStart: Bool { false }

        func listShards() async throws -> ShardListing {
            ShardListing(shards: [Shard(shardID: "shardId-0", startingSequenceNumber: "1")])
        }

        func shardIterator(shardID: String, position: ShardPosition) async throws -> String { "it" }

        func records(iterator: String, limit: Int) async throws -> SourcePage {
            let call = calls.withLock { calls in
                calls.append(.now)
                return calls.count - 1
            }
            let count = min(limit, recordsPerPage(call))
            let records = (0..<count).map { index in
                StreamRecord(
                    eventID: "e\(call)-\(index)", eventName: "INSERT",
                    keys: ["aggregateId": .s("a"), "sequenceNumber": .n("\(call * 10_000 + index)")],
                    sequenceNumber: String(format: "%012d%05d", call, index), approximateCreationDateTime: Date() - recordAge
                )
            }
            return SourcePage(records: records, nextIterator: "it")
        }
    }

    /// Runs the reader on `source` (default configuration, or `pollInterval`) until it made `calls` GetRecords
    /// calls (at most 30 s: a loaded machine is slow, never fast), and returns the gaps between their starts
    /// and the records it delivered.
    /// With `thenWatchFor`, the reader runs that much longer after the last wanted call, and no further call may come.
    func run(
        _ source: CountingSource, calls wanted: Int, pollInterval: Duration? = nil, thenWatchFor watch: Duration? = nil
    ) async throws -> (gaps: [Duration], delivered: Int) {
        var configuration = StreamReaderConfiguration(streamARN: "arn:aws:dynamodb:us-east-1:1:table/t/stream/x")
        if let pollInterval { configuration.pollInterval = pollInterval }
        let reader = ShardedStreamReader(
            source: source, configuration: configuration, checkpoints: InMemoryCheckpointStore(), logger: Logger(label: "pacing-test")
        )
        let delivered = Mutex(0)
        let task = Task { try await reader.run { page in delivered.withLock { $0 += page.records.count } } }
        let deadline = ContinuousClock.now + .seconds(30)
        while source.calls.withLock({ $0.count }) < wanted, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        if let watch {
            try await Task.sleep(for: watch)
            let extra = source.calls.withLock { $0.count } - wanted
            #expect(extra <= 0, "\(extra) GetRecords call(s) within \(watch) of the first empty page: it did not wait for the poll interval")
        }
        task.cancel()
        _ = try? await task.value
        let calls = Array(source.calls.withLock { $0 }.prefix(wanted))
        #expect(calls.count == wanted, "GetRecords calls within 30 s: \(calls.count)")
        return (zip(calls.dropFirst(), calls).map { $0 - $1 }, delivered.withLock { $0 })
    }

    @Test func theDefaultPollIntervalIsFiveCallsASecond() {
        #expect(StreamReaderConfiguration(streamARN: "arn").pollInterval == .milliseconds(200))
    }

    @Test(arguments: [0, 3])
    func pagesThatShowNoBacklogArePacedAtTheDefaultPollInterval(recordsPerPage: Int) async throws {
        let source = CountingSource { _ in recordsPerPage }
        let (gaps, delivered) = try await run(source, calls: 6)
        // Never two calls closer than 200 ms, whether the page was empty or carried new records.
        let shortest = try #require(gaps.min())
        #expect(shortest >= .milliseconds(199), "shortest gap between GetRecords calls: \(shortest)")
        #expect(delivered >= 5 * recordsPerPage)
    }

    // A 30 s poll interval tells a call that waited for it apart from one that went out at once, however loaded
    // the machine: the calls after the backlog pages must come well inside it, and after the first empty page no
    // call may come at all while the test watches (a call then would not have waited for the interval).

    @Test func aPageOfRecordsOlderThanTheBacklogAgeIsFollowedAtOnce() async throws {
        // Ten records a page, created 5 s before they are read: the shard is behind; then it is idle.
        let source = CountingSource(recordAge: 5) { call in call < 5 ? 10 : 0 }
        let (gaps, delivered) = try await run(source, calls: 6, pollInterval: .seconds(30), thenWatchFor: .seconds(2))
        try #require(gaps.count == 5)
        #expect(delivered == 50)
        #expect(gaps.allSatisfy { $0 < .seconds(15) }, "gaps after pages of old records: \(gaps)")
    }

    @Test func aFullPageIsFollowedAtOnce() async throws {
        // The first five pages are full (1,000 records, GetRecords' limit): a backlog; then the shard is idle.
        let source = CountingSource { call in call < 5 ? 1000 : 0 }
        let (gaps, delivered) = try await run(source, calls: 6, pollInterval: .seconds(30), thenWatchFor: .seconds(2))
        try #require(gaps.count == 5)
        #expect(delivered == 5000)
        #expect(gaps.allSatisfy { $0 < .seconds(15) }, "gaps after full pages: \(gaps)")
    }
}
