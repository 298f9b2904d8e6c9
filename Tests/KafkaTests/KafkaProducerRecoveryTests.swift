import Contracts
import Kafka
import Testing
import TestSupport

/// A producer whose handle hits a fatal error (librdkafka's `rd_kafka_test_fatal_error`, as when a restarted
/// broker breaks the idempotent sequence) replaces the handle and goes on producing.
@Suite("KafkaProducer recovers from fatal errors (mock cluster)")
struct KafkaProducerRecoveryTests {
    static func readBack(_ topic: String, _ cluster: KafkaMockCluster) async throws -> [[UInt8]] {
        try await KafkaTopicReader.readToEnd(
            topic: topic, configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers), timeout: .seconds(30),
            logger: KafkaTest.logger
        ).map(\.value)
    }

    static func records(_ topic: String, _ range: Range<Int>) -> [KafkaProducerRecord] {
        range.map { KafkaProducerRecord(topic: topic, key: Array("key-\($0 % 4)".utf8), value: Array("\($0)".utf8)) }
    }

    @Test("after a fatal error between two sends, the next send goes to a new handle and every record arrives")
    func fatalErrorBetweenSends() async throws {
        let topic = "recovery-between"
        let cluster = try KafkaMockClusterTests.makeCluster(topic: topic)
        let producer = try KafkaMockClusterTests.makeProducer(cluster)
        _ = try await producer.send(Self.records(topic, 0..<50))
        #expect(producer.health.rebuilds == 0)

        producer.injectFatalErrorForTesting(reason: "test: sequence desynchronised")
        // The fatal error stops the handle at once: without a replacement every record would fail from here.
        _ = try await producer.send(Self.records(topic, 50..<100))
        let health = producer.health
        #expect(health.rebuilds == 1, "handles replaced: \(health.rebuilds)")
        #expect(health.canProduce, "still failing: \(health.failure ?? "")")
        #expect(health.lastRebuildAt != nil)
        await producer.shutdown()

        let values = try await Self.readBack(topic, cluster)
        #expect(Set(values) == Set((0..<100).map { Array("\($0)".utf8) }), "records read back: \(values.count)")
        await cluster.close()
    }

    @Test("records in flight when the fatal error strikes fail with it; sent again, they arrive, in order per key")
    func fatalErrorWhileInFlight() async throws {
        let topic = "recovery-inflight"
        let cluster = try KafkaMockClusterTests.makeCluster(topic: topic)
        // One record a request and one request in flight: behind the 1 s round trip the rest of the batch waits in
        // librdkafka's queue, so the fatal error always finds records not yet acknowledged (with whole batches in one
        // request, a loaded machine could let the request carry them all before the strike, and they succeeded).
        let producer = try KafkaMockClusterTests.makeProducer(
            cluster, ["batch.num.messages": "1", "max.in.flight.requests.per.connection": "1"]
        )
        _ = try await producer.send(Self.records(topic, 0..<10))
        // Slow brokers keep the next batch in flight while the fatal error is raised.
        for broker in cluster.brokerIDs { try cluster.setRoundTripTime(broker: broker, milliseconds: 1_000) }
        let batch = Self.records(topic, 10..<60)
        let sending = Task { await producer.sendEach(batch) }
        // Once records of the batch are in librdkafka (in flight behind the 1 s round trip), the fatal error strikes,
        // with no suspension point between the look and the strike. (Under load the batch's enqueues can spread over
        // more than the round trip, so the whole batch is not waited for: the rest is enqueued on the failed handle.)
        let deadline = ContinuousClock.now + .seconds(30)
        while producer.outstandingRecords == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        let inFlight = producer.outstandingRecords
        producer.injectFatalErrorForTesting(reason: "test: sequence desynchronised")
        #expect(inFlight > 0, "the batch never was in flight")
        let outcomes = await sending.value
        let failed = outcomes.compactMap { if case .failure(let error) = $0 { error } else { nil } }
        #expect(!failed.isEmpty, "the batch was not in flight when the fatal error struck")
        let allFatal = failed.allSatisfy { $0.isFatal }
        #expect(allFatal, "failures: \(failed.map(\.description))")
        for broker in cluster.brokerIDs { try cluster.setRoundTripTime(broker: broker, milliseconds: 0) }

        // What failed is sent again, in order, as a caller that retries its page does.
        let again = zip(batch, outcomes).compactMap { record, outcome in if case .failure = outcome { record } else { nil } }
        _ = try await producer.send(again)
        _ = try await producer.send(Self.records(topic, 60..<80))
        #expect(producer.health.rebuilds == 1)
        #expect(producer.health.canProduce)
        await producer.shutdown()

        // Nothing lost; per key, the first time each value appears follows the order it was sent in.
        let values = try await Self.readBack(topic, cluster).map { Int(String(decoding: $0, as: UTF8.self))! }
        #expect(Set(values) == Set(0..<80), "missing: \(Set(0..<80).subtracting(values).sorted())")
        var seen = Set<Int>()
        var lastByKey: [Int: Int] = [:]
        for value in values where seen.insert(value).inserted {
            #expect(value > lastByKey[value % 4, default: -1], "key-\(value % 4): \(value) after \(lastByKey[value % 4]!)")
            lastByKey[value % 4] = value
        }
        await cluster.close()
    }

    @Test("a transactional producer with a fatal error (not fenced) is replaced, its transactions initialised again")
    func transactionalFatalError() async throws {
        let topic = "recovery-txn"
        let cluster = try KafkaMockClusterTests.makeCluster(topic: topic)
        let producer = try KafkaMockClusterTests.makeProducer(cluster, ["transactional.id": "fanout-recovery"])
        try await producer.initTransactions()
        try await producer.beginTransaction()
        _ = try await producer.send(Self.records(topic, 0..<10))
        try await producer.commitTransaction()

        producer.injectFatalErrorForTesting(reason: "test: transactional producer broken")
        try await producer.beginTransaction()
        _ = try await producer.send(Self.records(topic, 10..<20))
        try await producer.commitTransaction()
        #expect(producer.health.rebuilds == 1)
        #expect(producer.health.canProduce)
        await producer.shutdown()

        let values = try await Self.readBack(topic, cluster)
        #expect(Set(values) == Set((0..<20).map { Array("\($0)".utf8) }))
        await cluster.close()
    }
}
