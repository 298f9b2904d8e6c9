import Contracts
import Kafka
import Logging
import TestSupport

enum KafkaTest {
    static let logger: Logger = {
        var logger = Logger(label: "fanout.kafka.tests")
        logger.logLevel = .info
        return logger
    }()

    static func configuration(_ properties: [String: String] = [:]) throws -> KafkaConfiguration {
        KafkaConfiguration(bootstrapServers: try TestServices.kafkaBrokers(), properties: properties)
    }
}

extension KafkaTest {
    /// Reads `count` messages, or fewer when `timeout` passes first (the consumer is then closed).
    static func consume(
        _ consumer: KafkaConsumer,
        count: Int,
        timeout: Duration = .seconds(30)
    ) async throws -> [KafkaConsumerMessage] {
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            await consumer.close()
        }
        defer { watchdog.cancel() }
        var messages: [KafkaConsumerMessage] = []
        guard count > 0 else { return messages }
        for try await message in consumer.messages {
            messages.append(message)
            if messages.count == count { break }
        }
        return messages
    }

    static func createTopic(_ name: String, partitions: Int32, configs: [String: String] = [:]) async throws {
        let admin = try KafkaAdmin(configuration: try configuration(), logger: logger)
        defer { admin.close() }
        try await admin.createTopics([KafkaTopicSpecification(name: name, partitions: partitions, configs: configs)])
    }
}

/// The JVM client's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), written from the algorithm.
enum JavaMurmur2 {
    static func hash(_ data: [UInt8]) -> Int32 {
        let length = data.count
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        var h: UInt32 = 0x9747_b28c ^ UInt32(length)
        for i in 0..<(length / 4) {
            let i4 = i * 4
            var k = UInt32(data[i4]) | UInt32(data[i4 + 1]) << 8 | UInt32(data[i4 + 2]) << 16 | UInt32(data[i4 + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = length & ~3
        switch length % 4 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h = h &* m
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h = h &* m
        case 1:
            h ^= UInt32(data[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// `toPositive(murmur2(key)) % numPartitions`, the JVM default partitioner for keyed records.
    static func partition(for key: [UInt8], partitions: Int32) -> Int32 {
        (hash(key) & 0x7fff_ffff) % partitions
    }
}
