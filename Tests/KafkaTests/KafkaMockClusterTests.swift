import Contracts
import Kafka
import Testing
import TestSupport

/// The producer's guarantees under injected faults, on librdkafka's mock cluster.
@Suite("KafkaProducer under faults (mock cluster)")
struct KafkaMockClusterTests {
    static let keys = 16

    /// 2,000 keyed records; each value is `key/sequence`, the sequence counting per key.
    static func records(topic: String, count: Int = 2_000) -> [KafkaProducerRecord] {
        var next = [Int](repeating: 0, count: keys)
        return (0..<count).map { i in
            let key = (i * 7) % keys
            defer { next[key] += 1 }
            return KafkaProducerRecord(topic: topic, key: Array("key-\(key)".utf8), value: Array("\(key)/\(next[key])".utf8))
        }
    }

    /// Reads the topic back and checks that every record arrived exactly once and, per key, in order.
    /// - Parameter acks: the acknowledgements of `sent` (same order), when known: a record missing from the
    ///   read-back is then reported with the partition and offset it was acknowledged at, and what the topic
    ///   holds there (another record, or a gap in the offsets read).
    static func expectNoLossNoReorder(
        _ sent: [KafkaProducerRecord],
        acks: [KafkaAcknowledgement]? = nil,
        topic: String,
        cluster: KafkaMockCluster
    ) async throws {
        let read = try await KafkaTopicReader.readToEnd(
            topic: topic,
            configuration: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers),
            timeout: .seconds(30),
            logger: KafkaTest.logger
        )
        #expect(read.count == sent.count, "records read back: \(read.count) of \(sent.count)")
        if read.count != sent.count, let acks {
            Self.reportMissing(sent, acks: acks, read: read)
        }
        var byKey: [[UInt8]: [[UInt8]]] = [:]
        for message in read { byKey[message.key ?? [], default: []].append(message.value) }
        var sentByKey: [[UInt8]: [[UInt8]]] = [:]
        for record in sent { sentByKey[record.key ?? [], default: []].append(record.value) }
        for (key, values) in sentByKey {
            let received = byKey[key] ?? []
            #expect(received == values, "key \(String(decoding: key, as: UTF8.self)): \(received.count) of \(values.count), in order: \(received == values)")
        }
    }

    /// Where each record that was sent but not read back was acknowledged, and what the read-back holds there.
    static func reportMissing(_ sent: [KafkaProducerRecord], acks: [KafkaAcknowledgement], read: [KafkaConsumerMessage]) {
        var readValues: [[UInt8]: Int] = [:]
        for message in read { readValues[message.value, default: 0] += 1 }
        var byPosition: [Int32: [Int64: KafkaConsumerMessage]] = [:]
        for message in read { byPosition[message.partition, default: [:]][message.offset] = message }
        for (partition, messages) in byPosition.sorted(by: { $0.key < $1.key }) {
            let offsets = messages.keys.sorted()
            var gaps: [String] = []
            var expected = offsets.first ?? 0
            for offset in offsets {
                if offset != expected { gaps.append("\(expected)..<\(offset)") }
                expected = offset + 1
            }
            Issue.record("partition \(partition): offsets \(offsets.first ?? -1)...\(offsets.last ?? -1), \(offsets.count) read, gaps: \(gaps)")
        }
        for (record, ack) in zip(sent, acks) where readValues[record.value, default: 0] == 0 {
            let there = byPosition[ack.partition]?[ack.offset].map { String(decoding: $0.value, as: UTF8.self) } ?? "nothing (a gap in what was read)"
            Issue.record("""
                missing \(String(decoding: record.value, as: UTF8.self)) (key \(String(decoding: record.key ?? [], as: UTF8.self))): \
                acknowledged at partition \(ack.partition) offset \(ack.offset), where the read-back has \(there)
                """)
        }
    }

    static func makeCluster(topic: String, partitions: Int = 4) throws -> KafkaMockCluster {
        let cluster = try KafkaMockCluster(brokers: 3, logger: KafkaTest.logger)
        try cluster.createTopic(name: topic, partitions: partitions, replicationFactor: 3)
        return cluster
    }

    static func makeProducer(_ cluster: KafkaMockCluster, _ properties: [String: String] = [:]) throws -> KafkaProducer {
        try KafkaProducer(
            configuration: KafkaConfiguration(
                bootstrapServers: cluster.bootstrapServers,
                properties: ["retry.backoff.ms": "20", "batch.num.messages": "100"].merging(properties) { $1 }
            ),
            logger: KafkaTest.logger
        )
    }

    @Test("with retriable Produce errors injected, 2,000 keyed records arrive without loss and in order per key")
    func retriableProduceErrors() async throws {
        let topic = "faults-retriable"
        let cluster = try Self.makeCluster(topic: topic)
        // One request in flight: librdkafka 2.0.2's mock cluster checks sequence numbers only for transactional
        // producers (rd_kafka_mock_validate_records returns at once without a TransactionalId), so with several
        // requests in flight it appends an idempotent producer's later batch after a failed one, where a broker
        // refuses it as out of order; librdkafka, seeing a later sequence acknowledged, then takes the failed batch
        // as written (acknowledged at offset -1001) though it never was (11 of 243 runs here lost the test's first
        // record so, with 5 in flight). A broker's side of that protocol is exercised by BrokerRestartTests (noida-db
        // killed under load, 5 in flight, every record read back).
        let producer = try Self.makeProducer(cluster, ["statistics.interval.ms": "100", "max.in.flight.requests.per.connection": "1"])
        // Warm up (metadata, producer id) so the errors hit the batches of the test.
        let warmUp = [KafkaProducerRecord(topic: topic, key: Array("warm-up".utf8), value: Array("warm-up".utf8))]
        let warmUpAcks = try await producer.send(warmUp)
        let pattern: [KafkaError.Code] = [
            KafkaError.Code(rawValue: 6),  // NOT_LEADER_FOR_PARTITION
            KafkaError.Code(rawValue: 7),  // REQUEST_TIMED_OUT
            KafkaError.Code(rawValue: 19),  // NOT_ENOUGH_REPLICAS
        ]
        try cluster.pushRequestErrors(apiKey: .produce, errors: Array(repeating: pattern, count: 5).flatMap { $0 })

        let records = Self.records(topic: topic)
        let acks = try await producer.send(records)
        #expect(acks.count == records.count)
        // Every record acknowledged where it was written (an offset of -1001 is librdkafka inferring persistence).
        let unknownOffsets = acks.filter { $0.offset < 0 }
        #expect(unknownOffsets.isEmpty, "acknowledged without an offset: \(unknownOffsets.prefix(5))")
        // The injected errors did hit: librdkafka sent some records more than once.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(5))
            await producer.shutdown()
        }
        var sentMessages: Int64 = 0
        for await statistics in producer.statistics {
            sentMessages = statistics.sentMessages
            if sentMessages > Int64(records.count + 1) { break }
        }
        watchdog.cancel()
        #expect(sentMessages > Int64(records.count + 1))
        await producer.shutdown()
        try await Self.expectNoLossNoReorder(warmUp + records, acks: warmUpAcks + acks, topic: topic, cluster: cluster)
        await cluster.close()
    }

    // The partitions lose their leader rather than the broker going down: bringing a mock broker
    // down can abort the process (see KafkaMockCluster.setBroker).
    @Test("the partitions without a leader for 2 s while sending, then led again: no loss, no reorder")
    func leaderDown() async throws {
        let topic = "faults-leader-down"
        let cluster = try Self.makeCluster(topic: topic, partitions: 2)
        for partition in Int32(0)..<2 { try cluster.setPartitionLeader(topic: topic, partition: partition, broker: 1) }
        let producer = try Self.makeProducer(cluster)
        let records = Self.records(topic: topic)

        let started = ContinuousClock.now
        let sending = Task {
            var acks: [KafkaAcknowledgement] = []
            for start in stride(from: 0, to: records.count, by: 100) {
                acks += try await producer.send(Array(records[start..<(start + 100)]))
                try await Task.sleep(for: .milliseconds(20))
            }
            return acks
        }
        try await Task.sleep(for: .milliseconds(100))
        for partition in Int32(0)..<2 { try cluster.setPartitionLeader(topic: topic, partition: partition, broker: -1) }
        try await Task.sleep(for: .seconds(2))
        for partition in Int32(0)..<2 { try cluster.setPartitionLeader(topic: topic, partition: partition, broker: 1) }
        let acks = try await sending.value
        #expect(acks.count == records.count)
        // The outage fell inside the sending: it could not finish before the leader came back.
        #expect(ContinuousClock.now - started > .milliseconds(1_900))
        await producer.shutdown()
        try await Self.expectNoLossNoReorder(records, topic: topic, cluster: cluster)
        await cluster.close()
    }

    @Test("a round-trip-time spike of 500 ms on every broker: every record still arrives, in order per key")
    func roundTripSpike() async throws {
        let topic = "faults-rtt"
        let cluster = try Self.makeCluster(topic: topic)
        let producer = try Self.makeProducer(cluster)
        let records = Self.records(topic: topic)
        for broker in cluster.brokerIDs { try cluster.setRoundTripTime(broker: broker, milliseconds: 500) }
        let started = ContinuousClock.now
        let sending = Task { try await producer.send(records) }
        try await Task.sleep(for: .seconds(1))
        for broker in cluster.brokerIDs { try cluster.setRoundTripTime(broker: broker, milliseconds: 0) }
        let acks = try await sending.value
        #expect(acks.count == records.count)
        #expect(ContinuousClock.now - started > .milliseconds(500))  // the spike slowed it down
        await producer.shutdown()
        try await Self.expectNoLossNoReorder(records, topic: topic, cluster: cluster)
        await cluster.close()
    }

    @Test("a permanent Produce error fails send with an error naming the topic")
    func permanentProduceError() async throws {
        let topic = "faults-permanent"
        let cluster = try Self.makeCluster(topic: topic, partitions: 1)
        let producer = try Self.makeProducer(cluster)
        _ = try await producer.send([KafkaProducerRecord(topic: topic, key: nil, value: [0])])
        try cluster.pushRequestErrors(apiKey: .produce, errors: [.topicAuthorizationFailed])
        do {
            _ = try await producer.send([KafkaProducerRecord(topic: topic, key: nil, value: [1])])
            Issue.record("expected an error")
        } catch let error as KafkaError {
            #expect(error.code == .topicAuthorizationFailed, "\(error)")
            #expect(!error.isRetriable)
            #expect(error.description.contains(topic))
        }
        // librdkafka 2.0.2 then refuses to enqueue to the topic until a metadata refresh:
        // that record's send fails with the enqueue error itself.
        do {
            _ = try await producer.send([KafkaProducerRecord(topic: topic, key: nil, value: [2])])
        } catch let error as KafkaError {
            #expect(error.code == .topicAuthorizationFailed, "\(error)")
            #expect(error.description.contains(topic))
        }
        await producer.shutdown()
        await cluster.close()
    }

    @Test("a permanent Produce error inside a transaction makes commit fail with requiresAbort; after abort the producer goes on")
    func abortableTransactionError() async throws {
        let topic = "faults-txn"
        let cluster = try Self.makeCluster(topic: topic, partitions: 1)
        let producer = try Self.makeProducer(cluster, ["transactional.id": "fanout-mock-txn"])
        try await producer.initTransactions()
        try await producer.beginTransaction()
        try cluster.pushRequestErrors(apiKey: .produce, errors: [.topicAuthorizationFailed])
        do {
            _ = try await producer.send([KafkaProducerRecord(topic: topic, key: nil, value: [1])])
        } catch {
            // The record's own failure; the transaction is now in an abortable state.
        }
        var commitError: KafkaError?
        do {
            try await producer.commitTransaction(timeout: .seconds(10))
        } catch let error as KafkaError {
            commitError = error
        }
        let error = try #require(commitError, "commit succeeded after a failed record")
        #expect(error.requiresAbort, "\(error)")
        #expect(!error.isFatal, "\(error)")
        try await producer.abortTransaction()

        // librdkafka 2.0.2 keeps the topic itself marked with the authorization error (later
        // enqueues to it fail) until a metadata refresh, so the next transaction writes elsewhere.
        try cluster.createTopic(name: "faults-txn-next")
        try await producer.beginTransaction()
        let acks = try await producer.send([KafkaProducerRecord(topic: "faults-txn-next", key: nil, value: [2])])
        try await producer.commitTransaction()
        #expect(acks.count == 1)
        await producer.shutdown()
        await cluster.close()
    }

    @Test("coordinator errors on FindCoordinator and EndTxn are retried: the transaction commits, nothing lost or reordered")
    func coordinatorErrors() async throws {
        let topic = "faults-coordinator"
        let cluster = try Self.makeCluster(topic: topic, partitions: 2)
        // COORDINATOR_LOAD_IN_PROGRESS (14), COORDINATOR_NOT_AVAILABLE (15), NOT_COORDINATOR (16): all retriable.
        let loading = KafkaError.Code(rawValue: 14)
        let unavailable = KafkaError.Code(rawValue: 15)
        let notCoordinator = KafkaError.Code(rawValue: 16)
        try cluster.pushRequestErrors(apiKey: .findCoordinator, errors: [unavailable, loading])
        let producer = try Self.makeProducer(cluster, ["transactional.id": "fanout-mock-coordinator"])
        try await producer.initTransactions(timeout: .seconds(30))
        try await producer.beginTransaction()
        let records = Self.records(topic: topic, count: 300)
        _ = try await producer.send(records)
        try cluster.pushRequestErrors(apiKey: .endTxn, errors: [notCoordinator, unavailable])
        try await producer.commitTransaction(timeout: .seconds(30))
        try await Self.expectNoLossNoReorder(records, topic: topic, cluster: cluster)
        await producer.shutdown()
        await cluster.close()
    }

    @Test("a closed mock cluster refuses calls")
    func closedCluster() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: KafkaTest.logger)
        #expect(cluster.bootstrapServers.contains("127.0.0.1") || cluster.bootstrapServers.contains("localhost"))
        await cluster.close()
        await cluster.close()
        #expect(throws: KafkaError.self) { try cluster.createTopic(name: "t") }
    }
}
