import AWS
import CQRSCore
import Kafka
import Logging
import StreamReader
import Synchronization

/// Running totals of what the router did, for the status model and metrics.
public struct RouterCounts: Sendable, Hashable {
    public var recordsRead = 0
    /// Kafka records acknowledged, by topic.
    public var routedByTopic: [String: Int] = [:]
    public var unroutedByEventName: [String: Int] = [:]
    public var deadLettered = 0
    public var ignored = 0
}

/// Routes pages of stream records to Kafka: plans each record's fan-out, produces
/// the page's records in order, and returns only when Kafka acknowledged all of them.
public final class FanOutPipeline: Sendable {
    private let planner: FanOutPlanner
    private let producer: KafkaProducer
    private let logger: Logger
    private let counts = Mutex(RouterCounts())

    public init(routes: CompiledRoutes, producer: KafkaProducer, logger: Logger) {
        self.planner = FanOutPlanner(routes: routes)
        self.producer = producer
        self.logger = logger
    }

    public var routes: CompiledRoutes { planner.routes }

    public var currentCounts: RouterCounts { counts.withLock { $0 } }

    /// Routes one page; throws if any record could not be delivered (the caller retries the page).
    public func process(_ page: ShardRecords) async throws {
        var records: [KafkaProducerRecord] = []
        records.reserveCapacity(page.records.count * 2)
        var outcomes: [RecordOutcome] = []
        outcomes.reserveCapacity(page.records.count)
        for record in page.records {
            let outcome = planner.plan(record, streamARN: page.streamARN, shardID: page.shardID, into: &records)
            if case .deadLettered(let reason) = outcome {
                logger.warning("record sent to the dead-letter topic", metadata: [
                    "fanout.shard": "\(page.shardID)", "fanout.sequence": "\(record.sequenceNumber)", "error": "\(reason)",
                ])
            }
            outcomes.append(outcome)
        }
        if !records.isEmpty {
            _ = try await producer.send(records)
        }
        counts.withLock { counts in
            counts.recordsRead += page.records.count
            for record in records { counts.routedByTopic[record.topic, default: 0] += 1 }
            for outcome in outcomes {
                switch outcome {
                case .routed: break
                case .unrouted(let name): counts.unroutedByEventName[name, default: 0] += 1
                case .deadLettered: counts.deadLettered += 1
                case .ignored: counts.ignored += 1
                }
            }
        }
    }
}

/// Creates the topics a routes file names, with their partitions and configs. Existing topics are left as they are.
public enum TopicProvisioner {
    public static func ensureTopics(of routes: RoutesFile, admin: KafkaAdmin, logger: Logger) async throws {
        let specifications = routes.allTopics.map { topic in
            KafkaTopicSpecification(
                name: topic.name,
                partitions: topic.settings.partitions,
                replicationFactor: topic.settings.replicationFactor,
                configs: topic.settings.configs
            )
        }
        try await admin.createTopics(specifications)
        logger.info("topics ready", metadata: ["kafka.topics": "\(specifications.map(\.name).joined(separator: ","))"])
    }
}
