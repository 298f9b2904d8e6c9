import AWS
import CQRSCore
import Contracts
import Delivery
import JSON
import Kafka
import Logging
import Router
import StreamReader
import TestSupport
import Testing

/// Exactly-once mode against noida-db (which enforces read_committed): per-shard transactional producers
/// fence a zombie owner of the shard, and a record its topic refuses becomes a dead letter inside the
/// page's transaction.
@Suite(.timeLimit(.minutes(2))) struct ExactlyOnceTransactionsTests {
    static let logger = Logger(label: "eos-transactions")

    static func committed(_ topic: String, brokers: String) async throws -> [KafkaConsumerMessage] {
        try await KafkaTopicReader.readToEnd(
            topic: topic, configuration: KafkaConfiguration(bootstrapServers: brokers, properties: ["isolation.level": "read_committed"]),
            timeout: .seconds(30), logger: logger
        )
    }

    static func page(_ ids: [String], shardID: String, epoch: Int64?, firstSequence: Int, payload: JSONValue = ["n": 1]) -> ShardRecords {
        let records = ids.enumerated().map { index, id in
            let event = GenericDomainEventMessage(eventName: "OrderPlaced", aggregateID: id, aggregateType: "Order", sequenceNumber: 1, payload: payload)
            return StreamRecord(eventID: "e-\(id)", eventName: "INSERT", keys: [:], newImage: event.item, sequenceNumber: "\(firstSequence + index)")
        }
        return ShardRecords(streamARN: "arn:eos", shardID: shardID, records: records, epoch: epoch)
    }

    static func routes(topic: String, deadLetterTopic: String) throws -> LiveRoutes {
        let text = """
            {"version": 1, "topics": {"\(topic)": {"partitions": 1}}, "routes": [{"name": "o", "events": ["Order*"], "to": ["\(topic)"]}],
             "deadLetterTopic": "\(deadLetterTopic)"}
            """
        return LiveRoutes(CompiledRoutes(try RoutesFile.parse(Array(text.utf8), file: "eos.json")), path: "eos.json")
    }

    /// A worker whose lease on shard s1 is taken while its transaction is open: the new owner's producer
    /// (same per-shard transactional id) fences it, its commit fails with ShardFencedError, its record is never
    /// visible; its other shard goes on; the new owner commits.
    @Test func aNewOwnerOfAShardFencesTheZombieMidTransactionAndOnlyThatShardStops() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        let application = TestServices.uniqueName("eos-fence")
        let topic = "orders.\(application)"
        let admin = try KafkaAdmin(configuration: configuration, logger: Self.logger)
        defer { admin.close() }
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 1, replicationFactor: 1)])
        let zombie = ExactlyOnceTransactions(perShardConfiguration: configuration, application: application, logger: Self.logger)
        let owner = ExactlyOnceTransactions(perShardConfiguration: configuration, application: application, logger: Self.logger)
        func record(_ value: String) -> KafkaProducerRecord {
            KafkaProducerRecord(topic: topic, key: Array(value.utf8), value: Array(value.utf8))
        }

        try await zombie.shardStarting("s1", epoch: 1)
        try await zombie.shardStarting("s2", epoch: 1)
        #expect(zombie.openProducers == 2)
        try await zombie.withTransaction(shardID: "s1", epoch: 1) { producer in _ = try await producer.send([record("zombie-committed")]) }

        // Mid-transaction, a new owner takes s1 (epoch 2) and opens the shard's producer.
        let fenced = await #expect(throws: ShardFencedError.self) {
            try await zombie.withTransaction(shardID: "s1", epoch: 1) { producer in
                _ = try await producer.send([record("zombie-uncommitted")])
                try await owner.shardStarting("s1", epoch: 2)
            }
        }
        #expect(fenced?.shardID == "s1")
        #expect(zombie.openProducers == 1, "the fenced producer is closed, the other shard's stays")
        // The zombie cannot write for s1 any more; its other shard commits.
        await #expect(throws: ShardFencedError.self) {
            try await zombie.withTransaction(shardID: "s1", epoch: 1) { producer in _ = try await producer.send([record("zombie-again")]) }
        }
        try await zombie.withTransaction(shardID: "s2", epoch: 1) { producer in _ = try await producer.send([record("other-shard")]) }
        try await owner.withTransaction(shardID: "s1", epoch: 2) { producer in _ = try await producer.send([record("new-owner")]) }

        let values = try await Self.committed(topic, brokers: brokers).map { String(decoding: $0.value, as: UTF8.self) }
        #expect(values == ["zombie-committed", "other-shard", "new-owner"])

        // The pipeline of a fenced shard throws ShardFencedError (the reader stops that shard only).
        let checkpoints = KafkaCheckpointStore(
            topic: CheckpointRecords.topic(application: application), configuration: configuration,
            producer: try KafkaProducer(configuration: configuration, logger: Self.logger), transactions: zombie, logger: Self.logger
        )
        try await checkpoints.ensureTopic(admin: admin)
        let pipeline = FanOutPipeline(
            routes: try Self.routes(topic: topic, deadLetterTopic: "dead.\(application)"), producer: try KafkaProducer(configuration: configuration, logger: Self.logger),
            exactlyOnce: (checkpoints, zombie), logger: Self.logger
        )
        await #expect(throws: ShardFencedError.self) { try await pipeline.process(Self.page(["late"], shardID: "s1", epoch: 1, firstSequence: 10)) }
        try await pipeline.process(Self.page(["fine"], shardID: "s2", epoch: 1, firstSequence: 10))
        #expect(try await checkpoints.load(streamARN: "arn:eos") == ["s2": Checkpoint(sequenceNumber: "10", epoch: 1)])
        await zombie.shutdown()
        await owner.shutdown()
        #expect(zombie.openProducers == 0)
    }

    /// A record larger than its topic's max.message.bytes, in exactly-once mode: the page's transaction is
    /// aborted, the record is replaced by a dead letter with the reason, and the page commits with its checkpoint.
    @Test(arguments: [false, true]) func aRecordItsTopicRefusesIsADeadLetterInExactlyOnceMode(perShard: Bool) async throws {
        let brokers = try TestServices.kafkaBrokers()
        let configuration = KafkaConfiguration(bootstrapServers: brokers)
        let application = TestServices.uniqueName("eos-refused")
        let topic = "orders.\(application)", deadLetterTopic = "dead.\(application)"
        let admin = try KafkaAdmin(configuration: configuration, logger: Self.logger)
        defer { admin.close() }
        try await admin.createTopics([
            KafkaTopicSpecification(name: topic, partitions: 1, replicationFactor: 1, configs: ["max.message.bytes": "20000"]),
            KafkaTopicSpecification(name: deadLetterTopic, partitions: 1, replicationFactor: 1),
        ])
        let producer: KafkaProducer
        let transactions: ExactlyOnceTransactions
        let epoch: Int64?
        if perShard {
            producer = try KafkaProducer(configuration: configuration, logger: Self.logger)
            transactions = ExactlyOnceTransactions(perShardConfiguration: configuration, application: application, logger: Self.logger)
            try await transactions.shardStarting("s1", epoch: 4)
            epoch = 4
        } else {
            var transactional = configuration
            transactional["transactional.id"] = "fanout.\(application)"
            producer = try KafkaProducer(configuration: transactional, logger: Self.logger)
            try await producer.initTransactions()
            transactions = ExactlyOnceTransactions(sharedProducer: producer, logger: Self.logger)
            epoch = nil
        }
        let checkpoints = KafkaCheckpointStore(
            topic: CheckpointRecords.topic(application: application), configuration: configuration, producer: producer,
            transactions: transactions, logger: Self.logger
        )
        try await checkpoints.ensureTopic(admin: admin)
        let pipeline = FanOutPipeline(
            routes: try Self.routes(topic: topic, deadLetterTopic: deadLetterTopic), producer: producer, exactlyOnce: (checkpoints, transactions),
            logger: Self.logger
        )
        try await pipeline.process(Self.page(["before"], shardID: "s1", epoch: epoch, firstSequence: 1))
        let large: JSONValue = ["blob": .string(String(repeating: "x", count: 50_000))]
        try await pipeline.process(Self.page(["good-1"], shardID: "s1", epoch: epoch, firstSequence: 2))
        try await pipeline.process(Self.page(["too-large"], shardID: "s1", epoch: epoch, firstSequence: 3, payload: large))
        // A page mixing good records with a refused one: the good ones stay, the refused one is a dead letter.
        var mixed = Self.page(["good-2", "good-3"], shardID: "s1", epoch: epoch, firstSequence: 4)
        mixed.records.insert(Self.page(["too-large-2"], shardID: "s1", epoch: epoch, firstSequence: 5, payload: large).records[0], at: 1)
        mixed.records[1].sequenceNumber = "5"
        mixed.records[2].sequenceNumber = "6"
        try await pipeline.process(mixed)

        let routed = try await Self.committed(topic, brokers: brokers).map { String(decoding: $0.key ?? [], as: UTF8.self) }
        #expect(routed == ["before", "good-1", "good-2", "good-3"])
        let dead = try await Self.committed(deadLetterTopic, brokers: brokers)
        #expect(dead.map { String(decoding: $0.key ?? [], as: UTF8.self) } == ["too-large", "too-large-2"])
        for letter in dead {
            let headers = Dictionary(letter.headers.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) }, uniquingKeysWith: { $1 })
            #expect(headers[FanoutHeader.error]?.hasPrefix("topic \(topic) refused the record: ") == true, "\(headers)")
        }
        #expect(pipeline.currentCounts.deadLettered == 2)
        #expect(try await checkpoints.load(streamARN: "arn:eos") == ["s1": Checkpoint(sequenceNumber: "6", epoch: epoch)])
        await transactions.shutdown()
        await producer.shutdown()
    }

    /// A pipeline in exactly-once mode with the shared transactional producer, on a one-broker mock cluster with
    /// the topics `orders`, `dlq` and the application's checkpoint topic.
    static func sharedProducerOnTheMockCluster(_ name: String) async throws -> (
        KafkaMockCluster, KafkaProducer, ExactlyOnceTransactions, KafkaCheckpointStore, FanOutPipeline
    ) {
        let cluster = try KafkaMockCluster(brokers: 1, logger: Self.logger)
        let application = TestServices.uniqueName(name)
        let topic = "orders", deadLetterTopic = "dlq", checkpointTopic = CheckpointRecords.topic(application: application)
        for name in [topic, deadLetterTopic, checkpointTopic] { try cluster.createTopic(name: name, partitions: 1, replicationFactor: 1) }
        let configuration = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, properties: ["retry.backoff.ms": "20"])
        var transactional = configuration
        transactional["transactional.id"] = "fanout.\(application)"
        let producer = try KafkaProducer(configuration: transactional, logger: Self.logger)
        try await producer.initTransactions()
        let transactions = ExactlyOnceTransactions(sharedProducer: producer, logger: Self.logger)
        let checkpoints = KafkaCheckpointStore(
            topic: checkpointTopic, configuration: configuration, producer: producer, transactions: transactions, logger: Self.logger
        )
        let pipeline = FanOutPipeline(
            routes: try Self.routes(topic: topic, deadLetterTopic: deadLetterTopic), producer: producer,
            exactlyOnce: (checkpoints, transactions), logger: Self.logger
        )
        return (cluster, producer, transactions, checkpoints, pipeline)
    }

    /// A page whose transaction fails only in the aftermath of a failure (here the broker answers the page's
    /// produce with UNKNOWN_PRODUCER_ID, injected on librdkafka's mock cluster: librdkafka must bump its
    /// epoch, and the transaction must be aborted) runs again in a new transaction and commits, instead of
    /// failing the page. Twice as many injected failures as retries fail the page, with the failure.
    @Test func aTransactionFailedInTheAftermathOfAnEarlierOneRunsAgain() async throws {
        let (cluster, producer, _, checkpoints, pipeline) = try await Self.sharedProducerOnTheMockCluster("eos-aftermath")
        let topic = "orders"
        // A first page makes the producer ready, so that the injected errors hit the pages below.
        try await pipeline.process(Self.page(["warm-up"], shardID: "s1", epoch: nil, firstSequence: 1))
        try cluster.pushRequestErrors(apiKey: .produce, errors: [.unknownProducerID])
        try await pipeline.process(Self.page(["after-1", "after-2"], shardID: "s1", epoch: nil, firstSequence: 2))

        let failures = Array(repeating: KafkaError.Code.unknownProducerID, count: 2 * FanOutPipeline.transactionAftermathRetries + 2)
        try cluster.pushRequestErrors(apiKey: .produce, errors: failures)
        await #expect {
            try await pipeline.process(Self.page(["never"], shardID: "s1", epoch: nil, firstSequence: 4))
        } throws: { error in
            (error as? KafkaError)?.isTransactionAftermath == true
        }
        try cluster.clearRequestErrors(apiKey: .produce)
        try await pipeline.process(Self.page(["last"], shardID: "s1", epoch: nil, firstSequence: 5))

        // The mock cluster does not enforce read_committed (docs: ../shared/INFRA.md), so the aborted attempts'
        // records are visible here; that nothing of an aborted transaction is visible is checked on noida-db above.
        let routed = try await Self.committed(topic, brokers: cluster.bootstrapServers).map { String(decoding: $0.key ?? [], as: UTF8.self) }
        #expect(routed.last == "last", "\(routed)")
        #expect(try await checkpoints.load(streamARN: "arn:eos") == ["s1": Checkpoint(sequenceNumber: "5", epoch: nil)])
        #expect(pipeline.currentCounts.deadLettered == 0)
        await producer.shutdown()
        await cluster.close()
    }

    /// A fatal error that is not a fencing (a broker lost the producer's sequence) used to stop the reader
    /// (UnrecoverableProcessingError); the shared transactional producer is now replaced and the pages go on.
    @Test func aFatalProducerErrorThatIsNotAFencingReplacesTheProducerAndThePagesGoOn() async throws {
        let (cluster, producer, transactions, checkpoints, pipeline) = try await Self.sharedProducerOnTheMockCluster("eos-fatal")
        let topic = "orders"
        try await pipeline.process(Self.page(["before"], shardID: "s1", epoch: nil, firstSequence: 1))
        producer.injectFatalErrorForTesting(.outOfOrderSequenceNumber, reason: "test: sequence desynchronised")
        // The reader retries a failed page; a fatal error must never surface as one that stops it.
        var attempts = 0
        while true {
            attempts += 1
            do {
                try await pipeline.process(Self.page(["after"], shardID: "s1", epoch: nil, firstSequence: 2))
                break
            } catch let error as UnrecoverableProcessingError {
                Issue.record("the reader would stop: \(error)")
                break
            } catch where attempts < 3 {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        try await pipeline.process(Self.page(["last"], shardID: "s1", epoch: nil, firstSequence: 3))
        #expect(producer.health.rebuilds == 1)
        #expect(transactions.producersHealth.allSatisfy { $0.canProduce })
        let routed = try await Self.committed(topic, brokers: cluster.bootstrapServers).map { String(decoding: $0.key ?? [], as: UTF8.self) }
        #expect(Set(routed) == ["before", "after", "last"], "\(routed)")
        #expect(try await checkpoints.load(streamARN: "arn:eos") == ["s1": Checkpoint(sequenceNumber: "3", epoch: nil)])
        await producer.shutdown()
        await cluster.close()
    }
}
