import CRdKafka
import Contracts
import Dispatch
import Foundation
import Logging
import Synchronization

/// Owns the consumer's `rd_kafka_t`, its poll thread and the bounded message buffer.
final class RDKafkaConsumer: Sendable {
    struct State {
        var buffer: [KafkaConsumerMessage] = []
        var readers: [CheckedContinuation<KafkaConsumerMessage?, any Error>] = []
        var failure: KafkaError?
        var isCloseRequested = false
        var isLoopFinished = false
        var isPollerWaiting = false
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        /// Work for the poll thread (seek, pause, resume); called with nil when the consumer is gone.
        var commands: [@Sendable (OpaquePointer?) -> Void] = []
    }

    static let defaults: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
    ]

    /// The poll thread stops polling when this many messages wait to be read...
    static let highWatermark = 256
    /// ... and resumes when the reader has brought the buffer down to this many.
    static let lowWatermark = 64

    let handle: RDKafkaHandle
    let logger: Logger
    // rd_kafka_queue_t for librdkafka's logs; used only by the poll thread.
    nonisolated(unsafe) let logQueue: OpaquePointer
    private let state = Mutex(State())
    private let space = DispatchSemaphore(value: 0)

    /// Called from the rebalance callback; kept alive by the consumer.
    let rebalance: RDKafkaRebalance

    init(configuration: KafkaConfiguration, topics: [String], rebalanceListener: KafkaRebalanceListener?, logger: Logger) throws {
        guard let group = configuration["group.id"], !group.isEmpty else {
            throw KafkaError.config("the consumer configuration has no 'group.id'")
        }
        var properties = configuration.rendered(defaults: Self.defaults)
        properties["log.queue"] = "true"
        let conf = try RDKafkaConfig.make(properties)
        rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_LOG)
        let rebalance = RDKafkaRebalance(listener: rebalanceListener, properties: properties, logger: logger)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(rebalance).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf, rdKafkaRebalanceCallback)
        let rk = try RDKafkaConfig.makeHandle(type: RD_KAFKA_CONSUMER, conf: conf)
        let logQueue = rd_kafka_queue_new(rk)!
        rd_kafka_set_log_queue(rk, logQueue)
        rd_kafka_poll_set_consumer(rk)

        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics {
            rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA)
        }
        let err = rd_kafka_subscribe(rk, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_queue_destroy(logQueue)
            rd_kafka_destroy(rk)
            throw KafkaError(err, context: "could not subscribe to \(topics)")
        }

        self.handle = RDKafkaHandle(rk)
        self.logQueue = logQueue
        self.logger = logger
        self.rebalance = rebalance
        rebalance.dropBuffered.withLock { $0 = { [weak self] partitions in self?.dropBuffered(partitions) } }
        logger.debug(
            "Kafka consumer subscribed",
            metadata: [LogKey.group: "\(group)", LogKey.topics: "\(topics)", LogKey.librdkafka: "\(Librdkafka.version)"]
        )
        startThread("fanout.kafka.consumer.poll") { [self] in runPollLoop() }
    }

    // MARK: reading

    func next() async throws -> KafkaConsumerMessage? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<KafkaConsumerMessage?, any Error>) in
            enum Action { case value(KafkaConsumerMessage?, wakePoller: Bool), fail(KafkaError), wait }
            let action = state.withLock { state -> Action in
                if state.isCloseRequested { return .value(nil, wakePoller: false) }
                if !state.buffer.isEmpty {
                    let message = state.buffer.removeFirst()
                    let wake = state.isPollerWaiting && state.buffer.count <= Self.lowWatermark
                    if wake { state.isPollerWaiting = false }
                    return .value(message, wakePoller: wake)
                }
                if let failure = state.failure { return .fail(failure) }
                if state.isLoopFinished { return .value(nil, wakePoller: false) }
                state.readers.append(continuation)
                return .wait
            }
            switch action {
            case .value(let message, let wake):
                if wake { space.signal() }
                continuation.resume(returning: message)
            case .fail(let error):
                continuation.resume(throwing: error)
            case .wait:
                break
            }
        }
    }

    // MARK: committing

    func commit(topic: String, partition: Int32, offset: Int64) async throws {
        try await runOffPool("fanout.kafka.consumer.commit") { [handle] in
            try handle.withHandle(what: "the Kafka consumer") { rk in
                let list = rd_kafka_topic_partition_list_new(1)!
                defer { rd_kafka_topic_partition_list_destroy(list) }
                rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = offset
                let err = rd_kafka_commit(rk, list, 0)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(err, context: "could not commit offset \(offset) of topic '\(topic)' partition \(partition)")
                }
                let partitionErr = list.pointee.elems[0].err
                guard partitionErr == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(
                        partitionErr,
                        context: "could not commit offset \(offset) of topic '\(topic)' partition \(partition)"
                    )
                }
            }
        }
    }

    // MARK: positioning (run on the poll thread, between polls)

    /// Runs `body` on the poll thread with the handle, and returns its result.
    private func onPollThread<T: Sendable>(
        _ body: @escaping @Sendable (OpaquePointer) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let command: @Sendable (OpaquePointer?) -> Void = { rk in
                guard let rk else {
                    continuation.resume(throwing: KafkaError.destroyed("the Kafka consumer"))
                    return
                }
                continuation.resume(with: Result { try body(rk) })
            }
            let accepted = state.withLock { state -> Bool in
                guard !state.isCloseRequested, !state.isLoopFinished else { return false }
                state.commands.append(command)
                return true
            }
            if accepted { space.signal() } else { command(nil) }
        }
    }

    private func runCommands(_ rk: OpaquePointer?) {
        let commands = state.withLock { state in
            defer { state.commands = [] }
            return state.commands
        }
        for command in commands { command(rk) }
    }

    /// Drops buffered messages of the given partitions (called on the poll thread after a seek or a revocation).
    func dropBuffered(_ partitions: Set<TopicPartition>) {
        state.withLock { state in
            state.buffer.removeAll { partitions.contains(TopicPartition(topic: $0.topic, partition: $0.partition)) }
        }
    }

    typealias TopicPartition = KafkaTopicPartition

    func seek(topic: String, partition: Int32, offset: Int64, timeout: Duration) async throws {
        let ms = milliseconds(timeout)
        try await onPollThread { [self] rk in
            let list = rd_kafka_topic_partition_list_new(1)!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = offset
            try Self.seek(rk, list, ms: ms, context: "could not seek topic '\(topic)' partition \(partition) to offset \(offset)")
            dropBuffered([TopicPartition(topic: topic, partition: partition)])
        }
    }

    func seek(toTimestamp milliseconds: Int64, timeout: Duration) async throws -> [KafkaAcknowledgement] {
        let ms = Kafka.milliseconds(timeout)
        return try await onPollThread { [self] rk in
            var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            let err = rd_kafka_assignment(rk, &assignment)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let list = assignment else {
                throw KafkaError(err, context: "could not read the consumer's assignment")
            }
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let elements = UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
            guard !elements.isEmpty else { return [] }
            for index in elements.indices { elements[index].offset = milliseconds }
            let context = "could not look up the offsets for timestamp \(milliseconds) ms"
            let lookup = rd_kafka_offsets_for_times(rk, list, ms)
            guard lookup == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(lookup, context: context) }
            var positions: [KafkaAcknowledgement] = []
            var partitions: Set<TopicPartition> = []
            for index in elements.indices {
                let element = elements[index]
                let topic = String(cString: element.topic)
                guard element.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaError(element.err, context: "\(context) in topic '\(topic)' partition \(element.partition)")
                }
                // No record at or after the timestamp: continue at the end.
                if element.offset < 0 { elements[index].offset = Int64(RD_KAFKA_OFFSET_END) }
                positions.append(KafkaAcknowledgement(topic: topic, partition: element.partition, offset: elements[index].offset))
                partitions.insert(TopicPartition(topic: topic, partition: element.partition))
            }
            try Self.seek(rk, list, ms: ms, context: "could not seek to timestamp \(milliseconds) ms")
            dropBuffered(partitions)
            return positions
        }
    }

    /// librdkafka before 2.0.3 waits a thousandth of `rd_kafka_seek_partitions`'s timeout (the milliseconds are
    /// read as microseconds: librdkafka #4230): Debian's 2.0.2 turned 30 s into 30 ms, and a seek timed out
    /// whenever the broker thread took longer (seen at load 8 and more). The timeout is scaled to match.
    static func seekTimeoutArgument(_ ms: Int32, version: Int32 = rd_kafka_version()) -> Int32 {
        guard version < 0x0200_0300 else { return ms }
        let (scaled, overflow) = ms.multipliedReportingOverflow(by: 1_000)
        return overflow ? Int32.max : scaled
    }

    private static func seek(
        _ rk: OpaquePointer,
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
        ms: Int32,
        context: String
    ) throws {
        if let error = rd_kafka_seek_partitions(rk, list, seekTimeoutArgument(ms)) {
            throw KafkaError(consuming: error, context: context)
        }
        try throwFirstPartitionError(list, context: context)
    }

    private static func throwFirstPartitionError(
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
        context: String
    ) throws {
        for element in UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
        where element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(element.err, context: "\(context) (topic '\(String(cString: element.topic))' partition \(element.partition))")
        }
    }

    func setPaused(_ paused: Bool, topic: String, partition: Int32) async throws {
        try await onPollThread { rk in
            let list = rd_kafka_topic_partition_list_new(1)!
            defer { rd_kafka_topic_partition_list_destroy(list) }
            rd_kafka_topic_partition_list_add(list, topic, partition)
            let context = "could not \(paused ? "pause" : "resume") topic '\(topic)' partition \(partition)"
            let err = paused ? rd_kafka_pause_partitions(rk, list) : rd_kafka_resume_partitions(rk, list)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, context: context) }
            try Self.throwFirstPartitionError(list, context: context)
        }
    }

    // MARK: closing

    /// Ends the message sequence and asks the poll thread to leave the group and destroy the handle.
    func requestClose() {
        let readers = state.withLock { state in
            state.isCloseRequested = true
            defer { state.readers = [] }
            return state.readers
        }
        space.signal()
        for reader in readers { reader.resume(returning: nil) }
    }

    func close() async {
        requestClose()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.isLoopFinished { return true }
                state.closeWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: the poll loop (runs on its own thread)

    private func runPollLoop() {
        let rk = handle.pointer
        while true {
            drainLogs()
            runCommands(rk)
            let (stop, full) = state.withLock { state -> (Bool, Bool) in
                let full = state.buffer.count >= Self.highWatermark
                if full { state.isPollerWaiting = true }
                return (state.isCloseRequested || state.failure != nil, full)
            }
            if stop { break }
            if full {
                // Backpressure: the reader is slow; wait for it (re-checking every 100 ms).
                _ = space.wait(timeout: .now() + .milliseconds(100))
                continue
            }
            guard let message = rd_kafka_consumer_poll(rk, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                deliver(Self.copy(message))
            } else {
                handleError(message, rk: rk)
            }
        }

        leaveGroup(rk)
        let err = rd_kafka_consumer_close(rk)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            logger.warning("Kafka consumer did not leave its group cleanly", metadata: [LogKey.kafkaError: "\(KafkaError.Code(err).name)"])
        }
        drainLogs()
        handle.destroy { _ in rd_kafka_queue_destroy(logQueue) }

        runCommands(nil)
        let (readers, closeWaiters, failure) = state.withLock { state in
            state.isLoopFinished = true
            defer { state.readers = []; state.closeWaiters = [] }
            return (state.readers, state.closeWaiters, state.failure)
        }
        for reader in readers {
            if let failure { reader.resume(throwing: failure) } else { reader.resume(returning: nil) }
        }
        for waiter in closeWaiters { waiter.resume() }
        logger.debug("Kafka consumer closed")
    }

    /// librdkafka 2.0.2 does not send LeaveGroup when a cooperative-sticky member closes
    /// (the broker then waits `session.timeout.ms` before the next member may join).
    /// Unsubscribing first, and serving the consumer until the incremental unassign has
    /// finished, makes it leave the group.
    private func leaveGroup(_ rk: OpaquePointer) {
        guard rd_kafka_unsubscribe(rk) == RD_KAFKA_RESP_ERR_NO_ERROR else { return }
        let deadline = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < deadline {
            if let message = rd_kafka_consumer_poll(rk, 50) {
                rd_kafka_message_destroy(message)  // dropped: the sequence has ended
            }
            drainLogs()
            var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            guard rd_kafka_assignment(rk, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR, let assignment else { break }
            let count = assignment.pointee.cnt
            rd_kafka_topic_partition_list_destroy(assignment)
            if count == 0, rd_kafka_assignment_lost(rk) == 0 { break }
        }
    }

    private func deliver(_ message: KafkaConsumerMessage) {
        let reader = state.withLock { state -> CheckedContinuation<KafkaConsumerMessage?, any Error>? in
            if !state.readers.isEmpty { return state.readers.removeFirst() }
            state.buffer.append(message)
            return nil
        }
        reader?.resume(returning: message)
    }

    private func handleError(_ message: UnsafeMutablePointer<rd_kafka_message_t>, rk: OpaquePointer) {
        let err = message.pointee.err
        if err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
            logger.debug(
                "Kafka consumer reached the end of a partition",
                metadata: [LogKey.partition: "\(message.pointee.partition)"]
            )
            return
        }
        let text = rd_kafka_message_errstr(message).map { String(cString: $0) } ?? KafkaError.Code(err).name
        guard err == RD_KAFKA_RESP_ERR__FATAL else {
            logger.warning("Kafka consumer error: \(text)", metadata: [LogKey.kafkaError: "\(KafkaError.Code(err).name)"])
            return
        }
        var errstr = [CChar](repeating: 0, count: 512)
        let fatal = rd_kafka_fatal_error(rk, &errstr, errstr.count)
        let failure = KafkaError(
            code: KafkaError.Code(fatal),
            message: "fatal consumer error: \(RDKafkaConfig.decode(errstr))",
            isRetriable: false,
            isFatal: true
        )
        logger.error("\(failure)")
        let readers = state.withLock { state in
            state.failure = failure
            defer { state.readers = [] }
            return state.readers
        }
        for reader in readers { reader.resume(throwing: failure) }
    }

    private func drainLogs() {
        while let event = rd_kafka_queue_poll(logQueue, 0) {
            if rd_kafka_event_type(event) == RD_KAFKA_EVENT_LOG {
                RDKafkaLog.forward(event, to: logger)
            }
            rd_kafka_event_destroy(event)
        }
    }

    /// Copies a consumed message out of librdkafka.
    static func copy(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaConsumerMessage {
        let m = message.pointee
        let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []

        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            var name: UnsafePointer<CChar>?
            var bytes: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, index, &name, &bytes, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let headerValue = bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append(KafkaHeader(key: name.map { String(cString: $0) } ?? "", value: headerValue))
                index += 1
            }
        }

        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ms = rd_kafka_message_timestamp(message, &timestampType)
        let timestamp = ms >= 0 ? Date(timeIntervalSince1970: Double(ms) / 1_000) : nil

        return KafkaConsumerMessage(
            topic: topic,
            partition: m.partition,
            offset: m.offset,
            key: key,
            value: value,
            headers: headers,
            timestamp: timestamp
        )
    }
}

