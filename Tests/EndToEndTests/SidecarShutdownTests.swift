import AWS
import AsyncHTTPClient
import CQRSCore
import Contracts
import Delivery
import ExampleDomain
import FanoutApp
import Foundation
import Kafka
import Logging
import ServiceLifecycleTestKit
import Settings
import StreamReader
import TestSupport
import Testing

/// The sidecar's services shut down in reverse flow order (README, "Operations"; docs/guarantees.md): on a
/// graceful shutdown the reader stops first and every shard's last page is checkpointed, then the leases are
/// released, then the producer is flushed and closed. Run on real servers (moto, the Kafka broker), with the
/// shutdown triggered the way a parent service group triggers it (ServiceLifecycleTestKit).
@Suite(.serialized, .timeLimit(.minutes(2))) struct SidecarShutdownTests {
    @Test func aGracefulShutdownStopsTheReaderThenReleasesTheLeasesThenClosesTheProducer() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try PipelineTests.awsConfiguration()
        let topics = PipelineTests.Topics()
        let routesPath = try topics.write()
        let table = TestServices.uniqueName("shutdown")
        let application = TestServices.uniqueName("shutdown")
        let httpClient = HTTPClient.forTests
        let dynamoDB = DynamoDB(configuration: aws, httpClient: httpClient, logger: PipelineTests.logger)
        let store = DynamoDBEventStore(dynamoDB: dynamoDB, tableName: table)
        try await store.createTableIfMissing()

        let (logger, sink) = LogRecorder.makeLogger(label: "shutdown-test", level: .info)
        let sidecar = try await Sidecar.make(
            configuration: SidecarConfiguration(
                brokers: brokers, routesPath: routesPath, tableName: table, application: application, aws: aws,
                leases: LeaseCoordinatorConfiguration(workerID: "shutdown-worker", leaseDuration: .seconds(10))
            ),
            logger: logger
        )
        let dispatcher = makeExampleDispatcher(store: store)
        var stored: [GenericDomainEventMessage] = []
        for command in [
            try GenericCommandMessage(PlaceOrder(orderId: "s-1", customerId: "alice", total: 1, items: ["a"])),
            try GenericCommandMessage(PlaceOrder(orderId: "s-2", customerId: "bob", total: 2, items: ["b"])),
            try GenericCommandMessage(ShipOrder(orderId: "s-1", carrier: "dhl")),
        ] {
            stored += try await dispatcher.dispatch(command)
        }

        try await testGracefulShutdown { trigger in
            async let running: Void = sidecar.run()
            // Every event read and routed (its page delivered), then the shutdown, as a parent group sends it.
            let deadline = ContinuousClock.now + .seconds(60)
            while sidecar.pipeline.currentCounts.recordsRead < stored.count, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(sidecar.pipeline.currentCounts.recordsRead == stored.count, "the sidecar read \(sidecar.pipeline.currentCounts.recordsRead) of \(stored.count) events")
            trigger.triggerGracefulShutdown()
            try await running
        }

        // In reverse flow order: the reader (every shard checkpointed), the leases, the producer.
        let steps = [
            "stream reader stopped: every shard checkpointed up to what Kafka acknowledged", "leases released", "producer flushed and closed", "stopped",
        ]
        let positions = steps.map { sink.index(of: $0) }
        #expect(!positions.contains(nil), "missing shutdown steps: \(zip(steps, positions).filter { $0.1 == nil }.map(\.0)); the log: \(sink.all.map(\.message))")
        let found = positions.compactMap { $0 }
        #expect(found == found.sorted(), "shutdown steps out of order: \(zip(steps, positions).map { "\($0.0) at \($0.1 ?? -1)" })")

        // The checkpoints were written before the producer closed: each shard's is its last routed record.
        let status = sidecar.streamStatus
        let read = try await CheckpointRecords.read(
            topic: CheckpointRecords.topic(application: application), configuration: KafkaConfiguration(bootstrapServers: brokers),
            logger: PipelineTests.logger
        )
        let checkpoints = read.checkpoints(streamARN: status.streamARN)
        let routedShards = status.shards.filter { $0.lastSequenceNumber != nil }
        #expect(!routedShards.isEmpty)
        for shard in routedShards {
            #expect(checkpoints[shard.shardID]?.sequenceNumber == shard.lastSequenceNumber, "shard \(shard.shardID): checkpoint \(String(describing: checkpoints[shard.shardID])), last routed \(shard.lastSequenceNumber ?? "none")")
        }

        // The leases were released before the process would exit: no lease has an owner.
        let leases = try await LeaseTable(
            dynamoDB: dynamoDB, tableName: LeaseTable.tableName(application: application), streamARN: status.streamARN
        ).leases()
        #expect(!leases.isEmpty)
        #expect(leases.allSatisfy { $0.owner == nil }, "leases still owned: \(leases.filter { $0.owner != nil }.map(\.shardID))")
    }
}
