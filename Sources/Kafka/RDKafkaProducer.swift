import CRdKafka
import Contracts
import Foundation
import Logging
import Synchronization

/// Owns the producer's `rd_kafka_t` and its poll loop; matches delivery reports
/// (integer msg_opaque ids) to the batches waiting for them.
final class RDKafkaProducer: Sendable {
    typealias Outcome = Result<KafkaAcknowledgement, KafkaError>

    struct Batch {
        var outcomes: [Outcome?]
        /// Records enqueued in librdkafka whose delivery report has not arrived.
        var outstanding = 0
        /// Set when `send` has enqueued everything it is going to enqueue.
        var isSealed = false
        var continuation: CheckedContinuation<[Outcome?], Never>?
    }

    struct State {
        var nextRecordID: UInt = 1
        var nextBatchID = 0
        /// record id -> (batch id, index in the batch)
        var records: [UInt: (batch: Int, index: Int)] = [:]
        var batches: [Int: Batch] = [:]
        /// Delivery reports handled so far; QUEUE_FULL waiters wait for it to move.
        var deliveries: UInt64 = 0
        var capacityWaiters: [CheckedContinuation<Void, Never>] = []
        var isShutdownStarted = false
        var isStopRequested = false
        var isLoopFinished = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    static let defaults: [String: String] = [
        "enable.idempotence": "true",
        "acks": "all",
        "partitioner": "murmur2_random",
        "max.in.flight.requests.per.connection": "5",
        "linger.ms": "5",
    ]

    let handle: RDKafkaHandle
    let logger: Logger
    let isTransactional: Bool
    /// Called on the poll thread with each statistics report.
    private let onStatistics: @Sendable (KafkaStatistics) -> Void
    /// Called on the poll thread when librdkafka raises a fatal error (the handle can no longer produce).
    private let onFatalError: @Sendable (KafkaError) -> Void
    /// Called on the poll thread when librdkafka reports a broker connection lost or refused (`_TRANSPORT`,
    /// `_ALL_BROKERS_DOWN`).
    private let onConnectionLost: @Sendable () -> Void
    private let state = Mutex(State())

    init(
        configuration: KafkaConfiguration, logger: Logger,
        onStatistics: @escaping @Sendable (KafkaStatistics) -> Void = { _ in },
        onFatalError: @escaping @Sendable (KafkaError) -> Void = { _ in },
        onConnectionLost: @escaping @Sendable () -> Void = {}
    ) throws {
        var properties = configuration.rendered(defaults: Self.defaults)
        properties["log.queue"] = "true"
        let conf = try RDKafkaConfig.make(properties)
        rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_STATS)
        let rk = try RDKafkaConfig.makeHandle(type: RD_KAFKA_PRODUCER, conf: conf)
        // Logs go to the main queue, which the poll loop drains.
        rd_kafka_set_log_queue(rk, nil)
        self.handle = RDKafkaHandle(rk)
        self.logger = logger
        self.isTransactional = !(properties["transactional.id"] ?? "").isEmpty
        self.onStatistics = onStatistics
        self.onFatalError = onFatalError
        self.onConnectionLost = onConnectionLost
        logger.debug(
            "Kafka producer created",
            metadata: [LogKey.librdkafka: "\(Librdkafka.version)", LogKey.brokers: "\(configuration.bootstrapServers)"]
        )
        startThread("fanout.kafka.producer.poll") { [self] in runPollLoop() }
    }

    // MARK: sending

    func send(_ records: [KafkaProducerRecord]) async throws -> [KafkaAcknowledgement] {
        var acknowledgements: [KafkaAcknowledgement] = []
        acknowledgements.reserveCapacity(records.count)
        for outcome in await sendEach(records) {
            acknowledgements.append(try outcome.get())
        }
        return acknowledgements
    }

