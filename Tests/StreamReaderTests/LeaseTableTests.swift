import AWS
import AsyncHTTPClient
import Foundation
import Logging
import StreamReader
import TestSupport
import Testing

/// The lease table's conditional writes against moto's DynamoDB.
@Suite(.timeLimit(.minutes(1))) struct LeaseTableTests {
    static let logger = Logger(label: "lease-table")

    static func withTable(application: String? = nil, stream: String = "arn:aws:kinesis:us-east-1:1:stream/s", _ body: (LeaseTable) async throws -> Void) async throws {
        let aws = AWSConfiguration(
            region: "us-east-1", credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: try TestServices.awsEndpoint())!
        )
        let httpClient = HTTPClient.forTests
        let dynamoDB = DynamoDB(configuration: aws, httpClient: httpClient, logger: logger)
        let table = LeaseTable(
            dynamoDB: dynamoDB, tableName: LeaseTable.tableName(application: application ?? TestServices.uniqueName("app")), streamARN: stream
        )
        try await table.ensureTable()
        try await table.ensureTable()  // idempotent
        try await body(table)
    }

    @Test func takeRenewHandOverReleaseAndFinishAreConditional() async throws {
        try await Self.withTable { (table: LeaseTable) async throws in
            #expect(table.tableName.hasPrefix("fanout-leases-app-"))
            #expect(try await table.create(shardID: "s-1", parents: []) == .done)
            #expect(try await table.create(shardID: "s-1", parents: ["other"]) == .lost, "a second create must not reset the lease")
            #expect(try await table.create(shardID: "s-2", parents: ["s-1"]) == .done)

            // Two workers race for the free lease: one wins, with epoch 1.
            #expect(try await table.take(shardID: "s-1", me: "a", expectedOwner: nil, expectedCounter: 0) == 1)
            #expect(try await table.take(shardID: "s-1", me: "b", expectedOwner: nil, expectedCounter: 0) == nil)
            #expect(try await table.renew(shardID: "s-1", me: "a", epoch: 1) == .done)
            #expect(try await table.renew(shardID: "s-1", me: "b", epoch: 1) == .lost)
            #expect(try await table.renew(shardID: "s-1", me: "a", epoch: 0) == .lost, "a stale epoch never renews")

            var lease = try #require(try await table.leases().first { $0.shardID == "s-1" })
            #expect(lease.owner == "a" && lease.epoch == 1 && lease.counter == 2)
            // Taking an expired lease needs the counter the taker saw.
            #expect(try await table.take(shardID: "s-1", me: "c", expectedOwner: "a", expectedCounter: 1) == nil)

            // Handover: one request at a time; only the owner hands over, only to the asker.
            #expect(try await table.requestHandover(shardID: "s-1", me: "b", owner: "a") == .done)
            #expect(try await table.requestHandover(shardID: "s-1", me: "c", owner: "a") == .lost)
            #expect(try await table.handOver(shardID: "s-1", me: "a", to: "c") == .lost)
            #expect(try await table.handOver(shardID: "s-1", me: "a", to: "b") == .done)
            lease = try #require(try await table.leases().first { $0.shardID == "s-1" })
            #expect(lease.owner == "b" && lease.epoch == 2 && lease.pendingOwner == nil)
            #expect(try await table.renew(shardID: "s-1", me: "a", epoch: 1) == .lost, "the old owner is fenced")

            // An expired lease is taken with the owner and counter last seen: the epoch grows.
            #expect(try await table.take(shardID: "s-1", me: "c", expectedOwner: "b", expectedCounter: lease.counter) == 3)
            #expect(try await table.release(shardID: "s-1", me: "b") == .lost)
            #expect(try await table.release(shardID: "s-1", me: "c") == .done)
            lease = try #require(try await table.leases().first { $0.shardID == "s-1" })
            #expect(lease.owner == nil && lease.epoch == 3)

            // Finishing needs the lease; children become ready.
            let taken = try #require(try await table.take(shardID: "s-1", me: "a", expectedOwner: nil, expectedCounter: lease.counter))
            #expect(LeaseBalancer.ready(try await table.leases()).map(\.shardID) == ["s-1"])
            #expect(try await table.finish(shardID: "s-1", me: "a", epoch: taken - 1) == .lost)
            #expect(try await table.finish(shardID: "s-1", me: "a", epoch: taken) == .done)
            let leases = try await table.leases()
            #expect(leases.first { $0.shardID == "s-2" }?.parents == ["s-1"])
            #expect(LeaseBalancer.ready(leases).map(\.shardID) == ["s-2"])
        }
    }

    @Test func heartbeatsListLiveWorkersAndApplicationsAndStreamsAreSeparate() async throws {
        let application = TestServices.uniqueName("app")
        try await Self.withTable(application: application) { (table: LeaseTable) async throws in
            try await table.heartbeat(me: "a")
            try await table.heartbeat(me: "a")
            try await table.heartbeat(me: "b")
            #expect(try await table.workers() == ["a": 2, "b": 1])
            try await table.removeWorker(me: "a")
            #expect(try await table.workers() == ["b": 1])
            #expect(try await table.create(shardID: "s-1", parents: []) == .done)
            #expect(try await table.leases().map(\.shardID) == ["s-1"], "worker items are not leases")
        }
        // Another stream in the same application's table, and another application: neither sees those leases.
        try await Self.withTable(application: application, stream: "arn:aws:kinesis:us-east-1:1:stream/other") { (table: LeaseTable) async throws in
            #expect(try await table.leases().isEmpty)
            #expect(try await table.workers().isEmpty)
        }
        try await Self.withTable { (table: LeaseTable) async throws in
            #expect(try await table.leases().isEmpty)
        }
    }
}
