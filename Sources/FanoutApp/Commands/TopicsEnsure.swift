import Contracts
import Kafka
import Logging
import Router
import Settings

/// `fanout topics ensure`: creates the topics a routes file (and Fanout itself) needs, and reports
/// every existing one that differs from what the file asks for.
public enum TopicsEnsure {
    public struct Report: Sendable {
        /// One line per topic: `created`, `missing` (dry run), `ok`, `fixed` or `drift`.
        public var lines: [String]
        /// Topics that still differ from the file after this run.
        public var driftCount: Int
    }

    /// The topics to check: every topic of the routes file, then the checkpoint topic (compacted, one partition).
    public static func specifications(routes: RoutesFile, checkpointTopic: String?) -> [KafkaTopicSpecification] {
        var specifications = routes.allTopics.map { topic in
            KafkaTopicSpecification(
                name: topic.name, partitions: topic.settings.partitions,
                replicationFactor: topic.settings.replicationFactor, configs: topic.settings.configs
            )
        }
        if let checkpointTopic {
            specifications.append(
                KafkaTopicSpecification(name: checkpointTopic, partitions: 1, replicationFactor: 1, configs: ["cleanup.policy": "compact"])
            )
        }
        return specifications
    }

    /// `fanout topics ensure`: the topics of the routes file the settings name (`routes`, default routes.json) and
    /// the application's checkpoint topic, checked and created through one admin client.
    public static func run(settings: ResolvedSettings, fix: Bool, allowRepartition: Bool = false, dryRun: Bool, logger: Logger) async throws -> Report {
        let path = settings.string(.routes) ?? "routes.json"
        let file: RoutesFile
        do {
            file = try RoutesFile.load(path: path)
        } catch {
            // A typed throw: every error here is a RoutesFileError.
            throw SettingsError(error.issues.map(\.description).joined(separator: "\n"))
        }
        let admin = try KafkaAdmin(configuration: try settings.kafkaConfiguration(), logger: logger)
        defer { admin.close() }
        return try await run(specifications(routes: file, checkpointTopic: try settings.checkpointTopic()), admin: admin, fix: fix, allowRepartition: allowRepartition, dryRun: dryRun)
    }

    /// - Parameters:
    ///   - fix: add missing partitions to topics that have fewer than the file asks for; refused (before anything
    ///     is changed) unless `allowRepartition`, since new partitions move keys.
    ///   - dryRun: create and change nothing; report what would be done.
    public static func run(
        _ specifications: [KafkaTopicSpecification], admin: KafkaAdmin, fix: Bool, allowRepartition: Bool = false, dryRun: Bool
    ) async throws -> Report {
        let existing = try await admin.listTopics()
        if fix, !dryRun, !allowRepartition,
           let grown = specifications.first(where: { specification in existing[specification.name].map { $0 < specification.partitions } ?? false }) {
            throw SettingsError(
                "--fix would add partitions to \(grown.name) (\(existing[grown.name]!) -> \(grown.partitions)): Kafka places a key by the partition count, so an aggregate's new events would go to another partition than its earlier ones and per-aggregate order breaks for what is already in the topic; add --allow-repartition to do it anyway")
        }
        var lines: [String] = []
        var drift = 0
        var toCreate: [KafkaTopicSpecification] = []
        for specification in specifications {
            let name = specification.name
            guard let partitions = existing[name] else {
                toCreate.append(specification)
                let configs = specification.configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                lines.append("\(dryRun ? "missing" : "created") \(name): \(specification.partitions) partition\(specification.partitions == 1 ? "" : "s"), replication \(specification.replicationFactor)\(configs.isEmpty ? "" : ", \(configs)")")
                continue
            }
            var differences: [String] = []
            var fixed: [String] = []
            if partitions < specification.partitions {
                if fix && !dryRun {
                    try await admin.createPartitions([name: specification.partitions])
                    fixed.append("partitions \(partitions) -> \(specification.partitions)")
                } else {
                    differences.append("\(partitions) partitions, the file asks for \(specification.partitions) (--fix --allow-repartition adds them)")
                }
            } else if partitions > specification.partitions {
                differences.append("\(partitions) partitions, the file asks for \(specification.partitions) (Kafka cannot remove partitions)")
            }
            if !specification.configs.isEmpty {
                let actual = try await admin.describeTopicConfigs(name)
                for (key, wanted) in specification.configs.sorted(by: { $0.key < $1.key }) where actual[key] != wanted {
                    differences.append("\(key) is \(actual[key] ?? "unset"), the file asks for \(wanted)")
                }
            }
            if !differences.isEmpty { drift += 1 }
            if !fixed.isEmpty {
                lines.append("fixed \(name): \(fixed.joined(separator: "; "))" + (differences.isEmpty ? "" : "; still differs: \(differences.joined(separator: "; "))"))
            } else if !differences.isEmpty {
                lines.append("drift \(name): \(differences.joined(separator: "; "))")
            } else {
                lines.append("ok \(name)")
            }
        }
        if !dryRun, !toCreate.isEmpty {
            try await admin.createTopics(toCreate)
        }
        return Report(lines: lines, driftCount: drift)
    }
}