    /// Every record's own outcome, once all have settled.
    func sendEach(_ records: [KafkaProducerRecord]) async -> [Outcome] {
        guard !records.isEmpty else { return [] }
        let batchID = state.withLock { state in
            let id = state.nextBatchID
            state.nextBatchID += 1
            state.batches[id] = Batch(outcomes: Array(repeating: nil, count: records.count))
            return id
        }

        var failure: KafkaError?
        for (index, record) in records.enumerated() {
            if let failure {
                let skipped = KafkaError(
                    code: failure.code,
                    message: "record for topic '\(record.topic)' not sent: an earlier record of the batch failed",
                    isRetriable: failure.isRetriable,
                    isFatal: failure.isFatal
                )
                state.withLock { $0.batches[batchID]?.outcomes[index] = .failure(skipped) }
                continue
            }
            failure = await enqueue(record, batch: batchID, index: index)
            if let failure {
                state.withLock { $0.batches[batchID]?.outcomes[index] = .failure(failure) }
            }
        }

        let outcomes = await withCheckedContinuation { (continuation: CheckedContinuation<[Outcome?], Never>) in
            let ready = state.withLock { state -> [Outcome?]? in
                state.batches[batchID]!.isSealed = true
                if state.batches[batchID]!.outstanding == 0 {
                    return state.batches.removeValue(forKey: batchID)!.outcomes
                }
                state.batches[batchID]!.continuation = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }

        return outcomes.map { $0 ?? .failure(KafkaError(code: .fatal, message: "a record of the batch has no delivery report")) }
    }

    /// Enqueues one record, waiting for deliveries while librdkafka's queue is full.
    /// Returns the error when the record cannot be enqueued.
    private func enqueue(_ record: KafkaProducerRecord, batch: Int, index: Int) async -> KafkaError? {
        while true {
            let (id, observed) = state.withLock { state in
                let id = state.nextRecordID
                state.nextRecordID += 1
                state.records[id] = (batch, index)
                state.batches[batch]!.outstanding += 1
                return (id, state.deliveries)
            }
            let error: KafkaError?
            do {
                error = try handle.withHandle(what: "the Kafka producer") { rk in
                    Self.produce(record, id: id, rk: rk)
                }
            } catch let thrown {
                error = (thrown as? KafkaError) ?? KafkaError(code: .fatal, message: "\(thrown)")
            }
            guard let error else { return nil }
            state.withLock { state in
                state.records[id] = nil
                state.batches[batch]!.outstanding -= 1
            }
            guard error.code == .queueFull else { return error }
            await waitForCapacity(after: observed)
        }
    }

    /// Waits until a delivery report arrives after `observed`, or the next poll tick.
    private func waitForCapacity(after observed: UInt64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.deliveries != observed || state.isStopRequested { return true }
                state.capacityWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// One `rd_kafka_produceva` call: copies key, value and headers into librdkafka.
    private static func produce(_ record: KafkaProducerRecord, id: UInt, rk: OpaquePointer) -> KafkaError? {
        var headers: OpaquePointer?
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                header.value.withUnsafeBytes { value in
                    _ = rd_kafka_header_add(headers, header.key, -1, value.baseAddress, value.count)
                }
            }
        }
        let error: OpaquePointer? = record.topic.withCString { topic in
            withOptionalBytes(record.key) { key in
                record.value.withUnsafeBytes { value in
                    // At most 7 arguments, on the stack (this runs for every record).
                    withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 7) { vus in
                        var count = 0
                        func append(_ vu: rd_kafka_vu_t) {
                            vus.initializeElement(at: count, to: vu)
                            count += 1
                        }
                        var vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_TOPIC
                        vu.u.cstr = topic
                        append(vu)

                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_VALUE
                        vu.u.mem.ptr = value.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) }
                        vu.u.mem.size = value.count
                        append(vu)

                        if let key {
                            vu = rd_kafka_vu_t()
                            vu.vtype = RD_KAFKA_VTYPE_KEY
                            vu.u.mem.ptr = key.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) }
                            vu.u.mem.size = key.count
                            append(vu)
                        }
                        if let partition = record.partition {
                            vu = rd_kafka_vu_t()
                            vu.vtype = RD_KAFKA_VTYPE_PARTITION
                            vu.u.i32 = partition
                            append(vu)
                        }
                        if let headers {
                            vu = rd_kafka_vu_t()
                            vu.vtype = RD_KAFKA_VTYPE_HEADERS
                            vu.u.headers = headers
                            append(vu)
                        }
                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_MSGFLAGS
                        vu.u.i = RD_KAFKA_MSG_F_COPY
                        append(vu)

                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_OPAQUE
                        vu.u.ptr = UnsafeMutableRawPointer(bitPattern: id)
                        append(vu)

