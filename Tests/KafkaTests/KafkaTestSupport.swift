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