/// What a consumer-group member does around a rebalance; both run on the consumer's poll thread.
public struct KafkaRebalanceListener: Sendable {
    /// Partitions newly assigned to this member (fetching starts at their committed offsets).
    public var assigned: @Sendable ([KafkaTopicPartition]) -> Void
    /// Partitions about to be taken away: may block (off the cooperative pool) until the work
    /// on them is finished, and returns the offsets to commit for them (the next offset to
    /// read), which are committed before the partitions are given up. Also called when the
    /// assignment was lost (the member's generation is no longer valid): the offsets are then
    /// committed from outside the group, which a broker may refuse.
    public var revoking: @Sendable ([KafkaTopicPartition]) -> [KafkaAcknowledgement]

    public init(
        assigned: @escaping @Sendable ([KafkaTopicPartition]) -> Void,
        revoking: @escaping @Sendable ([KafkaTopicPartition]) -> [KafkaAcknowledgement]
    ) {
        self.assigned = assigned
        self.revoking = revoking
    }
}

/// The state behind the rebalance callback (`rd_kafka_conf_set_opaque`).
final class RDKafkaRebalance: Sendable {
    let listener: KafkaRebalanceListener?
    /// The consumer's properties, for a commit from outside the group after a lost assignment.
    let properties: [String: String]
    let logger: Logger
    let dropBuffered = Mutex<(@Sendable (Set<KafkaTopicPartition>) -> Void)?>(nil)

