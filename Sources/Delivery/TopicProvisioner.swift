import Contracts
import Kafka
import Logging
import Router

/// Creates the topics a routes file names, with their partitions and configs. Existing topics are left as they are,
/// and when every topic exists no CreateTopics request is made (so a principal without that permission, or a
/// cluster without a controller such as librdkafka's mock cluster, works with topics provisioned beforehand).
public enum TopicProvisioner {
    /// - Returns: the drift found, a line per existing topic whose partition count differs from the file's.
    @discardableResult
    public static func ensureTopics(of routes: RoutesFile, admin: KafkaAdmin, logger: Logger) async throws -> [String] {
        let existing = try await admin.listTopics()
        let specifications = routes.allTopics.filter { existing[$0.name] == nil }.map { topic in
            KafkaTopicSpecification(
                name: topic.name,
                partitions: topic.settings.partitions,
                replicationFactor: topic.settings.replicationFactor,
                configs: topic.settings.configs
            )
        }
        try await admin.createTopics(specifications)
        // An existing topic is never changed here: a partition count other than the file's is said, as a warning
        // (records of one aggregate key stay on one partition only while the count stays the same).
        var drift: [String] = []
        for topic in routes.allTopics {
            guard let partitions = existing[topic.name], partitions != topic.settings.partitions else { continue }
            drift.append("\(topic.name) has \(partitions) partitions, the routes file asks for \(topic.settings.partitions)")
            logger.warning(
                "topic drift: \(topic.name) has \(partitions) partitions, the routes file asks for \(topic.settings.partitions); Fanout publishes to the topic as it is (`fanout topics ensure` reports every difference)",
                metadata: [LogKey.topic: "\(topic.name)"]
            )
        }
        logger.info("topics ready", metadata: [
            LogKey.topics: "\(routes.allTopics.map(\.name).joined(separator: ","))",
            LogKey.topicsCreated: "\(specifications.map(\.name).joined(separator: ","))",
        ])
        return drift
    }
}
