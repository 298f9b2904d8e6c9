import CRdKafka
import Contracts
import Foundation
import Logging
import Synchronization

/// Topic administration: create topics, read cluster metadata and topic configs.
///
/// Admin results, logs and errors arrive on librdkafka's main queue, which a
/// dedicated thread drains; each request carries an integer opaque that routes
/// its result back to the waiting call.
public final class KafkaAdmin: Sendable {
    private let core: RDKafkaAdmin

    public init(configuration: KafkaConfiguration, logger: Logger) throws {
        self.core = try RDKafkaAdmin(configuration: configuration, logger: logger)
    }

    deinit {
        core.requestStop()
    }

    /// Creates topics; a topic that already exists counts as success. Throws the
    /// first real failure, naming the topic.
    public func createTopics(_ topics: [KafkaTopicSpecification], timeout: Duration = .seconds(10)) async throws {
        try await core.createTopics(topics, timeout: timeout)
    }

    /// Grows each topic to the given total number of partitions (Kafka never shrinks a topic).
    /// A topic that already has that many counts as success. Throws the first real failure, naming the topic.
    public func createPartitions(_ totals: [String: Int32], timeout: Duration = .seconds(10)) async throws {
        try await core.createPartitions(totals, timeout: timeout)
    }

    /// Topic name -> partition count, from cluster metadata (internal topics such as
    /// `__consumer_offsets` included). Throws within `timeout` when no broker answers.
    public func listTopics(timeout: Duration = .seconds(5)) async throws -> [String: Int32] {
        try await core.listTopics(timeout: timeout)
    }

    /// The topic's configuration entries, as the broker reports them.
    public func describeTopicConfigs(_ topic: String, timeout: Duration = .seconds(10)) async throws -> [String: String] {
        try await core.describeTopicConfigs(topic, timeout: timeout)
    }

    /// Stops the poll loop and destroys the handle; pending calls fail with `destroyed`. Idempotent.
    public func close() {
        core.requestStop()
    }
}

final class RDKafkaAdmin: Sendable {
    /// Turns a result event into a Swift value inside the poll loop (the event is destroyed after).
    typealias Handler = @Sendable (OpaquePointer?) -> Void

    struct State {
        var nextRequestID = 1
        var handlers: [Int: Handler] = [:]
        var isStopRequested = false
        /// The latest client-level error librdkafka reported (a TLS handshake or SASL failure, a refused
        /// connection), kept to explain a timeout; "all brokers are down" does not replace a more specific one.
        var lastClientError: String?
    }

    let handle: RDKafkaHandle
    let logger: Logger
    private let state = Mutex(State())