    init(listener: KafkaRebalanceListener?, properties: [String: String], logger: Logger) {
        self.listener = listener
        self.properties = properties
        self.logger = logger
    }

    /// Commits with a client of its own that never joins the group (generation -1), as
    /// `kafka-consumer-groups --reset-offsets` does. Brokers that follow Kafka refuse it while the
    /// group has members; some (noida-db) accept it while the group rebalances.
    func commitOutsideGroup(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> rd_kafka_resp_err_t {
        var properties = properties
        properties["log.queue"] = nil
        properties["enable.auto.commit"] = "false"
        guard let conf = try? RDKafkaConfig.make(properties) else { return RD_KAFKA_RESP_ERR__INVALID_ARG }
        rd_kafka_conf_set_log_cb(conf, nil)
        guard let rk = try? RDKafkaConfig.makeHandle(type: RD_KAFKA_CONSUMER, conf: conf) else { return RD_KAFKA_RESP_ERR__INVALID_ARG }
        defer { rd_kafka_destroy(rk) }
        return rd_kafka_commit(rk, list, 0)
    }

    func handle(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let partitions = UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt)).map {
            KafkaTopicPartition(topic: String(cString: $0.topic), partition: $0.partition)
        }
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) {
                    logger.error("Kafka consumer could not take its assignment: \(KafkaError(consuming: error, context: "incremental assign"))")
                }
            } else {
                _ = rd_kafka_assign(rk, list)
            }
            logger.debug("Kafka partitions assigned", metadata: [LogKey.partitions: "\(partitions.map { "\($0.topic)[\($0.partition)]" })"])
            listener?.assigned(partitions)
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let dropBuffered = self.dropBuffered.withLock { $0 }
            dropBuffered?(Set(partitions))
            if let listener {
                let isLost = rd_kafka_assignment_lost(rk) != 0
                let offsets = listener.revoking(partitions)
                dropBuffered?(Set(partitions))
                if !offsets.isEmpty {
                    let commit = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
                    defer { rd_kafka_topic_partition_list_destroy(commit) }
                    for offset in offsets {
                        rd_kafka_topic_partition_list_add(commit, offset.topic, offset.partition).pointee.offset = offset.offset
                    }
                    // A lost assignment's generation is gone: the member's own commit would fail.
                    let err = isLost ? commitOutsideGroup(commit) : rd_kafka_commit(rk, commit, 0)
                    if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                        logger.warning(
                            "Kafka consumer could not commit the partitions it gave up; their next owner repeats what was finished since the last commit",
                            metadata: [LogKey.kafkaError: "\(KafkaError.Code(err).name)", LogKey.lost: "\(isLost)"]
                        )
                    }
                }
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) {
                    logger.warning("Kafka consumer could not give up partitions: \(KafkaError(consuming: error, context: "incremental unassign"))")
                }
            } else {
                _ = rd_kafka_assign(rk, nil)
            }
            logger.debug("Kafka partitions revoked", metadata: [LogKey.partitions: "\(partitions.map { "\($0.topic)[\($0.partition)]" })"])
        default:
            logger.warning("Kafka rebalance error", metadata: [LogKey.kafkaError: "\(KafkaError.Code(err).name)"])
            _ = rd_kafka_assign(rk, nil)
        }
    }
}

private let rdKafkaRebalanceCallback: @convention(c) (
    OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?
) -> Void = { rk, err, list, opaque in
    guard let rk, let list, let opaque else { return }
    Unmanaged<RDKafkaRebalance>.fromOpaque(opaque).takeUnretainedValue().handle(rk, err, list)
}
