import Contracts
import Delivery
import Foundation
import Kafka
import Logging
import TestSupport
import Testing

/// A transaction left open while its broker (a noida-db of the test's own) is killed and started again.
///
/// noida-db 0.2.3 loses an open transaction's state in a restart: the producer's commit then succeeds, yet the
/// records it sent before the restart never become visible to read_committed readers (measured: 8 of 24 records
/// hidden for good). ``TransactionLock`` aborts a transaction during which the producer lost a broker connection,
/// so the caller sends it again and every record is read back once.
@Suite(.serialized, .timeLimit(.minutes(3))) struct TransactionAcrossBrokerRestartTests {
    static let logger = Logger(label: "transaction-restart-test")

    @Test func aTransactionOpenAcrossABrokerRestartIsAbortedAndSentAgainNotCommitted() async throws {
        let broker = try BrokerRestartTests.OwnBroker(name: TestServices.uniqueName("txn-restart"))
        try await broker.start()
        defer { broker.process?.kill() }
        let topic = TestServices.uniqueName("txn-restart")
        var configuration = KafkaConfiguration(bootstrapServers: broker.brokers)
        configuration["transactional.id"] = "txn-restart-\(topic)"
        let producer = try KafkaProducer(configuration: configuration, logger: Self.logger)
        try await producer.initTransactions()
        let lock = TransactionLock()
        func records(_ range: Range<Int>) -> [KafkaProducerRecord] {
            range.map { KafkaProducerRecord(topic: topic, key: Array("k\($0 % 4)".utf8), value: Array("v\($0)".utf8)) }
        }

        try await lock.withTransaction(producer: producer) { _ = try await producer.send(records(0..<8)) }
        // Acknowledged inside the open transaction, persisted by the broker (it saves about once a second), then the
        // broker dies and comes back.
        var restarted = false
        var thrown: (any Error)?
        do {
            try await lock.withTransaction(producer: producer) {
                _ = try await producer.send(records(8..<16))
                try await Task.sleep(for: .seconds(3))
                await broker.kill()
                try await Task.sleep(for: .seconds(2))
                try await broker.start()
                restarted = true
            }
        } catch {
            // As the pipeline does with a failed page: the same records again, in a new transaction.
            thrown = error
            try await lock.withTransaction(producer: producer) { _ = try await producer.send(records(8..<16)) }
        }
        #expect(restarted)
        #expect((thrown as? KafkaError)?.isRetriable == true, "thrown: \(String(describing: thrown))")
        try await lock.withTransaction(producer: producer) { _ = try await producer.send(records(16..<24)) }
        await producer.shutdown()

        var reading = KafkaConfiguration(bootstrapServers: broker.brokers)
        reading["isolation.level"] = "read_committed"
        let values = try await KafkaTopicReader.readToEnd(topic: topic, configuration: reading, timeout: .seconds(20), logger: Self.logger)
            .map { String(decoding: $0.value, as: UTF8.self) }
        #expect(values.sorted() == (0..<24).map { "v\($0)" }.sorted(), "read_committed: \(values.sorted())")
    }
}
