import CRdKafka
import Contracts
import Foundation
import Logging

/// The committed offsets of a consumer group, changed from outside the group (what
/// `kafka-consumer-groups --reset-offsets` does).
public enum KafkaGroupOffsets {
    /// Where a reset moves a group.
    public enum Position: Sendable, Hashable, CustomStringConvertible {
        /// The first offset still in each partition.
        case earliest
        /// The end of each partition: the group skips everything there now.
        case latest
        /// The same offset in every partition (clamped to the partition's range).
        case offset(Int64)
        /// The first record whose timestamp is at or after this time (the end when there is none).
        case timestamp(Date)

        public var description: String {
            switch self {
            case .earliest: "earliest"
            case .latest: "latest"
            case .offset(let offset): "offset \(offset)"
            case .timestamp(let date): "timestamp \(date.formatted(.iso8601))"
            }
        }
    }

    /// One partition of a planned reset: the group's committed offset now (nil when it has none) and the one
    /// the reset commits.
    public struct Move: Sendable, Hashable {
        public var partition: Int32
        public var current: Int64?
        public var target: Int64

        public init(partition: Int32, current: Int64?, target: Int64) {
            self.partition = partition
            self.current = current
            self.target = target
        }
    }

    /// What a reset would do, looked up without changing anything (`kafka-consumer-groups --reset-offsets`
    /// without `--execute`).
    public struct Plan: Sendable, Hashable {
        /// Whether the broker knows the group: it lists it, or the group has a committed offset in the topic.
        public var groupExists: Bool
        /// By partition.
        public var moves: [Move]
    }

    /// Commits, for consumer group `group`, the offset `position` names in every partition of
    /// `topic`, without joining the group. Other groups are untouched. The group must have no
    /// running member: the broker refuses a commit from outside an active group, and this
    /// throws a ``KafkaError`` that says so.
    ///
    /// - Returns: the committed offset (the next one the group reads) of each partition, by partition.
    /// - Throws: ``KafkaError``; `unknownTopicOrPartition` when the topic does not exist.
    @discardableResult
    public static func reset(
        group: String,
        topic: String,
        to position: Position,
        configuration: KafkaConfiguration,
        timeout: Duration = .seconds(10),
        logger: Logger
    ) async throws -> [KafkaAcknowledgement] {
        let plan = try await plan(group: group, topic: topic, to: position, configuration: configuration, timeout: timeout, logger: logger)
        return try await commit(group: group, topic: topic, moves: plan.moves, configuration: configuration, timeout: timeout, logger: logger)
    }