                        return rd_kafka_produceva(rk, vus.baseAddress, count)
                    }
                }
            }
        }
        guard let error else { return nil }  // librdkafka owns the headers now
        if let headers { rd_kafka_headers_destroy(headers) }
        return KafkaError(consuming: error, context: "could not produce to topic '\(record.topic)'")
    }

    // MARK: transactions

    func initTransactions(timeout: Duration) async throws {
        try await transactionCall("initialise transactions", timeout: timeout) { rk, ms in
            rd_kafka_init_transactions(rk, ms)
        }
    }

    func beginTransaction() throws {
        try requireTransactional("begin a transaction")
        try handle.withHandle(what: "the Kafka producer") { rk in
            if let error = rd_kafka_begin_transaction(rk) {
                throw KafkaError(consuming: error, context: "could not begin a transaction")
            }
        }
    }

    func commitTransaction(timeout: Duration) async throws {
        try await transactionCall("commit the transaction", timeout: timeout) { rk, ms in
            rd_kafka_commit_transaction(rk, ms)
        }
    }

    func abortTransaction(timeout: Duration) async throws {
        try await transactionCall("abort the transaction", timeout: timeout) { rk, ms in
            rd_kafka_abort_transaction(rk, ms)
        }
    }

    private func requireTransactional(_ what: String) throws {
        guard isTransactional else {
            throw KafkaError(
                code: .state,
                message: "could not \(what): the producer configuration has no 'transactional.id'",
                isRetriable: false,
                isFatal: false
            )
        }
    }

    /// Runs a blocking transactional call (returning an `rd_kafka_error_t` or nil) off the cooperative pool.
    private func transactionCall(
        _ what: String,
        timeout: Duration,
        _ call: @escaping @Sendable (OpaquePointer, Int32) -> OpaquePointer?
    ) async throws {
        try requireTransactional(what)
        let ms = milliseconds(timeout)
        try await runOffPool("fanout.kafka.producer.txn") { [handle] in
            try handle.withHandle(what: "the Kafka producer") { rk in
                if let error = call(rk, ms) {
                    throw KafkaError(consuming: error, context: "could not \(what)")
                }
            }
        }
    }

    // MARK: flush and shutdown

    func flush(timeout: Duration) async throws {
        let ms = milliseconds(timeout)
        try await runOffPool("fanout.kafka.producer.flush") { [handle] in
            try handle.withHandle(what: "the Kafka producer") { rk in
                let err = rd_kafka_flush(rk, ms)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    let left = rd_kafka_outq_len(rk)
                    throw KafkaError(err, context: "flush did not finish within \(timeout) (\(left) requests or records left)")
                }
            }
        }
    }

    func shutdown(flushTimeout: Duration) async {
        let first = state.withLock { state -> Bool in
            defer { state.isShutdownStarted = true }
            return !state.isShutdownStarted
        }
        if first {
            do {
                try await flush(timeout: flushTimeout)
            } catch {
                logger.warning("Kafka producer shutting down with undelivered records", metadata: [LogKey.kafkaError: "\(error)"])
            }
            requestStop()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.isLoopFinished { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Purges every record queued or in flight (`rd_kafka_purge`): each fails its send with `_PURGE_QUEUE` or
    /// `_PURGE_INFLIGHT` at the poll loop's next turn; an acknowledgement that comes later is ignored. Returns how
    /// many records and requests were outstanding.
    func purgeOutstanding() -> Int {
        (try? handle.withHandle(what: "the Kafka producer") { rk in
            let outstanding = Int(rd_kafka_outq_len(rk))
            rd_kafka_purge(rk, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            return outstanding
        }) ?? 0
    }

    /// Asks the poll loop to purge what is left, fail the waiting batches and destroy the handle.
    func requestStop() {
        let waiters = state.withLock { state in
            state.isStopRequested = true
            defer { state.capacityWaiters = [] }
            return state.capacityWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: the poll loop (runs on its own thread)

    private func runPollLoop() {
        let rk = handle.pointer
        let queue = rd_kafka_queue_get_main(rk)!
        while !state.withLock({ $0.isStopRequested }) {
            if let event = rd_kafka_queue_poll(queue, 100) {
                handleEvent(event)
                rd_kafka_event_destroy(event)
            } else {
                wakeCapacityWaiters()
            }
        }

        // Stopping: purge what is left; purged records get their delivery reports.
        rd_kafka_purge(rk, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline {
            if let event = rd_kafka_queue_poll(queue, 50) {
                handleEvent(event)
                rd_kafka_event_destroy(event)
            } else if rd_kafka_outq_len(rk) == 0 {
                break
            }
        }
        rd_kafka_queue_destroy(queue)
        handle.destroy()

        let (batches, waiters) = state.withLock { state in
            state.isLoopFinished = true
            let batches = state.batches.values.compactMap { batch -> ([Outcome?], CheckedContinuation<[Outcome?], Never>)? in
                guard let continuation = batch.continuation else { return nil }
                let outcomes = batch.outcomes.map { $0 ?? .failure(KafkaError.destroyed("the Kafka producer")) }
                return (outcomes, continuation)
            }
            state.batches = state.batches.filter { $0.value.continuation == nil }
            state.records = [:]
            defer { state.stopWaiters = []; state.capacityWaiters = [] }
            return (batches, state.stopWaiters + state.capacityWaiters)
        }
        for (outcomes, continuation) in batches { continuation.resume(returning: outcomes) }
        for waiter in waiters { waiter.resume() }
        logger.debug("Kafka producer closed")
    }

    private func handleEvent(_ event: OpaquePointer) {
        switch rd_kafka_event_type(event) {
        case RD_KAFKA_EVENT_DR:
            handleDeliveryReports(event)
        case RD_KAFKA_EVENT_LOG:
            RDKafkaLog.forward(event, to: logger)
        case RD_KAFKA_EVENT_ERROR:
            RDKafkaLog.forwardError(event, to: logger)
            if rd_kafka_event_error_is_fatal(event) != 0, let fatal = fatalError {
                onFatalError(fatal)
            }
            let code = rd_kafka_event_error(event)
            if code == RD_KAFKA_RESP_ERR__TRANSPORT || code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN {
                onConnectionLost()
            }
        case RD_KAFKA_EVENT_STATS:
            if let json = rd_kafka_event_stats(event), let statistics = KafkaStatistics(json: String(cString: json)) {
                onStatistics(statistics)
            }
        default:
            break
        }
    }

    private func handleDeliveryReports(_ event: OpaquePointer) {
        var reports: [(id: UInt, outcome: Outcome)] = []
        while let message = rd_kafka_event_message_next(event) {
            let m = message.pointee
            let id = UInt(bitPattern: m._private)
            let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
            if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                reports.append((id, .success(KafkaAcknowledgement(topic: topic, partition: m.partition, offset: m.offset))))
            } else {
                reports.append((id, .failure(deliveryError(m.err, topic: topic))))
            }
        }
        let (completed, waiters) = state.withLock { state in
            var completed: [([Outcome?], CheckedContinuation<[Outcome?], Never>)] = []
            for report in reports {
                guard let (batchID, index) = state.records.removeValue(forKey: report.id) else { continue }
                state.batches[batchID]!.outcomes[index] = report.outcome
                state.batches[batchID]!.outstanding -= 1
                let batch = state.batches[batchID]!
                if batch.outstanding == 0, batch.isSealed, let continuation = batch.continuation {
                    state.batches[batchID] = nil
                    completed.append((batch.outcomes, continuation))
                }
            }
            state.deliveries += UInt64(reports.count)
            defer { state.capacityWaiters = [] }
            return (completed, state.capacityWaiters)
        }
        for (outcomes, continuation) in completed { continuation.resume(returning: outcomes) }
        for waiter in waiters { waiter.resume() }
    }

    /// The error of a failed delivery. A record that failed once the producer hit a fatal error (e.g. fenced,
    /// or its sequence desynchronised with the broker) fails with that fatal error, not with its own code (a
    /// purge, or the broker's answer), which would read as one a new transaction could get past.
    private func deliveryError(_ err: rd_kafka_resp_err_t, topic: String) -> KafkaError {
        let context = "delivery to topic '\(topic)' failed"
        if var fatal = fatalError {
            fatal.message = "\(context): \(fatal.message)"
            return fatal
        }
        return KafkaError(err, context: context)
    }

    /// The fatal error librdkafka raised on this handle (`rd_kafka_fatal_error`), if any: the handle can no
    /// longer produce. Nil once the handle is destroyed.
    var fatalError: KafkaError? {
        try? handle.withHandle(what: "the Kafka producer") { rk -> KafkaError? in
            // Checked before every send: the text's buffer only once there is an error.
            guard rd_kafka_fatal_error(rk, nil, 0) != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
            var errstr = [CChar](repeating: 0, count: 512)
            let fatal = rd_kafka_fatal_error(rk, &errstr, errstr.count)
            guard fatal != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
            return KafkaError(
                code: KafkaError.Code(fatal),
                message: "fatal producer error: \(RDKafkaConfig.decode(errstr))",
                isRetriable: false,
                isFatal: true
            )
        }
    }

    /// Records enqueued and not yet delivered, with the requests in flight (`rd_kafka_outq_len`); 0 once destroyed.
    var outstanding: Int {
        (try? handle.withHandle(what: "the Kafka producer") { Int(rd_kafka_outq_len($0)) }) ?? 0
    }

    /// Raises a fatal error on the handle as a broker would (`rd_kafka_test_fatal_error`): for tests of recovery.
    func injectFatalError(_ code: KafkaError.Code, reason: String) {
        _ = try? handle.withHandle(what: "the Kafka producer") { rk in
            rd_kafka_test_fatal_error(rk, rd_kafka_resp_err_t(rawValue: code.rawValue), reason)
        }
    }

    private func wakeCapacityWaiters() {
        let waiters = state.withLock { state in
            defer { state.capacityWaiters = [] }
            return state.capacityWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Calls `body` with the bytes of `bytes`, or with `nil` when there are none.
private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}