    init(configuration: KafkaConfiguration, logger: Logger) throws {
        var properties = configuration.properties
        properties["log.queue"] = "true"
        let conf = try RDKafkaConfig.make(properties)
        rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_ERROR)
        let rk = try RDKafkaConfig.makeHandle(type: RD_KAFKA_PRODUCER, conf: conf)
        rd_kafka_set_log_queue(rk, nil)
        self.handle = RDKafkaHandle(rk)
        self.logger = logger
        startThread("fanout.kafka.admin.poll") { [self] in runPollLoop() }
    }

    func requestStop() {
        state.withLock { $0.isStopRequested = true }
    }

    // MARK: requests

    /// Registers a handler for the result of one request, then issues it with `issue(rk, opaque, queue)`.
    private func request<T: Sendable>(
        _ what: String,
        issue: (OpaquePointer, UnsafeMutableRawPointer, OpaquePointer) throws -> Void,
        parse: @escaping @Sendable (OpaquePointer) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let id = state.withLock { state -> Int? in
                guard !state.isStopRequested else { return nil }
                let id = state.nextRequestID
                state.nextRequestID += 1
                state.handlers[id] = { event in
                    guard let event else {
                        continuation.resume(throwing: KafkaError.destroyed("the Kafka admin client"))
                        return
                    }
                    continuation.resume(with: Result { try parse(event) })
                }
                return id
            }
            guard let id else {
                continuation.resume(throwing: KafkaError.destroyed("the Kafka admin client"))
                return
            }
            do {
                try handle.withHandle(what: "the Kafka admin client") { rk in
                    let queue = rd_kafka_queue_get_main(rk)!
                    defer { rd_kafka_queue_destroy(queue) }
                    try issue(rk, UnsafeMutableRawPointer(bitPattern: id)!, queue)
                }
            } catch {
                let handler = state.withLock { $0.handlers.removeValue(forKey: id) }
                if handler != nil { continuation.resume(throwing: error) }
            }
        }
    }

    private static func makeOptions(
        _ rk: OpaquePointer,
        _ op: rd_kafka_admin_op_t,
        opaque: UnsafeMutableRawPointer,
        timeout: Duration
    ) throws -> OpaquePointer {
        let options = rd_kafka_AdminOptions_new(rk, op)!
        var errstr = [CChar](repeating: 0, count: 512)
        let ms = milliseconds(timeout)
        if rd_kafka_AdminOptions_set_request_timeout(options, ms, &errstr, errstr.count) != RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_AdminOptions_destroy(options)
            throw KafkaError(code: .invalidArgument, message: "bad admin timeout: \(RDKafkaConfig.decode(errstr))")
        }
        rd_kafka_AdminOptions_set_opaque(options, opaque)
        return options
    }

    func createTopics(_ topics: [KafkaTopicSpecification], timeout: Duration) async throws {
        guard !topics.isEmpty else { return }
        try await request("create topics") { rk, opaque, queue in
            var newTopics: [OpaquePointer?] = []
            defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
            for spec in topics {
                var errstr = [CChar](repeating: 0, count: 512)
                guard let newTopic = rd_kafka_NewTopic_new(
                    spec.name, spec.partitions, spec.replicationFactor, &errstr, errstr.count
                ) else {
                    throw KafkaError(code: .invalidArgument, message: "topic '\(spec.name)': \(RDKafkaConfig.decode(errstr))")
                }
                newTopics.append(newTopic)
                for (key, value) in spec.configs.sorted(by: { $0.key < $1.key }) {
                    let err = rd_kafka_NewTopic_set_config(newTopic, key, value)
                    guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                        throw KafkaError(err, context: "topic '\(spec.name)': config '\(key)'")
                    }
                }
            }
            let options = try Self.makeOptions(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, opaque: opaque, timeout: timeout)
            defer { rd_kafka_AdminOptions_destroy(options) }
            newTopics.withUnsafeMutableBufferPointer { buffer in
                rd_kafka_CreateTopics(rk, buffer.baseAddress, buffer.count, options, queue)
            }
        } parse: { event in
            let err = rd_kafka_event_error(event)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                let text = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? ""
                throw KafkaError(code: KafkaError.Code(err), message: "create topics failed: \(text)")
            }
            var count = 0
            guard let result = rd_kafka_event_CreateTopics_result(event),
                  let results = rd_kafka_CreateTopics_result_topics(result, &count)
            else { return }
            for i in 0..<count {
                guard let topicResult = results[i] else { continue }
                let err = rd_kafka_topic_result_error(topicResult)
                guard err != RD_KAFKA_RESP_ERR_NO_ERROR, err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS else { continue }
                let name = String(cString: rd_kafka_topic_result_name(topicResult))
                let text = rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) }
                    ?? KafkaError.Code(err).name
                throw KafkaError(code: KafkaError.Code(err), message: "could not create topic '\(name)': \(text)")
            }
        }
    }

    func createPartitions(_ totals: [String: Int32], timeout: Duration) async throws {
        guard !totals.isEmpty else { return }
        try await request("create partitions") { rk, opaque, queue in
            var requests: [OpaquePointer?] = []
            defer { for request in requests { rd_kafka_NewPartitions_destroy(request) } }
            for (topic, total) in totals.sorted(by: { $0.key < $1.key }) {
                var errstr = [CChar](repeating: 0, count: 512)
                guard let request = rd_kafka_NewPartitions_new(topic, Int(total), &errstr, errstr.count) else {
                    throw KafkaError(code: .invalidArgument, message: "topic '\(topic)': \(RDKafkaConfig.decode(errstr))")
                }
                requests.append(request)
            }
            let options = try Self.makeOptions(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, opaque: opaque, timeout: timeout)
            defer { rd_kafka_AdminOptions_destroy(options) }
            requests.withUnsafeMutableBufferPointer { buffer in
                rd_kafka_CreatePartitions(rk, buffer.baseAddress, buffer.count, options, queue)
            }
        } parse: { event in
            let err = rd_kafka_event_error(event)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                let text = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? ""
                throw KafkaError(code: KafkaError.Code(err), message: "create partitions failed: \(text)")
            }
            var count = 0
            guard let result = rd_kafka_event_CreatePartitions_result(event),
                  let results = rd_kafka_CreatePartitions_result_topics(result, &count)
            else { return }
            for i in 0..<count {
                guard let topicResult = results[i] else { continue }
                let err = rd_kafka_topic_result_error(topicResult)
                let text = rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) } ?? ""
                // INVALID_PARTITIONS with "already has" means the topic is at that size already.
                guard err != RD_KAFKA_RESP_ERR_NO_ERROR, !(err == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS && text.contains("already has")) else { continue }
                let name = String(cString: rd_kafka_topic_result_name(topicResult))
                throw KafkaError(code: KafkaError.Code(err), message: "could not add partitions to topic '\(name)': \(text.isEmpty ? KafkaError.Code(err).name : text)")
            }
        }
    }

    func describeTopicConfigs(_ topic: String, timeout: Duration) async throws -> [String: String] {
        try await request("describe configs") { rk, opaque, queue in
            var resources: [OpaquePointer?] = [rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic)]
            defer { rd_kafka_ConfigResource_destroy(resources[0]) }
            let options = try Self.makeOptions(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, opaque: opaque, timeout: timeout)
            defer { rd_kafka_AdminOptions_destroy(options) }
            resources.withUnsafeMutableBufferPointer { buffer in
                rd_kafka_DescribeConfigs(rk, buffer.baseAddress, buffer.count, options, queue)
            }
        } parse: { event in
            let err = rd_kafka_event_error(event)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                let text = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? ""
                throw KafkaError(code: KafkaError.Code(err), message: "describe configs of topic '\(topic)' failed: \(text)")
            }
            var count = 0
            guard let result = rd_kafka_event_DescribeConfigs_result(event),
                  let resources = rd_kafka_DescribeConfigs_result_resources(result, &count)
            else { return [:] }
            var configs: [String: String] = [:]
            for i in 0..<count {
                guard let resource = resources[i] else { continue }
                let err = rd_kafka_ConfigResource_error(resource)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    let text = rd_kafka_ConfigResource_error_string(resource).map { String(cString: $0) }
                        ?? KafkaError.Code(err).name
                    throw KafkaError(code: KafkaError.Code(err), message: "describe configs of topic '\(topic)': \(text)")
                }
                var entryCount = 0
                guard let entries = rd_kafka_ConfigResource_configs(resource, &entryCount) else { continue }
                for j in 0..<entryCount {
                    guard let entry = entries[j], let name = rd_kafka_ConfigEntry_name(entry) else { continue }
                    if let value = rd_kafka_ConfigEntry_value(entry) {
                        configs[String(cString: name)] = String(cString: value)
                    }
                }
            }
            return configs
        }
    }

    func listTopics(timeout: Duration) async throws -> [String: Int32] {
        let ms = milliseconds(timeout)
        return try await runOffPool("fanout.kafka.admin.metadata") { [self] in
            try handle.withHandle(what: "the Kafka admin client") { rk in
                var metadata: UnsafePointer<rd_kafka_metadata>?
                let err = rd_kafka_metadata(rk, 1, nil, &metadata, ms)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                    var error = KafkaError(err, context: "could not read cluster metadata within \(timeout)")
                    if let last = self.state.withLock({ $0.lastClientError }) {
                        error.message += "; the last connection error: \(last)"
                    }
                    throw error
                }
                defer { rd_kafka_metadata_destroy(metadata) }
                var topics: [String: Int32] = [:]
                let md = metadata.pointee
                for i in 0..<Int(md.topic_cnt) {
                    let topic = md.topics[i]
                    guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR, let name = topic.topic else { continue }
                    topics[String(cString: name)] = topic.partition_cnt
                }
                return topics
            }
        }
    }

    // MARK: the poll loop (runs on its own thread)

    private func runPollLoop() {
        let rk = handle.pointer
        let queue = rd_kafka_queue_get_main(rk)!
        while !state.withLock({ $0.isStopRequested }) {
            guard let event = rd_kafka_queue_poll(queue, 100) else { continue }
            defer { rd_kafka_event_destroy(event) }
            switch rd_kafka_event_type(event) {
            case RD_KAFKA_EVENT_LOG:
                RDKafkaLog.forward(event, to: logger)
            case RD_KAFKA_EVENT_ERROR:
                RDKafkaLog.forwardError(event, to: logger)
                let text = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? ""
                let isGeneric = rd_kafka_event_error(event) == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
                state.withLock { state in
                    if !isGeneric || state.lastClientError == nil { state.lastClientError = text }
                }
            default:
                let id = Int(bitPattern: rd_kafka_event_opaque(event))
                let handler = state.withLock { $0.handlers.removeValue(forKey: id) }
                handler?(event)
            }
        }
        rd_kafka_queue_destroy(queue)
        handle.destroy()
        let handlers = state.withLock { state in
            defer { state.handlers = [:] }
            return Array(state.handlers.values)
        }
        for handler in handlers { handler(nil) }
    }
}