    /// The offsets a reset of `group` in `topic` to `position` would commit, beside the group's committed offsets
    /// now; changes nothing.
    ///
    /// - Throws: ``KafkaError``: `state` when the group has running members, `unknownTopicOrPartition` when the
    ///   topic does not exist.
    public static func plan(
        group: String,
        topic: String,
        to position: Position,
        configuration: KafkaConfiguration,
        timeout: Duration = .seconds(10),
        logger: Logger
    ) async throws -> Plan {
        try await withConsumerHandle(group: group, configuration: configuration) { rk in
            let ms = milliseconds(timeout)
            // Refuse a running group (Kafka would refuse the commit too, less clearly).
            var listed = false
            var groups: UnsafePointer<rd_kafka_group_list>?
            if rd_kafka_list_groups(rk, group, &groups, ms) == RD_KAFKA_RESP_ERR_NO_ERROR, let groups {
                defer { rd_kafka_group_list_destroy(groups) }
                for index in 0..<Int(groups.pointee.group_cnt) {
                    let info = groups.pointee.groups[index]
                    let state = info.state.map { String(cString: $0) } ?? "?"
                    if state != "Dead" { listed = true }
                    if info.member_cnt > 0 {
                        throw KafkaError(
                            code: .state,
                            message: "consumer group '\(group)' has \(info.member_cnt) running member(s) (state \(state)); stop them before moving its offsets"
                        )
                    }
                }
            }
            guard let partitions = try RDKafkaTopicReader.partitionIDs(of: topic, rk: rk, timeoutMs: ms) else {
                throw KafkaError(code: .unknownTopicOrPartition, message: "topic '\(topic)' does not exist")
            }
            let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for partition in partitions { rd_kafka_topic_partition_list_add(list, topic, partition) }
            let elements = UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
            var current: [Int32: Int64] = [:]
            let committed = rd_kafka_committed(rk, list, ms)
            guard committed == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(committed, context: "could not read the committed offsets of group '\(group)' for topic '\(topic)'")
            }
            for element in elements where element.err == RD_KAFKA_RESP_ERR_NO_ERROR && element.offset >= 0 {
                current[element.partition] = element.offset
            }
            var ranges: [Int32: (low: Int64, high: Int64)] = [:]
            for index in elements.indices {
                let partition = elements[index].partition
                var low: Int64 = 0
                var high: Int64 = 0
                let err = rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, ms)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(err, context: "could not read the watermarks of topic '\(topic)' partition \(partition)")
                }
                ranges[partition] = (low, high)
                elements[index].err = RD_KAFKA_RESP_ERR_NO_ERROR
                switch position {
                case .earliest: elements[index].offset = low
                case .latest: elements[index].offset = high
                case .offset(let offset): elements[index].offset = min(max(offset, low), high)
                case .timestamp(let date): elements[index].offset = Int64((date.timeIntervalSince1970 * 1_000).rounded(.down))
                }
            }
            if case .timestamp = position {
                let err = rd_kafka_offsets_for_times(rk, list, ms)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(err, context: "could not look up the offsets of topic '\(topic)' for \(position)")
                }
                for index in elements.indices {
                    guard elements[index].err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                        throw KafkaError(elements[index].err, context: "could not look up the offset of topic '\(topic)' partition \(elements[index].partition) for \(position)")
                    }
                    // No record at or after the time: the end.
                    if elements[index].offset < 0 { elements[index].offset = ranges[elements[index].partition]!.high }
                }
            }
            let moves = elements.map { Move(partition: $0.partition, current: current[$0.partition], target: $0.offset) }.sorted { $0.partition < $1.partition }
            return Plan(groupExists: listed || !current.isEmpty, moves: moves)
        }
    }

    /// Commits each move's target offset for `group` in `topic`, without joining the group.
    @discardableResult
    public static func commit(
        group: String,
        topic: String,
        moves: [Move],
        configuration: KafkaConfiguration,
        timeout: Duration = .seconds(10),
        logger: Logger
    ) async throws -> [KafkaAcknowledgement] {
        try await withConsumerHandle(group: group, configuration: configuration) { rk in
            let list = rd_kafka_topic_partition_list_new(Int32(moves.count))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            for move in moves { rd_kafka_topic_partition_list_add(list, topic, move.partition)!.pointee.offset = move.target }
            let elements = UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
            let err = rd_kafka_commit(rk, list, 0)
            let context = "could not commit the offsets of group '\(group)' for topic '\(topic)' (is a member of the group still running? stop it first)"
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, context: context) }
            for element in elements where element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(element.err, context: "\(context), partition \(element.partition)")
            }
            let result = elements.map { KafkaAcknowledgement(topic: topic, partition: $0.partition, offset: $0.offset) }
            logger.info("consumer group offsets reset", metadata: [
                LogKey.group: "\(group)", LogKey.topic: "\(topic)", LogKey.offsets: "\(result.map { "\($0.partition):\($0.offset)" })",
            ])
            return result
        }
    }

    /// Runs `body` off the pool with a consumer handle of `group` that joins nothing and commits only when told.
    private static func withConsumerHandle<T: Sendable>(
        group: String, configuration: KafkaConfiguration, _ body: @escaping @Sendable (OpaquePointer) throws -> T
    ) async throws -> T {
        var properties = configuration.properties
        properties["group.id"] = group
        properties["enable.auto.commit"] = "false"
        properties["log.queue"] = "true"
        return try await runOffPool("fanout.kafka.reset-offsets") { [properties] in
            let conf = try RDKafkaConfig.make(properties)
            let rk = try RDKafkaConfig.makeHandle(type: RD_KAFKA_CONSUMER, conf: conf)
            defer { rd_kafka_destroy(rk) }
            return try body(rk)
        }
    }
}
