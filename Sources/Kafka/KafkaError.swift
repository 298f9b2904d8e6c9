import CRdKafka

/// An error reported by librdkafka or by this module.
///
/// `code` is librdkafka's `rd_kafka_resp_err_t`: negative values are
/// client-side conditions (`_QUEUE_FULL`), positive ones broker error codes
/// (`UNKNOWN_TOPIC_OR_PART`).
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// An extensible error code: librdkafka's `rd_kafka_resp_err_t`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int32

        public init(rawValue: Int32) {
            self.rawValue = rawValue
        }

        init(_ err: rd_kafka_resp_err_t) {
            self.rawValue = err.rawValue
        }

        /// `_QUEUE_FULL`: the producer's local queue is full (backpressure).
        public static let queueFull = Code(RD_KAFKA_RESP_ERR__QUEUE_FULL)
        /// `_MSG_TIMED_OUT`: a record was not delivered within `message.timeout.ms`.
        public static let messageTimedOut = Code(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
        /// `UNKNOWN_TOPIC_OR_PART`: the broker has no such topic or partition.
        public static let unknownTopicOrPartition = Code(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        /// `_UNKNOWN_TOPIC`: the client knows no such topic.
        public static let unknownTopic = Code(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
        /// `_UNKNOWN_PARTITION`: the topic has no such partition.
        public static let unknownPartition = Code(RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
        /// `TOPIC_ALREADY_EXISTS`.
        public static let topicAlreadyExists = Code(RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        /// `_TRANSPORT`: a broker connection failed.
        public static let transport = Code(RD_KAFKA_RESP_ERR__TRANSPORT)
        /// `_ALL_BROKERS_DOWN`: no broker is reachable.
        public static let allBrokersDown = Code(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        /// `_TIMED_OUT`: an operation did not finish within its timeout.
        public static let timedOut = Code(RD_KAFKA_RESP_ERR__TIMED_OUT)
        /// `_INVALID_ARG`: an invalid argument.
        public static let invalidArgument = Code(RD_KAFKA_RESP_ERR__INVALID_ARG)
        /// `_NOT_CONFIGURED`: used by this module for a configuration error
        /// (unknown property, invalid value, missing required property).
        public static let config = Code(RD_KAFKA_RESP_ERR__NOT_CONFIGURED)
        /// `_FATAL`: the client instance is unusable (e.g. idempotence guarantees broken).
        public static let fatal = Code(RD_KAFKA_RESP_ERR__FATAL)
        /// `_DESTROY`: the client has been shut down or closed.
        public static let destroyed = Code(RD_KAFKA_RESP_ERR__DESTROY)
        /// `_PARTITION_EOF`: the consumer reached the end of a partition.
        public static let partitionEOF = Code(RD_KAFKA_RESP_ERR__PARTITION_EOF)
        /// `_PURGE_QUEUE`: a queued record was purged (shutdown before delivery).
        public static let purgeQueue = Code(RD_KAFKA_RESP_ERR__PURGE_QUEUE)
        /// `_PURGE_INFLIGHT`: an in-flight record was purged (shutdown before delivery).
        public static let purgeInflight = Code(RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        /// `MSG_SIZE_TOO_LARGE`.
        public static let messageSizeTooLarge = Code(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        /// `REBALANCE_IN_PROGRESS`: a commit raced a consumer-group rebalance.
        public static let rebalanceInProgress = Code(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
        /// `ILLEGAL_GENERATION`: a commit from a stale group generation.
        public static let illegalGeneration = Code(RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
        /// `_NO_OFFSET`: nothing to commit.
        public static let noOffset = Code(RD_KAFKA_RESP_ERR__NO_OFFSET)
        /// `_FENCED`: this producer was fenced by a newer instance with the same `transactional.id`.
        public static let fenced = Code(RD_KAFKA_RESP_ERR__FENCED)
        /// `PRODUCER_FENCED`: the broker fenced this transactional producer.
        public static let producerFenced = Code(RD_KAFKA_RESP_ERR_PRODUCER_FENCED)
        /// `INVALID_PRODUCER_EPOCH`: the producer's epoch is stale (fenced).
        public static let invalidProducerEpoch = Code(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH)
        /// `_STATE`: the operation is not allowed in the client's current state
        /// (e.g. `beginTransaction` before `initTransactions`).
        public static let state = Code(RD_KAFKA_RESP_ERR__STATE)
        /// `OUT_OF_ORDER_SEQUENCE_NUMBER`: the broker saw a gap in an idempotent producer's sequence.
        public static let outOfOrderSequenceNumber = Code(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER)
        /// `UNKNOWN_PRODUCER_ID`: the broker no longer knows the idempotent producer (its state expired or was lost).
        public static let unknownProducerID = Code(RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID)
        /// `TOPIC_AUTHORIZATION_FAILED`.
        public static let topicAuthorizationFailed = Code(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)

        /// librdkafka's name for the code, e.g. `_QUEUE_FULL` or `UNKNOWN_TOPIC_OR_PART`.
        public var name: String {
            String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: rawValue)))
        }

        public var description: String { name }

        /// librdkafka's human-readable text for the code.
        var text: String {
            String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(rawValue: rawValue)))
        }

        /// Codes that describe a transient condition: repeating the operation may succeed.
        static let retriableCodes: Set<Code> = [
            .queueFull, .messageTimedOut, .transport, .allBrokersDown, .timedOut,
            .rebalanceInProgress,
            Code(RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE),
            Code(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION),
            Code(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT),
            Code(RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION),
            Code(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS),
            Code(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND),
            Code(RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS),
            Code(RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE),
            Code(RD_KAFKA_RESP_ERR_NOT_COORDINATOR),
            Code(RD_KAFKA_RESP_ERR__WAIT_COORD),
            Code(RD_KAFKA_RESP_ERR__RESOLVE),
            Code(RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE),
        ]
    }

    public var code: Code
    public var message: String
    /// Whether repeating the operation may succeed.
    public var isRetriable: Bool
    /// Whether the client instance is unusable and must be recreated.
    public var isFatal: Bool
    /// Whether the current transaction must be aborted (``KafkaProducer/abortTransaction(timeout:)``)
    /// before the producer can go on: librdkafka's `rd_kafka_error_txn_requires_abort`.
    public var requiresAbort: Bool

    public init(
        code: Code,
        message: String,
        isRetriable: Bool? = nil,
        isFatal: Bool? = nil,
        requiresAbort: Bool = false
    ) {
        self.code = code
        self.message = message
        self.isRetriable = isRetriable ?? Code.retriableCodes.contains(code)
        self.isFatal = isFatal ?? (code == .fatal)
        self.requiresAbort = requiresAbort
    }

    /// Whether a broker (or the client, before sending) refused one record for good: too large for the
    /// topic, invalid, against a topic policy, or not allowed on the topic. Sending it again fails again.
    public var isRecordRefusal: Bool {
        !isRetriable && !isFatal && Self.recordRefusalCodes.contains(code)
    }

    static let recordRefusalCodes: Set<Code> = [
        .messageSizeTooLarge, .topicAuthorizationFailed,
        Code(RD_KAFKA_RESP_ERR_INVALID_MSG), Code(RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE),
        Code(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE), Code(RD_KAFKA_RESP_ERR_POLICY_VIOLATION),
        Code(RD_KAFKA_RESP_ERR_INVALID_RECORD),
    ]

    /// Whether a record failed only because the transaction it was sent in failed, so that the same records in a
    /// new transaction may succeed: librdkafka purged it (`_PURGE_QUEUE`, `_PURGE_INFLIGHT`), its partition's
    /// sequence broke after an earlier failure in the transaction (`OUT_OF_ORDER_SEQUENCE_NUMBER`,
    /// `_INCONSISTENT`), the broker lost the producer's state (`UNKNOWN_PRODUCER_ID`; librdkafka bumps the
    /// epoch), or the transaction could not begin yet because the abort before it is still settling (`_STATE`).
    /// Never fatal.
    public var isTransactionAftermath: Bool {
        !isFatal && Self.transactionAftermathCodes.contains(code)
    }

    static let transactionAftermathCodes: Set<Code> = [
        .purgeQueue, .purgeInflight, .state, .outOfOrderSequenceNumber, .unknownProducerID, Code(RD_KAFKA_RESP_ERR__INCONSISTENT),
    ]

    /// Whether a newer producer with the same `transactional.id` has fenced this one
    /// (`_FENCED`, `PRODUCER_FENCED` or `INVALID_PRODUCER_EPOCH`). A fenced producer is
    /// unusable: shut it down.
    public var isFenced: Bool {
        [Code.fenced, .producerFenced, .invalidProducerEpoch].contains(code)
    }

    /// One line: `Kafka: <message> (<code name>)`.
    public var description: String {
        "Kafka: \(message) (\(code.name))"
    }
}

extension KafkaError {
    /// An error from a bare `rd_kafka_resp_err_t`, with librdkafka's text for it after `context`.
    init(_ err: rd_kafka_resp_err_t, context: String) {
        let code = Code(err)
        self.init(code: code, message: "\(context): \(code.text)")
    }

    /// An error from an `rd_kafka_error_t`, which it destroys.
    init(consuming error: OpaquePointer, context: String) {
        defer { rd_kafka_error_destroy(error) }
        let code = Code(rd_kafka_error_code(error))
        let text = rd_kafka_error_string(error).map { String(cString: $0) } ?? code.text
        self.init(
            code: code,
            message: "\(context): \(text)",
            isRetriable: rd_kafka_error_is_retriable(error) != 0 || Code.retriableCodes.contains(code),
            isFatal: rd_kafka_error_is_fatal(error) != 0,
            requiresAbort: rd_kafka_error_txn_requires_abort(error) != 0
        )
    }

    static func config(_ message: String) -> KafkaError {
        KafkaError(code: .config, message: message, isRetriable: false, isFatal: false)
    }

    static func destroyed(_ what: String) -> KafkaError {
        KafkaError(code: .destroyed, message: "\(what) has been shut down", isRetriable: false, isFatal: false)
    }
}
