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

    /// Runs the default-configured reader on `source` for `duration` and returns the gaps between
    /// the starts of its GetRecords calls, and the records it delivered.
    func run(_ source: CountingSource, for duration: Duration) async throws -> (gaps: [Duration], delivered: Int) {
        let configuration = StreamReaderConfiguration(streamARN: "arn:aws:dynamodb:us-east-1:1:table/t/stream/x")
        let reader = ShardedStreamReader(
            source: source, configuration: configuration, checkpoints: InMemoryCheckpointStore(), logger: Logger(label: "pacing-test")
        )
        let delivered = Mutex(0)
        let task = Task { try await reader.run { page in delivered.withLock { $0 += page.records.count } } }
        try await Task.sleep(for: duration)
        task.cancel()
        _ = try? await task.value
        let calls = source.calls.withLock { $0 }
        return (zip(calls.dropFirst(), calls).map { $0 - $1 }, delivered.withLock { $0 })
    }

    @Test func theDefaultPollIntervalIsFiveCallsASecond() {
        #expect(StreamReaderConfiguration(streamARN: "arn").pollInterval == .milliseconds(200))
    }

    @Test(arguments: [0, 3])
    func pagesThatAreNotFullArePacedAtThePollInterval(recordsPerPage: Int) async throws {
        let source = CountingSource { _ in recordsPerPage }
        let (gaps, delivered) = try await run(source, for: .milliseconds(1500))
        // 1.5 s at one call per 200 ms: about 8 calls (the first at once); never two closer than the interval.
        #expect(gaps.count >= 4 && gaps.count <= 8, "GetRecords calls: \(gaps.count + 1)")
        let shortest = try #require(gaps.min())
        #expect(shortest >= .milliseconds(195), "shortest gap between GetRecords calls: \(shortest)")
        #expect(delivered == (gaps.count + 1) * recordsPerPage || delivered == gaps.count * recordsPerPage)
    }

    @Test func aPageOfRecordsOlderThanTheBacklogAgeIsFollowedAtOnce() async throws {
        // Ten records a page, created 5 s before they are read: the shard is behind.
        let source = CountingSource(recordAge: 5) { call in call < 5 ? 10 : 0 }
        let (gaps, delivered) = try await run(source, for: .milliseconds(700))
        #expect(delivered == 50)
        #expect(gaps.count >= 5)
        #expect(gaps.prefix(5).allSatisfy { $0 < .milliseconds(150) }, "gaps after pages of old records: \(gaps.prefix(5))")
    }

    @Test func aFullPageIsFollowedAtOnce() async throws {
        // The first five pages are full (1,000 records, GetRecords' limit): a backlog; then the shard is idle.
        let source = CountingSource { call in call < 5 ? 1000 : 0 }
        let (gaps, delivered) = try await run(source, for: .milliseconds(700))
        #expect(delivered == 5000)
        #expect(gaps.count >= 5)
        // The calls after the full pages went out at once; the one after the first empty page waited.
        #expect(gaps.prefix(5).allSatisfy { $0 < .milliseconds(150) }, "gaps after full pages: \(gaps.prefix(5))")
        if gaps.count > 5 { #expect(gaps[5] >= .milliseconds(195)) }
    }
}
