import CRdKafka
import Contracts
import Foundation
import Logging

/// Reads a whole topic, from the beginning of every partition to the end it had when
/// the read started, without a consumer group: no subscription, no commits.
///
/// Made for compacted topics read once at start-up (checkpoints).
public enum KafkaTopicReader {
    /// Every record of `topic`, in order within each partition (partitions in ascending
    /// order), up to the high watermark each partition had when the read started;
    /// records appended later are not returned.
    ///
    /// The read runs on a thread of its own: it queries each partition's watermarks
    /// (`rd_kafka_query_watermark_offsets`), assigns the partitions at their low
    /// watermark (`rd_kafka_assign`) and polls until each partition has reached its
    /// high watermark. Under `isolation.level=read_committed` the high watermarks are asked for by a
    /// second, read_uncommitted handle (a read_committed ListOffsets answers the last stable offset, which a
    /// transaction still open holds back), and an end-of-partition short of the high watermark waits for
    /// such a transaction to settle: records committed after another producer's open transaction are not
    /// missed, at the cost of waiting for it. `group.id` is replaced by an unused
    /// one (never joined, nothing committed); any other
    /// property of `configuration` applies (e.g. `isolation.level=read_committed`).
    ///
    /// `startOffsets` (by partition) starts a partition later than its beginning, e.g. after
    /// the records an earlier read returned.
    ///
    /// - Returns: `[]` for a topic that does not exist or holds no record.
    /// - Throws: ``KafkaError`` with code `timedOut` when the end is not reached within `timeout`.
    public static func readToEnd(
        topic: String,
        from startOffsets: [Int32: Int64] = [:],
        configuration: KafkaConfiguration,
        timeout: Duration = .seconds(30),
        logger: Logger
    ) async throws -> [KafkaConsumerMessage] {
        var properties = configuration.properties
        // librdkafka 2.0.2's rd_kafka_assign fails with _UNKNOWN_GROUP without a group.id;
        // this one is never joined (no subscribe) and nothing is committed to it.
        properties["group.id"] = "fanout-topic-reader-\(UUID().uuidString)"
        properties["enable.auto.commit"] = "false"
        properties["enable.auto.offset.store"] = "false"
        properties["enable.partition.eof"] = "true"
        properties["allow.auto.create.topics"] = "false"
        properties["log.queue"] = "true"
        // Under read_committed a ListOffsets answers the last stable offset, which an open transaction holds back:
        // records committed after that transaction's first record would be missed. The end is the high
        // watermark, asked for by a read_uncommitted handle.
        let readCommitted = properties["isolation.level"] == "read_committed"
        var watermarkProperties = properties
        watermarkProperties["isolation.level"] = "read_uncommitted"
        return try await runOffPool("fanout.kafka.reader") { [properties, watermarkProperties] in
            let conf = try RDKafkaConfig.make(properties)
            let watermarkConf: OpaquePointer?
            do {
                watermarkConf = readCommitted ? try RDKafkaConfig.make(watermarkProperties) : nil
            } catch {
                rd_kafka_conf_destroy(conf)
                throw error
            }
            return try RDKafkaTopicReader.read(
                topic: topic, from: startOffsets, conf: conf, watermarkConf: watermarkConf, timeout: timeout, logger: logger
            )
        }
    }
}

/// The blocking read behind ``KafkaTopicReader``; everything runs on the calling thread.
enum RDKafkaTopicReader {
    /// - Parameter watermarkConf: when set (read_committed), the configuration of a read_uncommitted handle that
    ///   asks for the partitions' high watermarks; consumed like `conf`.
    static func read(
        topic: String, from startOffsets: [Int32: Int64], conf: OpaquePointer, watermarkConf: OpaquePointer? = nil, timeout: Duration,
        logger: Logger
    ) throws -> [KafkaConsumerMessage] {
        let deadline = ContinuousClock.now + timeout
        func remaining() -> Int32 { max(1, milliseconds(deadline - ContinuousClock.now)) }

        rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_LOG)
        let rk: OpaquePointer
        do {
            rk = try RDKafkaConfig.makeHandle(type: RD_KAFKA_CONSUMER, conf: conf)
        } catch {
            if let watermarkConf { rd_kafka_conf_destroy(watermarkConf) }
            throw error
        }
        let watermarks = try watermarkConf.map { watermarkConf in
            rd_kafka_conf_set_events(watermarkConf, RD_KAFKA_EVENT_LOG)
            do {
                return try RDKafkaConfig.makeHandle(type: RD_KAFKA_CONSUMER, conf: watermarkConf)
            } catch {
                rd_kafka_destroy(rk)
                throw error
            }
        }
        let watermarkLogQueue = watermarks.map { handle in
            let queue = rd_kafka_queue_new(handle)!
            rd_kafka_set_log_queue(handle, queue)
            return queue
        }
        let logQueue = rd_kafka_queue_new(rk)!
        rd_kafka_set_log_queue(rk, logQueue)
        func drainLogs() {
            while let event = rd_kafka_queue_poll(logQueue, 0) {
                if rd_kafka_event_type(event) == RD_KAFKA_EVENT_LOG { RDKafkaLog.forward(event, to: logger) }
                rd_kafka_event_destroy(event)
            }
        }
        func drainWatermarkLogs() {
            guard let watermarkLogQueue else { return }
            while let event = rd_kafka_queue_poll(watermarkLogQueue, 0) {
                if rd_kafka_event_type(event) == RD_KAFKA_EVENT_LOG { RDKafkaLog.forward(event, to: logger) }
                rd_kafka_event_destroy(event)
            }
        }
        defer {
            if let watermarks, let watermarkLogQueue {
                drainWatermarkLogs()
                rd_kafka_queue_destroy(watermarkLogQueue)
                rd_kafka_destroy(watermarks)
            }
            _ = rd_kafka_assign(rk, nil)
            rd_kafka_consumer_close(rk)
            drainLogs()
            rd_kafka_queue_destroy(logQueue)
            rd_kafka_destroy(rk)
        }

