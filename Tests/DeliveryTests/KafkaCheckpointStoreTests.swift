import Delivery
import Kafka
import Logging
import Router
import StreamReader
import TestSupport
import Testing

@Suite(.timeLimit(.minutes(2))) struct KafkaCheckpointStoreTests {
    static let logger = Logger(label: "checkpoints-test")

    @Test func theLastCheckpointOfEachShardOfTheStreamIsLoaded() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        let producer = try KafkaProducer(configuration: configuration, logger: Self.logger)
        let admin = try KafkaAdmin(configuration: configuration, logger: Self.logger)
        let store = KafkaCheckpointStore(
            topic: CheckpointRecords.topic(application: TestServices.uniqueName("app")),
            configuration: configuration, producer: producer, logger: Self.logger
        )
        try await store.ensureTopic(admin: admin)
        #expect(try await store.load(streamARN: "arn:a").isEmpty)

        try await store.save(streamARN: "arn:a", shardID: "s1", checkpoint: Checkpoint(sequenceNumber: "100"))
        try await store.save(streamARN: "arn:a", shardID: "s1", checkpoint: Checkpoint(sequenceNumber: "200"))
        try await store.save(streamARN: "arn:a", shardID: "s0", checkpoint: Checkpoint(sequenceNumber: "90", isFinished: true, epoch: 3))
        try await store.save(streamARN: "arn:b", shardID: "s1", checkpoint: Checkpoint(sequenceNumber: "999"))

        let loaded = try await store.load(streamARN: "arn:a")
        #expect(loaded == [
            "s1": Checkpoint(sequenceNumber: "200"),
            "s0": Checkpoint(sequenceNumber: "90", isFinished: true, epoch: 3),
        ])
        #expect(try await store.load(streamARN: "arn:b") == ["s1": Checkpoint(sequenceNumber: "999")])
        let configs = try await admin.describeTopicConfigs(store.topic)
        #expect(configs["cleanup.policy"] == "compact")
        admin.close()
        await producer.shutdown()
    }

    @Test func aStaleEpochNeverMovesACheckpoint() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        let producer = try KafkaProducer(configuration: configuration, logger: Self.logger)
        let admin = try KafkaAdmin(configuration: configuration, logger: Self.logger)
        let store = KafkaCheckpointStore(
            topic: CheckpointRecords.topic(application: TestServices.uniqueName("epochs")),
            configuration: configuration, producer: producer, logger: Self.logger
        )
        try await store.ensureTopic(admin: admin)
        // Owner at epoch 1, then the new owner at epoch 2, then a zombie of epoch 1 writes late.
        try await store.save(streamARN: "arn:a", shardID: "s1", checkpoint: Checkpoint(sequenceNumber: "100", epoch: 1))
        try await store.save(streamARN: "arn:a", shardID: "s1", checkpoint: Checkpoint(sequenceNumber: "150", epoch: 2))
        try await store.save(streamARN: "arn:a", shardID: "s1", checkpoint: Checkpoint(sequenceNumber: "900", epoch: 1))
        // Without leases (no epoch) records are epoch 0: an epoch-0 record after epoch 2 is ignored too.
        try await store.save(streamARN: "arn:a", shardID: "s1", checkpoint: Checkpoint(sequenceNumber: "901"))
        // The same epoch moves it as usual; a higher one too.
        try await store.save(streamARN: "arn:a", shardID: "s2", checkpoint: Checkpoint(sequenceNumber: "5", epoch: 4))
        try await store.save(streamARN: "arn:a", shardID: "s2", checkpoint: Checkpoint(sequenceNumber: "6", epoch: 4))
        try await store.save(streamARN: "arn:a", shardID: "s2", checkpoint: Checkpoint(sequenceNumber: "7", epoch: 5))
        let loaded = try await store.load(streamARN: "arn:a")
        #expect(loaded["s1"] == Checkpoint(sequenceNumber: "150", epoch: 2))
        #expect(loaded["s2"] == Checkpoint(sequenceNumber: "7", epoch: 5))

        let memory = InMemoryCheckpointStore()
        try await memory.save(streamARN: "arn:a", shardID: "s1", checkpoint: Checkpoint(sequenceNumber: "150", epoch: 2))
        try await memory.save(streamARN: "arn:a", shardID: "s1", checkpoint: Checkpoint(sequenceNumber: "900", epoch: 1))
        #expect(try await memory.load(streamARN: "arn:a")["s1"] == Checkpoint(sequenceNumber: "150", epoch: 2))
        admin.close()
        await producer.shutdown()
    }

    @Test(arguments: [
        ("not json", "not JSON"),
        (#"{"sequenceNumber": "1", "finished": false}"#, "shardId is missing"),
        (#"{"shardId": "s", "sequenceNumber": "12x", "finished": false}"#, "is not a decimal number"),
        (#"{"shardId": "s", "sequenceNumber": 12, "finished": false}"#, "sequenceNumber is number"),
        (#"{"shardId": "s", "sequenceNumber": "12"}"#, "finished is missing"),
        (#"{"shardId": "s", "sequenceNumber": "12", "finished": true, "epoch": 1.5}"#, "epoch 1.5 is not an integer"),
    ])
    func aBadCheckpointRecordIsRefusedWithTheReason(value: String, reason: String) {
        #expect(throws: CheckpointRecords.DecodingError.self) { try CheckpointRecords.decode(Array(value.utf8)) }
        do {
            _ = try CheckpointRecords.decode(Array(value.utf8))
        } catch {
            #expect("\(error)".contains(reason), "\(error)")
        }
    }
}
