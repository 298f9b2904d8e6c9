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
        var properties = configuration.properties
        properties["group.id"] = group
        properties["enable.auto.commit"] = "false"
        properties["log.queue"] = "true"
        return try await runOffPool("fanout.kafka.reset-offsets") { [properties] in
            let conf = try RDKafkaConfig.make(properties)
            let rk = try RDKafkaConfig.makeHandle(type: RD_KAFKA_CONSUMER, conf: conf)
            defer { rd_kafka_destroy(rk) }
            let ms = milliseconds(timeout)
            // Refuse a running group (Kafka would refuse the commit too, less clearly).
            var groups: UnsafePointer<rd_kafka_group_list>?
            if rd_kafka_list_groups(rk, group, &groups, ms) == RD_KAFKA_RESP_ERR_NO_ERROR, let groups {
                defer { rd_kafka_group_list_destroy(groups) }
                for index in 0..<Int(groups.pointee.group_cnt) where groups.pointee.groups[index].member_cnt > 0 {
                    let info = groups.pointee.groups[index]
                    throw KafkaError(
                        code: .state,
                        message: "consumer group '\(group)' has \(info.member_cnt) running member(s) (state \(info.state.map { String(cString: $0) } ?? "?")); stop them before moving its offsets"
                    )
                }
            }
            guard let partitions = try RDKafkaTopicReader.partitionIDs(of: topic, rk: rk, timeoutMs: ms) else {
                throw KafkaError(code: .unknownTopicOrPartition, message: "topic '\(topic)' does not exist")
            }
            let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            var ranges: [Int32: (low: Int64, high: Int64)] = [:]
            for partition in partitions {
                var low: Int64 = 0
                var high: Int64 = 0
                let err = rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, ms)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(err, context: "could not read the watermarks of topic '\(topic)' partition \(partition)")
                }
                ranges[partition] = (low, high)
                let element = rd_kafka_topic_partition_list_add(list, topic, partition)!
                switch position {
                case .earliest: element.pointee.offset = low
                case .latest: element.pointee.offset = high
                case .offset(let offset): element.pointee.offset = min(max(offset, low), high)
                case .timestamp(let date): element.pointee.offset = Int64((date.timeIntervalSince1970 * 1_000).rounded(.down))
                }
            }
            let elements = UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
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
}