        guard let partitions = try partitionIDs(of: topic, rk: rk, timeoutMs: remaining()) else {
            logger.debug("Kafka topic does not exist; nothing to read", metadata: [LogKey.topic: "\(topic)"])
            return []
        }

        // The end each partition has now; later records are not read.
        var ends: [Int32: Int64] = [:]
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions {
            var low: Int64 = 0
            var high: Int64 = 0
            let err = rd_kafka_query_watermark_offsets(watermarks ?? rk, topic, partition, &low, &high, remaining())
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(err, context: "could not read the watermarks of topic '\(topic)' partition \(partition)")
            }
            let start = max(low, startOffsets[partition] ?? low)
            if high > start {
                ends[partition] = high
                rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = start
            }
        }
        drainLogs()
        drainWatermarkLogs()
        guard !ends.isEmpty else { return [] }

        let err = rd_kafka_assign(rk, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, context: "could not assign the partitions of topic '\(topic)'")
        }

        var messages: [Int32: [KafkaConsumerMessage]] = [:]
        var open = Set(ends.keys)
        while !open.isEmpty {
            drainLogs()
            guard ContinuousClock.now < deadline else {
                throw KafkaError(
                    code: .timedOut,
                    message: "topic '\(topic)' was not read to its end within \(timeout); partitions \(open.sorted()) unfinished",
                    isRetriable: true,
                    isFatal: false
                )
            }
            guard let message = rd_kafka_consumer_poll(rk, min(100, remaining())) else { continue }
            defer { rd_kafka_message_destroy(message) }
            let m = message.pointee
            guard let end = ends[m.partition], open.contains(m.partition) else { continue }
            switch m.err {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                if m.offset < end { messages[m.partition, default: []].append(RDKafkaConsumer.copy(message)) }
                if m.offset + 1 >= end { open.remove(m.partition) }
            case RD_KAFKA_RESP_ERR__PARTITION_EOF:
                // The end may lie beyond the last record (transaction markers, compaction). Under read_committed
                // an EOF short of the end is the last stable offset, held back by a transaction still open
                // (another producer's): wait until it settles, or records committed after it would be missed.
                if m.offset >= end { open.remove(m.partition) }
            default:
                let error = KafkaError(m.err, context: "could not read topic '\(topic)' partition \(m.partition)")
                if error.isRetriable { continue }
                throw error
            }
        }
        return messages.keys.sorted().flatMap { messages[$0]! }
    }

    /// The partition ids of `topic`, or nil when the topic does not exist.
    static func partitionIDs(of topic: String, rk: OpaquePointer, timeoutMs: Int32) throws -> [Int32]? {
        guard let rkt = rd_kafka_topic_new(rk, topic, nil) else {
            throw KafkaError(code: .invalidArgument, message: "invalid topic name '\(topic)'")
        }
        defer { rd_kafka_topic_destroy(rkt) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 0, rkt, &metadata, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(err, context: "could not read the metadata of topic '\(topic)'")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt > 0 else { return nil }
        let entry = metadata.pointee.topics[0]
        switch entry.err {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            return (0..<Int(entry.partition_cnt)).map { entry.partitions[$0].id }.sorted()
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
            return nil
        default:
            throw KafkaError(entry.err, context: "could not read the metadata of topic '\(topic)'")
        }
    }
}
