import AWS
import AsyncHTTPClient
import Foundation
import Logging
import StreamReader
import Synchronization
import TestSupport
import Testing

/// The reader on a Kinesis source, against moto's Kinesis: real split and merge lineage,
/// AT_TIMESTAMP, and records that are not DynamoDB changes.
///
/// moto 5.2.1's resharding differs from Kinesis in ways these tests must allow for: PutRecord
/// picks the first shard (in creation order) whose hash range holds the key, closed or not, so
/// records written after a split or merge land in the closed parent, never in a child;
/// SplitShard re-puts the parent's records into the parent itself (children stay empty); and
/// MergeShards copies both parents' records into the child (the parents keep theirs). So the
/// expected deliveries are computed from what moto's shards actually hold: every record of
/// every shard exactly once, each shard in order, parents before children.
@Suite(.timeLimit(.minutes(3))) struct KinesisStreamReaderTests {
    static let logger = Logger(label: "kinesis-reader-test")
    /// Hash keys that put a record in the lower or upper half of the hash key space.
    static let lowHash = "1"
    static let highHash = "170141183460469231731687303715884105729"  // 2^127 + 1
    static let middleHash = "170141183460469231731687303715884105728"  // 2^127

    struct Fixture {
        let httpClient: HTTPClient
        let kinesis: Kinesis
        let name: String
        let arn: String

        static func make(shards: Int = 1) async throws -> Fixture {
            let aws = AWSConfiguration(
                region: "us-east-1",
                credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
                endpoint: URL(string: try TestServices.awsEndpoint())!
            )
            let httpClient = HTTPClient.forTests
            let kinesis = Kinesis(configuration: aws, httpClient: httpClient, logger: logger)
            let name = TestServices.uniqueName("kinesis-reader")
            try await kinesis.createStream(name: name, shardCount: shards)
            let arn = try await kinesis.waitUntilActive(name: name, timeout: .seconds(20))
            return Fixture(httpClient: httpClient, kinesis: kinesis, name: name, arn: arn)
        }

        var source: KinesisSource { KinesisSource(kinesis: kinesis, streamName: name) }

        /// Puts the INSERT of item (`key`, `n`) as DynamoDB's Kinesis destination writes it.
        @discardableResult
        func put(_ key: String, _ n: Int, hash: String = KinesisStreamReaderTests.lowHash) async throws -> String {
            try await kinesis.putRecord(streamName: name, partitionKey: key, data: KinesisStreamReaderTests.change(key, n), explicitHashKey: hash).sequenceNumber
        }

        func shutdown() async {
            try? await kinesis.deleteStream(name: name)
        }
    }

    /// The JSON of one item change in DynamoDB's Kinesis streaming destination format.
    static func change(_ key: String, _ n: Int, eventName: String = "INSERT", createdMillis: Int64 = 1_700_000_000_123) -> [UInt8] {
        struct Change: Encodable {
            struct Body: Encodable {
                var ApproximateCreationDateTime: Int64
                var Keys: DynamoDBItem
                var NewImage: DynamoDBItem
                var SizeBytes: Int
            }
            var awsRegion = "us-east-1"
            var eventID: String
            var eventName: String
            var userIdentity: String? = nil
            var recordFormat = "application/json"
            var tableName = "events"
            var dynamodb: Body
            var eventSource = "aws:dynamodb"
        }
        let keys: DynamoDBItem = ["aggregateId": .s(key), "sequenceNumber": .n(String(n))]
        var image = keys
        image["eventName"] = .s("Tick")
        let change = Change(
            eventID: "\(key)-\(n)", eventName: eventName,
            dynamodb: .init(ApproximateCreationDateTime: createdMillis, Keys: keys, NewImage: image, SizeBytes: 42)
        )
        return Array(try! JSONEncoder().encode(change))
    }

    /// `lo3` for the item (lo, 3); `!` for a record that is not a change.
    static func label(_ record: StreamRecord) -> String {
        guard case .s(let id) = record.keys["aggregateId"], case .n(let n) = record.keys["sequenceNumber"] else { return "!" }
        return "\(id)\(n)"
    }

    /// Every page handed to `process`, in the order it returned.
    final class Collector: Sendable {
        let pages = Mutex<[ShardRecords]>([])
        var count: Int { pages.withLock { $0.reduce(0) { $0 + $1.records.count } } }
        var deliveries: [(shard: String, record: StreamRecord)] {
            pages.withLock { $0.flatMap { page in page.records.map { (page.shardID, $0) } } }
        }
    }

    /// Runs a reader until `until` says stop (or 30 s), then stops it and waits for it.
    static func read(
        _ source: KinesisSource, streamARN: String, checkpoints: any CheckpointStore, into collector: Collector,
        configure: (inout StreamReaderConfiguration) -> Void = { _ in },
        pageDelay: Duration = .zero, until: @escaping @Sendable (Collector) -> Bool, for limit: Duration = .seconds(30)
    ) async throws -> ShardedStreamReader {
        var configuration = StreamReaderConfiguration(streamARN: streamARN, pollInterval: .milliseconds(50), discoveryInterval: .seconds(1))
        configure(&configuration)
        let reader = ShardedStreamReader(source: source, configuration: configuration, checkpoints: checkpoints, logger: logger)
        let running = Task {
            try await reader.run { page in
                #expect(page.streamARN == streamARN)
                if pageDelay > .zero { try await Task.sleep(for: pageDelay) }
                collector.pages.withLock { $0.append(page) }
            }
        }
        let deadline = ContinuousClock.now + limit
        while !until(collector), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        reader.requestStop()
        try await running.value
        return reader
    }

    /// What moto's shards hold, by shard, read straight from the service.
    static func shardContents(_ fixture: Fixture) async throws -> [(shard: KinesisShard, labels: [String], sequences: [String])] {
        var contents: [(KinesisShard, [String], [String])] = []
        for shard in try await fixture.kinesis.listShards(streamName: fixture.name) {
            let iterator = try await fixture.kinesis.getShardIterator(streamName: fixture.name, shardID: shard.shardID, type: .trimHorizon)
            let records = try await fixture.kinesis.getRecords(shardIterator: iterator, limit: 10_000).records
            contents.append((shard, records.map { label(KinesisChangeRecord.streamRecord(from: $0)) }, records.map(\.sequenceNumber)))
        }
        return contents
    }

    @Test func aMergedShardIsReadAfterBothParentsKeepingPerKeyOrderAndARestartReadsNothingTwice() async throws {
        let fixture = try await Fixture.make(shards: 2)
        let parents = try await fixture.kinesis.listShards(streamName: fixture.name)
        let lower = try #require(parents.first { $0.startingHashKey == "0" }).shardID
        let upper = try #require(parents.first { $0.startingHashKey != "0" }).shardID
        // The upper parent holds many more records than the lower one, so it ends well after it.
        for n in 1...2 { try await fixture.put("lo", n, hash: Self.lowHash) }
        for n in 1...20 { try await fixture.put("hi", n, hash: Self.highHash) }
        try await fixture.kinesis.mergeShards(streamName: fixture.name, shardID: lower, adjacentShardID: upper)
        _ = try await fixture.kinesis.waitUntilActive(name: fixture.name, timeout: .seconds(10))

        let contents = try await Self.shardContents(fixture)
        let merged = try #require(contents.first { $0.shard.adjacentParentShardID != nil }).shard
        #expect(merged.parentShardID == lower && merged.adjacentParentShardID == upper, "moto's merge lineage: \(contents.map(\.shard))")
        #expect(contents.count == 3)
        let lineageOrder = [lower, upper, merged.shardID]
        let byShard = Dictionary(uniqueKeysWithValues: contents.map { ($0.shard.shardID, $0) })
        #expect(!byShard[merged.shardID]!.labels.isEmpty, "moto copies the parents' records into the merged shard")
        let total = contents.reduce(0) { $0 + $1.labels.count }
        func expectedLabels(ofKey key: String) -> [String] {
            lineageOrder.flatMap { (byShard[$0]?.labels ?? []).filter { $0.hasPrefix(key) } }
        }

        // First run: stopped part-way (after at least 10 records), with small pages and a slow `process`.
        let checkpoints = InMemoryCheckpointStore()
        let first = Collector()
        _ = try await Self.read(
            fixture.source, streamARN: fixture.arn, checkpoints: checkpoints, into: first,
            configure: { $0.pageLimit = 2 }, pageDelay: .milliseconds(20), until: { $0.count >= 10 }
        )
        #expect(first.count < total, "the first run was meant to stop part-way")
        // Second run: from the checkpoints, to the end.
        let second = Collector()
        let reader = try await Self.read(
            fixture.source, streamARN: fixture.arn, checkpoints: checkpoints, into: second,
            configure: { $0.pageLimit = 2 }, pageDelay: .milliseconds(20), until: { $0.count >= total - first.count }
        )
        let deliveries = first.deliveries + second.deliveries

        // Every record of every shard exactly once, each shard in its order.
        for shardID in lineageOrder {
            let got = deliveries.filter { $0.shard == shardID }.map(\.record.sequenceNumber)
            #expect(got == byShard[shardID]?.sequences, "shard \(shardID)")
        }
        #expect(deliveries.count == total)
        // Per key, across the restart and the handover: both parents' records before the child's.
        for key in ["lo", "hi"] {
            #expect(deliveries.map { Self.label($0.record) }.filter { $0.hasPrefix(key) } == expectedLabels(ofKey: key), "order of \(key)")
        }
        // The closed parents are checkpointed as finished; the open child after its last record.
        let saved = try await checkpoints.load(streamARN: fixture.arn)
        #expect(saved[lower]?.isFinished == true && saved[upper]?.isFinished == true, "\(saved)")
        #expect(saved[merged.shardID]?.isFinished == false)
        #expect(saved[merged.shardID]?.sequenceNumber == byShard[merged.shardID]!.sequences.last)
        let status = reader.status
        #expect(status.shard(merged.shardID)?.parentShardID == lower)
        #expect(status.shard(merged.shardID)?.adjacentParentShardID == upper)
        #expect(status.shard(merged.shardID)?.millisBehindLatest != nil)

        // A third run finds nothing new: nothing is read twice.
        let third = Collector()
        _ = try await Self.read(fixture.source, streamARN: fixture.arn, checkpoints: checkpoints, into: third, until: { _ in false }, for: .seconds(1))
        #expect(third.deliveries.isEmpty)
        await fixture.shutdown()
    }

    /// moto's SplitShard puts the parent's records back into the (closed) parent and leaves the
    /// children empty, and later writes land in the parent too; so only the handover itself shows:
    /// the children wait while the parent is read, and open once it is finished.
    @Test func splitChildrenWaitUntilTheParentIsReadToItsEnd() async throws {
        let fixture = try await Fixture.make(shards: 1)
        let parent = try #require(try await fixture.kinesis.listShards(streamName: fixture.name).first).shardID
        for n in 1...6 { try await fixture.put("k", n) }
        try await fixture.kinesis.splitShard(streamName: fixture.name, shardID: parent, newStartingHashKey: Self.middleHash)
        let children = try await fixture.kinesis.listShards(streamName: fixture.name).filter { $0.parentShardID == parent }.map(\.shardID)
        #expect(children.count == 2)

        let checkpoints = InMemoryCheckpointStore()
        let collector = Collector()
        let childStates = Mutex<Set<String>>([])
        var configuration = StreamReaderConfiguration(streamARN: fixture.arn, pollInterval: .milliseconds(50), discoveryInterval: .seconds(1))
        configuration.pageLimit = 2
        let reader = ShardedStreamReader(source: fixture.source, configuration: configuration, checkpoints: checkpoints, logger: Self.logger)
        let running = Task {
            try await reader.run { page in
                // While the parent's records are routed, its children are not being read.
                let status = reader.status
                childStates.withLock { $0.formUnion(children.compactMap { status.shard($0)?.state.rawValue }) }
                collector.pages.withLock { $0.append(page) }
            }
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, !children.allSatisfy({ reader.status.shard($0)?.state == .reading }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        reader.requestStop()
        try await running.value
        #expect(collector.deliveries.map { Self.label($0.record) } == (1...6).map { "k\($0)" })
        #expect(childStates.withLock { $0 } == ["waiting-for-parent"])
        #expect(children.allSatisfy { reader.status.shard($0)?.state == .reading })
        #expect(try await checkpoints.load(streamARN: fixture.arn)[parent]?.isFinished == true)
        await fixture.shutdown()
    }

    @Test func atTimestampStartsWithTheFirstRecordWrittenAtOrAfterIt() async throws {
        let fixture = try await Fixture.make(shards: 1)
        for n in 1...3 { try await fixture.put("t", n) }
        try await Task.sleep(for: .milliseconds(500))
        let start = Date()
        try await Task.sleep(for: .milliseconds(500))
        for n in 4...5 { try await fixture.put("t", n) }

        let collector = Collector()
        _ = try await Self.read(
            fixture.source, streamARN: fixture.arn, checkpoints: InMemoryCheckpointStore(), into: collector,
            configure: { $0.startPosition = .atTimestamp; $0.startTimestamp = start }, until: { $0.count >= 2 }
        )
        try await Task.sleep(for: .milliseconds(300))
        #expect(collector.deliveries.map { Self.label($0.record) } == ["t4", "t5"])
        await fixture.shutdown()
    }

    @Test func atTimestampIsRefusedForADynamoDBStream() async throws {
        let aws = AWSConfiguration(
            region: "us-east-1",
            credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: try TestServices.awsEndpoint())!
        )
        let httpClient = HTTPClient.forTests
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2025-01-01T00:00:00.000"
        let reader = DynamoDBStreamReader(
            streams: DynamoDBStreams(configuration: aws, httpClient: httpClient, logger: Self.logger),
            configuration: StreamReaderConfiguration(streamARN: arn, startPosition: .atTimestamp, startTimestamp: Date()),
            checkpoints: InMemoryCheckpointStore(), logger: Self.logger
        )
        await #expect(throws: StreamReaderConfigurationError(
            "start position AT_TIMESTAMP: \(arn) is a DynamoDB stream, which has no AT_TIMESTAMP iterator (Kinesis streams have); use TRIM_HORIZON or LATEST"
        )) {
            try await reader.run { _ in Issue.record("nothing should be read") }
        }
    }

    @Test func recordsThatAreNotDynamoDBChangesAreDeliveredMarkedNotDropped() async throws {
        let fixture = try await Fixture.make(shards: 1)
        try await fixture.put("a", 1)
        _ = try await fixture.kinesis.putRecord(streamName: fixture.name, partitionKey: "x", data: Array("not json".utf8))
        _ = try await fixture.kinesis.putRecord(streamName: fixture.name, partitionKey: "y", data: Array(#"{"eventSource": "aws:s3", "eventName": "INSERT"}"#.utf8))
        try await fixture.put("a", 2)

        let collector = Collector()
        _ = try await Self.read(fixture.source, streamARN: fixture.arn, checkpoints: InMemoryCheckpointStore(), into: collector, until: { $0.count >= 4 })
        let records = collector.deliveries.map(\.record)
        #expect(records.map(Self.label) == ["a1", "!", "!", "a2"])
        #expect(records.map(\.unreadable?.reason) == [
            nil,
            "Kinesis record is not a DynamoDB change record: its data is not JSON",
            #"Kinesis record is not a DynamoDB change record: eventSource is "aws:s3", not "aws:dynamodb""#,
            nil,
        ])
        try #require(records.count == 4)
        #expect(records[1].unreadable?.data == Array("not json".utf8))
        #expect(records[1].unreadable?.partitionKey == "x")
        #expect(records[0].eventName == "INSERT" && records[0].newImage?["eventName"] == .s("Tick"))
        // ApproximateCreationDateTime is epoch milliseconds in this format.
        #expect(records[0].approximateCreationDateTime == Date(timeIntervalSince1970: 1_700_000_000.123))
        await fixture.shutdown()
    }

    @Test(arguments: [
        (#"[1, 2]"#, "its data is JSON but not an object"),
        (#"{"eventSource": "aws:dynamodb", "eventName": "UPSERT", "dynamodb": {"Keys": {}}}"#, #"eventName "UPSERT"; expected INSERT, MODIFY or REMOVE"#),
        (#"{"eventSource": "aws:dynamodb", "eventName": "REMOVE"}"#, "it has no dynamodb object"),
        (#"{"eventSource": "aws:dynamodb", "eventName": "REMOVE", "dynamodb": {"NewImage": {}}}"#, "dynamodb.Keys is missing"),
        (#"{"eventName": "INSERT", "dynamodb": {"Keys": {}}}"#, #"it has no eventSource "aws:dynamodb""#),
        (#"{"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"Keys": {"id": {"Q": "1"}}}}"#, "dynamodb.Keys.id"),
    ])
    func aChangeRecordThatDoesNotDecodeSaysWhy(data: String, reason: String) {
        let record = KinesisChangeRecord.streamRecord(from: KinesisRecord(sequenceNumber: "7", partitionKey: "p", data: Array(data.utf8)))
        let said = record.unreadable?.reason ?? "decoded"
        #expect(said.hasPrefix("Kinesis record is not a DynamoDB change record: \(reason)"), "\(said)")
        #expect(record.sequenceNumber == "7")
    }

    @Test func aModifyKeepsBothImagesAndMicrosecondTimesAreRecognised() throws {
        let json = #"""
            {"awsRegion": "eu-west-1", "eventID": "e-1", "eventName": "MODIFY", "recordFormat": "application/json", "tableName": "t",
             "userIdentity": null, "eventSource": "aws:dynamodb",
             "dynamodb": {"ApproximateCreationDateTime": 1700000000123456, "Keys": {"id": {"S": "k"}},
                          "NewImage": {"id": {"S": "k"}, "v": {"N": "2"}}, "OldImage": {"id": {"S": "k"}, "v": {"N": "1"}}, "SizeBytes": 30}}
            """#
        let record = KinesisChangeRecord.streamRecord(from: KinesisRecord(sequenceNumber: "49", partitionKey: "p", data: Array(json.utf8)))
        #expect(record.unreadable == nil)
        #expect(record.eventName == "MODIFY" && record.eventID == "e-1" && record.awsRegion == "eu-west-1")
        #expect(record.keys == ["id": .s("k")])
        #expect(record.newImage?["v"] == .n("2") && record.oldImage?["v"] == .n("1"))
        #expect(record.sequenceNumber == "49" && record.sizeBytes == 30)
        let seconds = try #require(record.approximateCreationDateTime?.timeIntervalSince1970)
        #expect(abs(seconds - 1_700_000_000.123456) < 0.000_01)
    }
}
