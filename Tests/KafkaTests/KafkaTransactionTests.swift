import Contracts
import Kafka
import Testing
import TestSupport

@Suite("KafkaProducer transactions")
struct KafkaTransactionTests {
    static func transactionalProducer(id: String) throws -> KafkaProducer {
        try KafkaProducer(
            configuration: try KafkaTest.configuration(["transactional.id": id, "transaction.timeout.ms": "10000"]),
            logger: KafkaTest.logger
        )
    }

    static func values(_ messages: [KafkaConsumerMessage]) -> [String] {
        messages.map { String(decoding: $0.value, as: UTF8.self) }
    }

    @Test("committed records are visible to read_committed; aborted ones are not")
    func commitAndAbort() async throws {
        let topic = TestServices.uniqueName("fanout-txn")
        try await KafkaTest.createTopic(topic, partitions: 1)
        let producer = try Self.transactionalProducer(id: TestServices.uniqueName("fanout-txn-id"))
        try await producer.initTransactions()

        func write(_ values: [String]) async throws {
            _ = try await producer.send(values.map { KafkaProducerRecord(topic: topic, key: nil, value: Array($0.utf8)) })
        }
        try await producer.beginTransaction()
        try await write(["a1", "a2"])
        try await producer.commitTransaction()

        try await producer.beginTransaction()
        try await write(["b1", "b2", "b3"])
        try await producer.abortTransaction()

        try await producer.beginTransaction()
        try await write(["c1"])
        try await producer.commitTransaction()
        await producer.shutdown()

        let committed = try await KafkaTopicReader.readToEnd(
            topic: topic,
            configuration: try KafkaTest.configuration(["isolation.level": "read_committed"]),
            logger: KafkaTest.logger
        )
        #expect(Self.values(committed) == ["a1", "a2", "c1"])

        // The aborted records were written: a read_uncommitted reader sees them.
        let uncommitted = try await KafkaTopicReader.readToEnd(
            topic: topic,
            configuration: try KafkaTest.configuration(["isolation.level": "read_uncommitted"]),
            logger: KafkaTest.logger
        )
        #expect(Self.values(uncommitted) == ["a1", "a2", "b1", "b2", "b3", "c1"])
    }

    @Test("a second producer with the same transactional.id fences the first")
    func fencing() async throws {
        let topic = TestServices.uniqueName("fanout-fence")
        try await KafkaTest.createTopic(topic, partitions: 1)
        let id = TestServices.uniqueName("fanout-fence-id")
        let first = try Self.transactionalProducer(id: id)
        try await first.initTransactions()
        try await first.beginTransaction()
        _ = try await first.send([KafkaProducerRecord(topic: topic, key: nil, value: Array("first-1".utf8))])
        try await first.commitTransaction()

        let second = try Self.transactionalProducer(id: id)
        try await second.initTransactions()

        var fenceError: KafkaError?
        do {
            try await first.beginTransaction()
            _ = try await first.send([KafkaProducerRecord(topic: topic, key: nil, value: Array("first-2".utf8))])
            try await first.commitTransaction(timeout: .seconds(10))
        } catch let error as KafkaError {
            fenceError = error
        }
        let error = try #require(fenceError, "the fenced producer's commit succeeded")
        #expect(error.isFatal, "\(error)")
        #expect(error.isFenced, "\(error)")
        // A fenced producer is never replaced (a replacement would fence the newer owner in turn): it stays unusable.
        // The fatal error's event may still be on its way to the producer; give it the time a replacement would take.
        try await Task.sleep(for: .milliseconds(1_500))
        #expect(first.health.rebuilds == 0)
        #expect(!first.health.canProduce, "a fenced producer reports that it can produce")
        await first.shutdown()

        try await second.beginTransaction()
        _ = try await second.send([KafkaProducerRecord(topic: topic, key: nil, value: Array("second-1".utf8))])
        try await second.commitTransaction()
        await second.shutdown()

        let committed = try await KafkaTopicReader.readToEnd(
            topic: topic,
            configuration: try KafkaTest.configuration(["isolation.level": "read_committed"]),
            logger: KafkaTest.logger
        )
        #expect(Self.values(committed) == ["first-1", "second-1"])
    }

    @Test("transaction calls on a producer without transactional.id fail with a state error")
    func notTransactional() async throws {
        let producer = try KafkaProducer(configuration: try KafkaTest.configuration(), logger: KafkaTest.logger)
        await #expect(throws: KafkaError.self) { try await producer.beginTransaction() }
        await #expect(throws: KafkaError.self) { try await producer.initTransactions(timeout: .seconds(1)) }
        await producer.shutdown()
    }
}

@Suite("KafkaProducer statistics")
struct KafkaStatisticsTests {
    @Test("with statistics.interval.ms=100 statistics reports arrive, with the records sent and the brokers")
    func statisticsArrive() async throws {
        let topic = TestServices.uniqueName("fanout-stats")
        try await KafkaTest.createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(
            configuration: try KafkaTest.configuration(["statistics.interval.ms": "100"]),
            logger: KafkaTest.logger
        )
        _ = try await producer.send((0..<10).map { KafkaProducerRecord(topic: topic, key: nil, value: [UInt8($0)]) })
        var report: KafkaStatistics?
        let watchdog = Task {
            try await Task.sleep(for: .seconds(10))
            await producer.shutdown()
        }
        // A report taken between the last send and its delivery report still counts them queued: wait for one after.
        for await statistics in producer.statistics where statistics.sentMessages >= 10 && statistics.queuedMessages == 0 {
            report = statistics
            break
        }
        watchdog.cancel()
        await producer.shutdown()
        let statistics = try #require(report, "no statistics report counted the 10 records sent and none queued within 10 s")
        #expect(statistics.queuedMessages == 0)
        #expect(!statistics.clientName.isEmpty)
        #expect(statistics.brokers.values.contains { $0.state == "UP" && $0.nodeID >= 0 })
    }

    @Test("statistics JSON parses into the top-level numbers")
    func parse() throws {
        let json = """
            {"name":"rdkafka#producer-1","ts":12345,"replyq":2,"msg_cnt":3,"msg_size":40,"tx":7,"txmsgs":11,
             "txmsg_bytes":99,"rxmsgs":0,"brokers":{"b:1/1":{"name":"b:1/1","nodeid":1,"state":"UP",
             "outbuf_cnt":1,"waitresp_cnt":2,"rtt":{"avg":1500,"min":10}}}}
            """
        let statistics = try #require(KafkaStatistics(json: json))
        #expect(statistics.queuedMessages == 3)
        #expect(statistics.queuedBytes == 40)
        #expect(statistics.sentMessages == 11)
        #expect(statistics.sentRequests == 7)
        #expect(statistics.brokers["b:1/1"]?.averageRoundTripMicroseconds == 1500)
        #expect(statistics.brokers["b:1/1"]?.requestsInFlight == 2)
        #expect(KafkaStatistics(json: "[1]") == nil)
    }
}
