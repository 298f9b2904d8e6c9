import CRdKafka
import Contracts
import Foundation
import Logging
import Synchronization

/// An in-process Kafka cluster for tests: librdkafka's mock cluster (`rd_kafka_mock_*`),
/// with fault injection (brokers down and up, injected request errors, round-trip
/// times, leader moves).
///
/// It accepts producers, consumers and admin clients at ``bootstrapServers``. It does
/// not enforce `read_committed` isolation and does not create topics with
/// configurations (see INFRA.md). Shut down every client of the cluster before ``close()``.
public final class KafkaMockCluster: Sendable {
    /// Kafka protocol API keys, for ``pushRequestErrors(apiKey:errors:)``.
    public struct APIKey: Hashable, Sendable {
        public var rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }

        public static let produce = APIKey(rawValue: 0)
        public static let fetch = APIKey(rawValue: 1)
        public static let listOffsets = APIKey(rawValue: 2)
        public static let metadata = APIKey(rawValue: 3)
        public static let offsetCommit = APIKey(rawValue: 8)
        public static let findCoordinator = APIKey(rawValue: 10)
        public static let initProducerID = APIKey(rawValue: 22)
        public static let addPartitionsToTxn = APIKey(rawValue: 24)
        public static let endTxn = APIKey(rawValue: 26)
    }

    private let core: RDKafkaMockCluster

    /// The broker ids: `1...brokers`.
    public let brokerIDs: [Int32]

    /// Starts a cluster of `brokers` brokers on 127.0.0.1 (ephemeral ports), on a
    /// librdkafka handle of its own whose logs go to `logger`.
    public init(brokers: Int = 3, logger: Logger) throws {
        self.core = try RDKafkaMockCluster(brokers: brokers, logger: logger)
        self.brokerIDs = (1...Int32(max(1, brokers))).map { $0 }
    }

    deinit {
        core.requestClose()
    }

    /// `bootstrap.servers` for clients of this cluster.
    public var bootstrapServers: String {
        core.bootstraps
    }

    /// Creates a topic (`rd_kafka_mock_topic_create`). Without it, the first produce
    /// creates the topic with 4 partitions.
    public func createTopic(name: String, partitions: Int = 1, replicationFactor: Int = 1) throws {
        try core.call("create topic '\(name)'") { mc in
            rd_kafka_mock_topic_create(mc, name, Int32(partitions), Int32(replicationFactor))
        }
    }

    /// Takes a broker down (`rd_kafka_mock_broker_set_down`: its connections close and it
    /// refuses new ones) or brings it back up.
    ///
    /// Taking a broker down closes its listening socket and binds a new one to the same port
    /// at once; librdkafka 2.0.2 aborts the whole process ("Failed to re-create mock broker
    /// listener") when that bind fails. It did once in a loaded test run ("Address already in
    /// use"), so tests simulate a lost leader with ``setPartitionLeader(topic:partition:broker:)``
    /// and `-1` instead; only the benchmark's outage, a process of its own, uses this.
    public func setBroker(_ id: Int32, up: Bool) throws {
        try core.call("set broker \(id) \(up ? "up" : "down")") { mc in
            up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id)
        }
    }

    /// The next `errors.count` requests with this API key, on any broker, fail with
    /// these errors in order (`rd_kafka_mock_push_request_errors_array`).
    public func pushRequestErrors(apiKey: APIKey, errors: [KafkaError.Code]) throws {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        try core.call("push request errors") { mc in
            codes.withUnsafeBufferPointer {
                rd_kafka_mock_push_request_errors_array(mc, apiKey.rawValue, $0.count, $0.baseAddress)
            }
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    /// Forgets the errors pushed for this API key and not yet used.
    public func clearRequestErrors(apiKey: APIKey) throws {
        try core.call("clear request errors") { mc in
            rd_kafka_mock_clear_request_errors(mc, apiKey.rawValue)
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    /// Delays every response of a broker by `milliseconds` (`rd_kafka_mock_broker_set_rtt`); 0 removes the delay.
    public func setRoundTripTime(broker: Int32, milliseconds: Int) throws {
        try core.call("set the round-trip time of broker \(broker)") { mc in
            rd_kafka_mock_broker_set_rtt(mc, broker, Int32(milliseconds))
        }
    }

    /// Makes `broker` the leader of a partition (`rd_kafka_mock_partition_set_leader`), or
    /// leaves the partition without a leader when `broker` is -1; clients learn it from their
    /// next metadata refresh or the next request the old leader refuses.
    public func setPartitionLeader(topic: String, partition: Int32, broker: Int32) throws {
        try core.call("set the leader of topic '\(topic)' partition \(partition)") { mc in
            rd_kafka_mock_partition_set_leader(mc, topic, partition, broker)
        }
    }

    /// Destroys the cluster and its handle; later calls throw `destroyed`. Idempotent.
    public func close() async {
        await core.close()
    }
}

/// Owns the mock cluster's `rd_kafka_t` and `rd_kafka_mock_cluster_t`, and a thread
/// that forwards the handle's logs until the cluster is closed.
final class RDKafkaMockCluster: Sendable {
    struct State {
        var isCloseRequested = false
        var isFinished = false
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let handle: RDKafkaHandle
    let logger: Logger
    let bootstraps: String
    // The rd_kafka_mock_cluster_t; used only while `handle` is borrowed, destroyed before it.
    nonisolated(unsafe) let cluster: OpaquePointer
    nonisolated(unsafe) let logQueue: OpaquePointer
    private let state = Mutex(State())

    init(brokers: Int, logger: Logger) throws {
        let conf = try RDKafkaConfig.make(["log.queue": "true"])
        rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_LOG)
        let rk = try RDKafkaConfig.makeHandle(type: RD_KAFKA_PRODUCER, conf: conf)
        let logQueue = rd_kafka_queue_new(rk)!
        rd_kafka_set_log_queue(rk, logQueue)
        // The mock cluster's thread inherits this thread's signal mask. Unlike rd_kafka_new, the mock
        // cluster does not block signals in its thread, and it aborts when poll() is interrupted (EINTR),
        // e.g. by the SIGCHLD of any child process ending: create it with every signal blocked.
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &previous)
        let created = rd_kafka_mock_cluster_new(rk, Int32(brokers))
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        guard let cluster = created else {
            rd_kafka_queue_destroy(logQueue)
            rd_kafka_destroy(rk)
            throw KafkaError(code: .fatal, message: "could not create a mock cluster of \(brokers) brokers")
        }
        self.handle = RDKafkaHandle(rk)
        self.cluster = cluster
        self.logQueue = logQueue
        self.logger = logger
        self.bootstraps = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        logger.debug("Kafka mock cluster started", metadata: [LogKey.brokers: "\(bootstraps)"])
        startThread("fanout.kafka.mock.log") { [self] in runLogLoop() }
    }

    /// One `rd_kafka_mock_*` call; a non-zero result throws a ``KafkaError`` saying what failed.
    func call(_ what: String, _ body: (OpaquePointer) -> rd_kafka_resp_err_t) throws {
        let err = try handle.withHandle(what: "the Kafka mock cluster") { _ in body(cluster) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, context: "mock cluster: could not \(what)")
        }
    }

    func requestClose() {
        state.withLock { $0.isCloseRequested = true }
    }

    func close() async {
        requestClose()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.isFinished { return true }
                state.closeWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func runLogLoop() {
        while !state.withLock({ $0.isCloseRequested }) {
            if let event = rd_kafka_queue_poll(logQueue, 100) {
                if rd_kafka_event_type(event) == RD_KAFKA_EVENT_LOG { RDKafkaLog.forward(event, to: logger) }
                rd_kafka_event_destroy(event)
            }
        }
        handle.destroy { [cluster, logQueue] _ in
            rd_kafka_mock_cluster_destroy(cluster)
            rd_kafka_queue_destroy(logQueue)
        }
        let waiters = state.withLock { state in
            state.isFinished = true
            defer { state.closeWaiters = [] }
            return state.closeWaiters
        }
        for waiter in waiters { waiter.resume() }
        logger.debug("Kafka mock cluster closed")
    }
}
