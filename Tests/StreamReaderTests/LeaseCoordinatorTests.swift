import AWS
import AsyncHTTPClient
import Foundation
import Logging
import StreamReader
import Synchronization
import TestSupport
import Testing

/// A `LeaseCoordinator` driving a `ShardedStreamReader` on a two-shard Kinesis stream (moto), with
/// the lease table in moto's DynamoDB.
@Suite(.timeLimit(.minutes(2))) struct LeaseCoordinatorTests {
    static let logger = Logger(label: "lease-coordinator-test")

    @Test func aLeaseTakenByAnotherWorkerStopsItsShardAtOnceAndAGracefulStopReleasesTheRest() async throws {
        let fixture = try await KinesisStreamReaderTests.Fixture.make(shards: 2)
        let aws = AWSConfiguration(
            region: "us-east-1", credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: try TestServices.awsEndpoint())!
        )
        let table = LeaseTable(
            dynamoDB: DynamoDB(configuration: aws, httpClient: fixture.httpClient, logger: Self.logger),
            tableName: LeaseTable.tableName(application: TestServices.uniqueName("coord")), streamARN: fixture.arn
        )
        try await table.ensureTable()
        // A 10 s lease: long enough that a renewal slowed by a loaded machine (moto answering in seconds)
        // never lets the coordinator fence itself, which would drop a shard this test expects it to hold.
        let coordinator = LeaseCoordinator(
            table: table, source: fixture.source, configuration: LeaseCoordinatorConfiguration(workerID: "me", leaseDuration: .seconds(10)),
            logger: Self.logger
        )
        let checkpoints = InMemoryCheckpointStore()
        let reader = ShardedStreamReader(
            source: fixture.source, configuration: StreamReaderConfiguration(streamARN: fixture.arn, pollInterval: .milliseconds(100)),
            checkpoints: checkpoints, ownership: coordinator, logger: Self.logger
        )
        let seen = Mutex<[String: [String]]>([:])  // shard → keys, in order
        let reading = Task {
            try await reader.run { page in
                seen.withLock { $0[page.shardID, default: []] += page.records.map { "\($0.sequenceNumber)" } }
                #expect(page.epoch == coordinator.epoch(of: page.shardID))
            }
        }
        let coordinating = Task { await coordinator.run(reader: reader) }
        // Stopped however the test ends (an expectation that throws would leave them reading).
        defer { reader.requestStop(); coordinator.requestStop() }

        try await fixture.put("a", 1, hash: KinesisStreamReaderTests.lowHash)
        try await fixture.put("b", 1, hash: KinesisStreamReaderTests.highHash)
        // A bound against hangs only: the machine may be loaded (2 cores, the whole suite in parallel).
        let deadline = ContinuousClock.now + .seconds(60)
        while seen.withLock({ $0.values.map(\.count).reduce(0, +) }) < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        try #require(coordinator.heldShards.count == 2, "read \(seen.withLock { $0 })")
        #expect(coordinator.heldShards.values.allSatisfy { $0 == 1 }, "a first take is epoch 1")
        let shards = coordinator.heldShards.keys.sorted()
        let (low, high) = (shards[0], shards[1])

        // Another live worker takes the low shard (as after an expiry): the renewal fails, the shard stops at once.
        // (The thief keeps its heartbeat and lease renewed, so the balance of one shard each stays.)
        try await table.heartbeat(me: "thief")
        var stolen: Int64?
        while stolen == nil, ContinuousClock.now < deadline {
            let lease = try #require(try await table.leases().first { $0.shardID == low })
            stolen = try await table.take(shardID: low, me: "thief", expectedOwner: "me", expectedCounter: lease.counter)
        }
        #expect(stolen == 2)
        let thief = Task {
            while !Task.isCancelled {
                try await table.heartbeat(me: "thief")
                _ = try await table.renew(shardID: low, me: "thief", epoch: 2)
                try await Task.sleep(for: .milliseconds(300))
            }
        }
        defer { thief.cancel() }
        while coordinator.epoch(of: low) != nil || reader.status.shard(low)?.state != .notHeld, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(coordinator.epoch(of: low) == nil)
        #expect(reader.status.shard(low)?.state == .notHeld)
        let lowBefore = seen.withLock { $0[low, default: []].count }
        try await fixture.put("a", 2, hash: KinesisStreamReaderTests.lowHash)
        try await fixture.put("b", 2, hash: KinesisStreamReaderTests.highHash)
        while seen.withLock({ $0[high, default: []].count }) < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .seconds(1))
        #expect(seen.withLock { $0[high, default: []].count } == 2)
        #expect(seen.withLock { $0[low, default: []].count } == lowBefore, "a shard whose lease was lost is not read")
        // (When the thief's heartbeat appeared, the balancer may have released the high shard and taken it back: epoch 2.)
        let highEpoch = try #require(coordinator.epoch(of: high))
        #expect(try await checkpoints.load(streamARN: fixture.arn)[high]?.epoch == highEpoch)

        // A graceful stop: checkpoint, release, heartbeat removed.
        reader.requestStop()
        coordinator.requestStop()
        try await reading.value
        await coordinating.value
        let leases = try await table.leases()
        #expect(leases.first { $0.shardID == high }?.owner == nil)
        #expect(leases.first { $0.shardID == low }?.owner == "thief")
        #expect(try await table.workers()["me"] == nil)
        #expect(coordinator.heldShards.isEmpty)
        await fixture.shutdown()
    }

    /// A TCP forwarder to moto (python3) that the test can freeze with SIGSTOP: a network partition
    /// between one worker and DynamoDB, with its calls hanging rather than failing.
    static func startForwarder(to endpoint: String) async throws -> (process: ChildProcess, endpoint: String) {
        let url = URL(string: endpoint)!
        let script = """
            import socket, sys, threading
            target = (sys.argv[1], int(sys.argv[2]))
            server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(64)
            print(server.getsockname()[1], flush=True)
            def pipe(a, b):
                try:
                    while True:
                        data = a.recv(65536)
                        if not data: break
                        b.sendall(data)
                except OSError: pass
                finally:
                    for s in (a, b):
                        try: s.shutdown(socket.SHUT_RDWR)
                        except OSError: pass
            while True:
                client, _ = server.accept()
                upstream = socket.create_connection(target)
                threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
            """
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestServices.uniqueName("forwarder")).py")
        try script.write(to: path, atomically: true, encoding: .utf8)
        // Standard error is not the test's own output: `swift test` waits for every holder of it to close it.
        let process = try ChildProcess(
            "/usr/bin/env", ["python3", path.path, url.host ?? "127.0.0.1", "\(url.port ?? 80)"], standardOutput: .capture, standardError: .null)
        let line = (await process.firstLine(timeout: .seconds(30)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard let port = Int(line) else {
            process.kill()
            throw ForwarderUnavailable(description: "the python3 TCP forwarder did not start (printed \"\(line)\")")
        }
        return (process, "http://127.0.0.1:\(port)")
    }

    struct ForwarderUnavailable: Error, CustomStringConvertible { var description: String }

    @Test func aWorkerCutOffFromDynamoDBStopsItsShardsBeforeTheLeasesExpireAndReadoptsThemAfter() async throws {
        let fixture = try await KinesisStreamReaderTests.Fixture.make(shards: 2)
        let forwarder = try await Self.startForwarder(to: try TestServices.awsEndpoint())
        defer { forwarder.process.kill() }
        var aws = AWSConfiguration(
            region: "us-east-1", credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: forwarder.endpoint)!
        )
        aws.retryPolicy.maxAttempts = 1
        let table = LeaseTable(
            dynamoDB: DynamoDB(configuration: aws, httpClient: fixture.httpClient, logger: Self.logger),
            tableName: LeaseTable.tableName(application: TestServices.uniqueName("zombie")), streamARN: fixture.arn
        )
        try await table.ensureTable()
        // Fencing is due 1/3 to 2/3 of the duration after the cut; the last third is the margin a loaded
        // machine (a starved cooperative pool) gets before the test calls it late (seen: 6.01 s of 6).
        let duration = Duration.seconds(9)
        let coordinator = LeaseCoordinator(
            table: table, source: fixture.source, configuration: LeaseCoordinatorConfiguration(workerID: "me", leaseDuration: duration),
            logger: Self.logger
        )
        let reader = ShardedStreamReader(
            source: fixture.source, configuration: StreamReaderConfiguration(streamARN: fixture.arn, pollInterval: .milliseconds(100)),
            checkpoints: InMemoryCheckpointStore(), ownership: coordinator, logger: Self.logger
        )
        let reading = Task { try await reader.run { _ in } }
        let coordinating = Task { await coordinator.run(reader: reader) }
        let deadline = ContinuousClock.now + .seconds(45)
        func readingBoth() -> Bool { reader.status.shards.filter { $0.state == .reading }.count == 2 }
        while coordinator.heldShards.count < 2 || !readingBoth(), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(readingBoth())

        // The partition: every DynamoDB call of this worker hangs. Within 2/3 of the lease duration after its
        // last renewal (so before any other worker could see the leases expire) it stops reading them.
        forwarder.process.signal(SIGSTOP)
        let cut = ContinuousClock.now
        // Once the ownership hook says no, the reader neither routes nor checkpoints the shard (it checks before each).
        while !coordinator.heldShards.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let fencedAfter = ContinuousClock.now - cut
        #expect(coordinator.heldShards.isEmpty)
        #expect(fencedAfter < duration, "fenced after \(fencedAfter)")
        while reader.status.shards.contains(where: { $0.state == .reading }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(!reader.status.shards.contains { $0.state == .reading })

        // Back online, nobody took the leases: the table still names this worker, which adopts them again.
        forwarder.process.signal(SIGCONT)
        while coordinator.heldShards.count < 2 || !readingBoth(), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(coordinator.heldShards.count == 2)
        #expect(readingBoth())
        reader.requestStop()
        coordinator.requestStop()
        try await reading.value
        await coordinating.value
        await fixture.shutdown()
    }
}
