import AWS
import AsyncHTTPClient
import Foundation
import Logging
import StreamReader
import Synchronization
import TestSupport
import Testing

/// The reader against moto's DynamoDB Streams (one shard, the real wire protocol).
@Suite(.timeLimit(.minutes(2))) struct DynamoDBStreamReaderTests {
    static let logger = Logger(label: "stream-reader-test")

    struct Fixture {
        let httpClient: HTTPClient
        let dynamoDB: DynamoDB
        let streams: DynamoDBStreams
        let table: String
        let streamARN: String

        static func make() async throws -> Fixture {
            let aws = AWSConfiguration(
                region: "us-east-1",
                credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
                endpoint: URL(string: try TestServices.awsEndpoint())!
            )
            let httpClient = HTTPClient.forTests
            let dynamoDB = DynamoDB(configuration: aws, httpClient: httpClient, logger: logger)
            let table = TestServices.uniqueName("reader")
            _ = try await dynamoDB.createTable(CreateTableInput(
                tableName: table,
                partitionKey: ("aggregateId", .string),
                sortKey: ("sequenceNumber", .number),
                streamSpecification: StreamSpecification(enabled: true, viewType: .newAndOldImages)
            ))
            let description = try await dynamoDB.waitUntilActive(table, timeout: .seconds(20))
            return Fixture(
                httpClient: httpClient, dynamoDB: dynamoDB,
                streams: DynamoDBStreams(configuration: aws, httpClient: httpClient, logger: logger),
                table: table, streamARN: try #require(description.latestStreamARN)
            )
        }

        func put(_ id: String, _ sequence: Int) async throws {
            try await dynamoDB.putItem(table: table, item: ["aggregateId": .s(id), "sequenceNumber": .n(String(sequence)), "eventName": .s("E")])
        }
    }

    /// Runs the reader until `count` records arrived (or 20 s), then stops it.
    static func read(_ fixture: Fixture, checkpoints: any CheckpointStore, count: Int, start: StartPosition = .trimHorizon) async throws -> [StreamRecord] {
        let reader = DynamoDBStreamReader(
            streams: fixture.streams,
            configuration: StreamReaderConfiguration(streamARN: fixture.streamARN, startPosition: start, pollInterval: .milliseconds(50)),
            checkpoints: checkpoints,
            logger: logger
        )
        let seen = Mutex<[StreamRecord]>([])
        let running = Task {
            try await reader.run { page in
                #expect(page.streamARN == fixture.streamARN)
                seen.withLock { $0 += page.records }
            }
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while seen.withLock({ $0.count }) < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(300))  // anything beyond `count` would show up now
        reader.requestStop()
        try await running.value
        return seen.withLock { $0 }
    }

    @Test func readsEveryRecordInOrderAndResumesAfterItsCheckpoint() async throws {
        let fixture = try await Fixture.make()
        for sequence in 1...5 { try await fixture.put("a", sequence) }
        let checkpoints = InMemoryCheckpointStore()

        let first = try await Self.read(fixture, checkpoints: checkpoints, count: 5)
        #expect(first.map { $0.keys["sequenceNumber"] } == (1...5).map { .n(String($0)) })
        #expect(first.allSatisfy { $0.eventName == "INSERT" && $0.newImage?["eventName"] == .s("E") })
        let saved = try await checkpoints.load(streamARN: fixture.streamARN)
        #expect(saved.count == 1)
        #expect(saved.values.first?.sequenceNumber == first.last?.sequenceNumber)

        // A restart reads only what came after the checkpoint: nothing twice, nothing skipped.
        for sequence in 6...8 { try await fixture.put("a", sequence) }
        let second = try await Self.read(fixture, checkpoints: checkpoints, count: 3)
        #expect(second.map { $0.keys["sequenceNumber"] } == (6...8).map { .n(String($0)) })
    }

    @Test func aFailedPageIsRetriedNotSkippedAndTheCheckpointWaits() async throws {
        let fixture = try await Fixture.make()
        for sequence in 1...3 { try await fixture.put("b", sequence) }
        let checkpoints = InMemoryCheckpointStore()
        let reader = DynamoDBStreamReader(
            streams: fixture.streams,
            configuration: StreamReaderConfiguration(streamARN: fixture.streamARN, pollInterval: .milliseconds(50)),
            checkpoints: checkpoints,
            logger: Self.logger
        )
        struct Refused: Error {}
        let attempts = Mutex(0)
        let delivered = Mutex<[StreamRecord]>([])
        let running = Task {
            try await reader.run { page in
                let attempt = attempts.withLock { $0 += 1; return $0 }
                if attempt == 1 {
                    #expect(try await checkpoints.load(streamARN: fixture.streamARN).isEmpty)
                    throw Refused()
                }
                delivered.withLock { $0 += page.records }
            }
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while delivered.withLock({ $0.count }) < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        reader.requestStop()
        try await running.value
        #expect(attempts.withLock { $0 } >= 2)
        #expect(delivered.withLock { $0 }.map { $0.keys["sequenceNumber"] } == [.n("1"), .n("2"), .n("3")])
    }

    @Test func latestSkipsWhatWasWrittenBeforeTheStart() async throws {
        let fixture = try await Fixture.make()
        for sequence in 1...3 { try await fixture.put("c", sequence) }
        let reader = DynamoDBStreamReader(
            streams: fixture.streams,
            configuration: StreamReaderConfiguration(streamARN: fixture.streamARN, startPosition: .latest, pollInterval: .milliseconds(50)),
            checkpoints: InMemoryCheckpointStore(),
            logger: Self.logger
        )
        let seen = Mutex<[StreamRecord]>([])
        let running = Task { try await reader.run { page in seen.withLock { $0 += page.records } } }
        // When the shard's LATEST iterator is taken depends on load; keep writing until the reader sees
        // something, then check that nothing written before the start came through.
        var next = 4
        let deadline = ContinuousClock.now + .seconds(30)
        while seen.withLock({ $0.isEmpty }), ContinuousClock.now < deadline {
            try await fixture.put("c", next)
            next += 1
            try await Task.sleep(for: .milliseconds(300))
        }
        reader.requestStop()
        try await running.value
        let sequences = seen.withLock { $0 }.compactMap { record -> Int? in
            if case .n(let text)? = record.keys["sequenceNumber"] { return Int(text) }
            return nil
        }
        #expect(!sequences.isEmpty)
        #expect(sequences.allSatisfy { $0 >= 4 }, "records written before the start came through: \(sequences)")
        #expect(sequences == sequences.sorted())
    }
}
