import CQRSCore
import Contracts
import Foundation
import Kafka
import Logging
import Synchronization

/// One run of a ``SubscriberGroup``: the consumer, the per-key chains of work, the
/// per-partition commit frontier, the dead-letter producer and ledger.
final class GroupRun: Sendable {
    struct PartitionState {
        /// Offsets taken for handling and not finished (handled or dead-lettered) yet.
        var unfinished: Set<Int64> = []
        /// Tasks of the partition still running.
        var running = 0
        /// One past the highest offset taken.
        var next: Int64?
        var committed: Int64?
        /// The offset to commit: every event below it is finished.
        var frontier: Int64? { unfinished.min() ?? next }
    }

    struct State {
        var partitions: [KafkaTopicPartition: PartitionState] = [:]
        var assigned: Set<KafkaTopicPartition> = []
        var revoked: Set<KafkaTopicPartition> = []
        /// The last task of each chain (a key, or a partition for records without key).
        var chains: [String: (id: Int, task: Task<Void, Never>)] = [:]
        var nextTaskID = 0
        var slotsInUse = 0
        var slotWaiters: [CheckedContinuation<Void, Never>] = []
        var isStopping = false
        var isCommitting = false
        var catchUpRequests = 0
        var ledger = DeadLetterLedger()
        var scheduledRetries: Set<String> = []
    }

    enum Outcome {
        case handled
        case failed(error: String, attempts: Int)
        case stopped
    }

    let group: SubscriberGroup
    let logger: Logger
    let producerConfiguration: KafkaConfiguration
    let state = Mutex(State())
    /// Set once in `run()`, before any task uses it.
    let producer = Mutex<KafkaProducer?>(nil)

    init(group: SubscriberGroup) {
        self.group = group
        self.logger = group.logger
        var configuration = group.configuration
        configuration.properties["group.id"] = nil
        self.producerConfiguration = configuration
    }

    var isStopping: Bool { state.withLock { $0.isStopping } }

    func run() async throws {
        let admin = try KafkaAdmin(configuration: producerConfiguration, logger: logger)
        do {
            try await admin.createTopics([KafkaTopicSpecification(name: group.deadLetterTopic, partitions: 1)])
            admin.close()
        } catch {
            admin.close()
            throw error
        }
        let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        self.producer.withLock { $0 = producer }
        // The parked aggregates and pending retries of earlier runs.
        do {
            try await catchUp()
        } catch {
            await producer.shutdown()
            throw error
        }
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(
                configuration: group.configuration,
                topics: group.topics,
                rebalanceListener: KafkaRebalanceListener(
                    assigned: { [self] in assigned($0) },
                    revoking: { [self] in revoking($0) }
                ),
                logger: logger
            )
        } catch {
            await producer.shutdown()
            throw error
        }
        logger.info("subscriber group started", metadata: [
            LogKey.topics: "\(group.topics.joined(separator: ","))", LogKey.deadLetterTopic: "\(group.deadLetterTopic)",
        ])
        let committer = Task { await commitLoop(consumer) }
        let tail = Task { await tailLoop() }
        var failure: (any Error)?
        await withTaskCancellationHandler {
            do {
                for try await message in consumer.messages {
                    await dispatch(message)
                }
            } catch {
                failure = error
            }
        } onCancel: {
            state.withLock { $0.isStopping = true }
            Task { await self.finishAndClose(consumer) }
        }
        state.withLock { $0.isStopping = true }
        await finishAndClose(consumer)
        committer.cancel()
        tail.cancel()
        for task in state.withLock({ $0.chains.values.map(\.task) }) { await task.value }
        await producer.shutdown()
        logger.info("subscriber group stopped")
        if let failure { throw failure }
    }

    // MARK: dispatching

    private func dispatch(_ message: KafkaConsumerMessage) async {
        while state.withLock({ $0.catchUpRequests > 0 }), !isStopping {
            do {
                try await catchUp()
            } catch {
                logger.warning("could not read the dead-letter topic; retrying", metadata: [LogKey.error: "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
        await acquireSlot()
        let partition = KafkaTopicPartition(topic: message.topic, partition: message.partition)
        let chain = message.key.map { "k:" + String(decoding: $0, as: UTF8.self) } ?? "p:\(partition)"
        let accepted = state.withLock { state -> Bool in
            guard !state.revoked.contains(partition), !state.isStopping else { return false }
            state.partitions[partition, default: PartitionState()].unfinished.insert(message.offset)
            state.partitions[partition]!.running += 1
            state.partitions[partition]!.next = max(state.partitions[partition]!.next ?? 0, message.offset + 1)
            let previous = state.chains[chain]?.task
            let id = state.nextTaskID
            state.nextTaskID += 1
            let task = Task {
                await previous?.value
                let finished = await self.process(message)
                self.finish(partition: partition, offset: message.offset, finished: finished, chain: chain, id: id)
            }
            state.chains[chain] = (id, task)
            return true
        }
        if !accepted { releaseSlot() }
    }

    private func finish(partition: KafkaTopicPartition, offset: Int64, finished: Bool, chain: String, id: Int) {
        state.withLock { state in
            if finished { state.partitions[partition]?.unfinished.remove(offset) }
            state.partitions[partition]?.running -= 1
            if state.chains[chain]?.id == id { state.chains[chain] = nil }
        }
        releaseSlot()
    }

    private func acquireSlot() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.slotsInUse < group.maximumConcurrency {
                    state.slotsInUse += 1
                    return true
                }
                state.slotWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    private func releaseSlot() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if !state.slotWaiters.isEmpty { return state.slotWaiters.removeFirst() }  // the slot passes on
            state.slotsInUse -= 1
            return nil
        }
        waiter?.resume()
    }

    /// Handles one record; returns whether it is finished (handled or dead-lettered).
    private func process(_ message: KafkaConsumerMessage) async -> Bool {
        if isStopping { return false }
        let event: GenericDomainEventMessage
        do {
            event = try GenericDomainEventMessage(jsonBytes: message.value)
        } catch {
            return await deadLetter(message, kind: .notAnEvent, reason: "not a Fanout event: \(error)", attempts: 0)
        }
        if group.isSequencedParkingEnabled, let key = message.key.map({ String(decoding: $0, as: UTF8.self) }),
            let behind = state.withLock({ $0.ledger.unresolved[key]?.first?.offset })
        {
            return await deadLetter(message, kind: .parked, reason: "parked behind dead letter \(behind) of its aggregate", attempts: 0, parkedBehind: behind)
        }
        switch await handle(event, message) {
        case .handled: return true
        case .stopped: return false
        case .failed(let error, let attempts):
            return await deadLetter(message, kind: .failed, reason: error, attempts: attempts)
        }
    }

    /// Runs every matching handler, each with its retries.
    private func handle(_ event: GenericDomainEventMessage, _ message: KafkaConsumerMessage) async -> Outcome {
        let context = EventContext(
            topic: message.topic, partition: message.partition, offset: message.offset,
            key: message.key.map { String(decoding: $0, as: UTF8.self) }, headers: message.headers,
            timestamp: message.timestamp
        )
        for subscription in group.subscriptions(for: message.topic, eventName: event.eventName) {
            var attempt = 1
            var backoff = group.retryBackoff
            while true {
                do {
                    try await subscription.handler(event, context)
                    break
                } catch {
                    guard attempt < group.maximumAttempts else { return .failed(error: "\(error)", attempts: attempt) }
                    if isStopping { return .stopped }
                    logger.info("handler failed; retrying", metadata: [
                        LogKey.event: "\(event.eventName)", LogKey.attempt: "\(attempt)", LogKey.error: "\(error)",
                    ])
                    try? await Task.sleep(for: backoff)
                    if isStopping { return .stopped }
                    backoff = min(backoff * 2, .seconds(5))
                    attempt += 1
                }
            }
        }
        return .handled
    }

    // MARK: dead letters

    private func deadLetter(
        _ message: KafkaConsumerMessage, kind: DeadLetterKind, reason: String, attempts: Int, parkedBehind: Int64? = nil
    ) async -> Bool {
        var headers = message.headers.filter { !$0.key.hasPrefix("fanout-dlq-") }
        headers += [
            KafkaHeader(key: DeadLetterHeader.kind, string: kind.rawValue),
            KafkaHeader(key: DeadLetterHeader.reason, string: reason),
            KafkaHeader(key: DeadLetterHeader.attempts, string: String(attempts)),
            KafkaHeader(key: DeadLetterHeader.group, string: group.name),
            KafkaHeader(key: DeadLetterHeader.originTopic, string: message.topic),
            KafkaHeader(key: DeadLetterHeader.originPartition, string: String(message.partition)),
            KafkaHeader(key: DeadLetterHeader.originOffset, string: String(message.offset)),
            KafkaHeader(key: DeadLetterHeader.time, string: Date().formatted(.iso8601)),
        ]
        if let parkedBehind { headers.append(KafkaHeader(key: DeadLetterHeader.parkedBehind, string: String(parkedBehind))) }
        let ok = await write(KafkaProducerRecord(topic: group.deadLetterTopic, key: message.key, value: message.value, headers: headers, partition: 0))
        if ok {
            logger.warning("event dead-lettered", metadata: [
                LogKey.kind: "\(kind.rawValue)", LogKey.topic: "\(message.topic)", LogKey.partition: "\(message.partition)",
                LogKey.offset: "\(message.offset)", LogKey.attempts: "\(attempts)", LogKey.error: "\(reason)",
            ])
        }
        return ok
    }

    /// Writes a record to the dead-letter topic, retrying until it is acknowledged (or the
    /// group stops), and applies it to the ledger.
    private func write(_ record: KafkaProducerRecord) async -> Bool {
        guard let producer = producer.withLock({ $0 }) else { return false }
        while true {
            do {
                let ack = try await producer.send([record])[0]
                let entry = DeadLetterEntry(KafkaConsumerMessage(
                    topic: record.topic, partition: ack.partition, offset: ack.offset, key: record.key, value: record.value, headers: record.headers
                ))
                state.withLock { $0.ledger.apply(entry) }
                return true
            } catch {
                if isStopping { return false }
                logger.warning("could not write to the dead-letter topic; retrying", metadata: [LogKey.topic: "\(record.topic)", LogKey.error: "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Reads the dead-letter topic from where the ledger stands to its end, then starts the
    /// retries requested for aggregates this member owns.
    func catchUp() async throws {
        let (from, requests) = state.withLock { ($0.ledger.nextOffset, $0.catchUpRequests) }
        let records = try await KafkaTopicReader.readToEnd(
            topic: group.deadLetterTopic, from: [0: from], configuration: producerConfiguration, logger: logger
        )
        state.withLock { state in
            for record in records where record.partition == 0 { state.ledger.applyRead(DeadLetterEntry(record)) }
            state.catchUpRequests -= requests
        }
        scheduleRetries()
    }

    private func tailLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            if Task.isCancelled || isStopping { return }
            do {
                try await catchUp()
            } catch {
                logger.debug("could not read the dead-letter topic", metadata: [LogKey.error: "\(error)"])
            }
        }
    }

    // MARK: retries of dead letters

    /// Starts, on the key's chain, each requested retry whose first unresolved entry came
    /// from a partition this member owns; answers requests for keys with nothing unresolved.
    private func scheduleRetries() {
        let unanswered = state.withLock { state -> [String] in
            var unanswered: [String] = []
            for key in state.ledger.pendingRetries where !state.scheduledRetries.contains(key) && !state.isStopping {
                guard let first = state.ledger.unresolved[key]?.first else {
                    unanswered.append(key)
                    state.scheduledRetries.insert(key)
                    continue
                }
                let origin = KafkaTopicPartition(topic: first.originTopic ?? "", partition: first.originPartition ?? -1)
                guard state.assigned.contains(origin), !state.revoked.contains(origin) else { continue }
                state.scheduledRetries.insert(key)
                state.partitions[origin, default: PartitionState()].running += 1
                let chain = "k:" + key
                let previous = state.chains[chain]?.task
                let id = state.nextTaskID
                state.nextTaskID += 1
                let task = Task {
                    await previous?.value
                    await self.retry(key)
                    self.state.withLock { state in
                        state.partitions[origin]?.running -= 1
                        state.scheduledRetries.remove(key)
                        if state.chains[chain]?.id == id { state.chains[chain] = nil }
                    }
                }
                state.chains[chain] = (id, task)
            }
            return unanswered
        }
        for key in unanswered {
            Task {
                _ = await self.writeMarker(key: key, kind: .resolved, resolves: [], reason: "nothing to retry")
                self.state.withLock { _ = $0.scheduledRetries.remove(key) }
            }
        }
    }

    /// Runs the key's unresolved entries again, in order; a marker records the outcome.
    private func retry(_ key: String) async {
        let entries = state.withLock { $0.ledger.unresolved[key] ?? [] }
        logger.info("retrying dead letters", metadata: [LogKey.key: "\(key)", LogKey.entries: "\(entries.count)"])
        var resolved: [Int64] = []
        for entry in entries {
            let message = entry.originalMessage
            let outcome: Outcome
            do {
                outcome = await handle(try GenericDomainEventMessage(jsonBytes: entry.value), message)
            } catch {
                outcome = .failed(error: "not a Fanout event: \(error)", attempts: 0)
            }
            switch outcome {
            case .handled:
                resolved.append(entry.offset)
            case .stopped:
                _ = await writeMarker(key: key, kind: .retryFailed, resolves: resolved, reason: "the group stopped during the retry")
                return
            case .failed(let error, _):
                _ = await writeMarker(key: key, kind: .retryFailed, resolves: resolved, reason: error)
                logger.warning("retry of dead letters failed again", metadata: [LogKey.key: "\(key)", LogKey.error: "\(error)"])
                return
            }
        }
        _ = await writeMarker(key: key, kind: .resolved, resolves: resolved, reason: "handled on retry")
        logger.info("dead letters resolved", metadata: [LogKey.key: "\(key)", LogKey.entries: "\(resolved.count)"])
    }

    private func writeMarker(key: String, kind: DeadLetterKind, resolves: [Int64], reason: String) async -> Bool {
        await write(KafkaProducerRecord(
            topic: group.deadLetterTopic, key: Array(key.utf8), value: [],
            headers: [
                KafkaHeader(key: DeadLetterHeader.kind, string: kind.rawValue),
                KafkaHeader(key: DeadLetterHeader.resolves, string: resolves.map(String.init).joined(separator: ",")),
                KafkaHeader(key: DeadLetterHeader.reason, string: reason),
                KafkaHeader(key: DeadLetterHeader.group, string: group.name),
                KafkaHeader(key: DeadLetterHeader.time, string: Date().formatted(.iso8601)),
            ],
            partition: 0
        ))
    }

    // MARK: commits and rebalances

    private func commitLoop(_ consumer: KafkaConsumer) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            _ = await commitFrontiers(consumer)
        }
    }

    /// Commits every partition whose frontier moved; false when another commit was in progress or
    /// a commit failed (it is retried on the next call).
    @discardableResult
    private func commitFrontiers(_ consumer: KafkaConsumer) async -> Bool {
        let work = state.withLock { state -> [KafkaAcknowledgement]? in
            guard !state.isCommitting else { return nil }
            let work = state.partitions.compactMap { partition, value -> KafkaAcknowledgement? in
                guard !state.revoked.contains(partition), let frontier = value.frontier, frontier != value.committed else { return nil }
                return KafkaAcknowledgement(topic: partition.topic, partition: partition.partition, offset: frontier)
            }
            state.isCommitting = !work.isEmpty
            return work
        }
        guard let work else { return false }
        guard !work.isEmpty else { return true }
        var failed = false
        for offset in work {
            do {
                try await consumer.commit(topic: offset.topic, partition: offset.partition, offset: offset.offset)
                state.withLock { $0.partitions[KafkaTopicPartition(topic: offset.topic, partition: offset.partition)]?.committed = offset.offset }
                group.onCommit?(offset)
            } catch {
                failed = true
                logger.debug("commit failed; retried on the next round", metadata: [LogKey.topic: "\(offset.topic)", LogKey.error: "\(error)"])
            }
        }
        state.withLock { $0.isCommitting = false }
        return !failed
    }

    /// Shutdown: waits (at most 30 s) for the running events, commits, and leaves the group.
    private func finishAndClose(_ consumer: KafkaConsumer) async {
        let deadline = ContinuousClock.now + .seconds(30)
        while state.withLock({ $0.partitions.values.contains { $0.running > 0 } }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        // A commit refused while the group rebalances (another member just left, say) is retried until
        // the rebalance is over: the consumer still serves it, and a partition revoked meanwhile is
        // committed by the revocation. Without this the finished events were handled again next time.
        while !(await commitFrontiers(consumer)), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        await consumer.close()
    }

    /// On the consumer's poll thread.
    private func assigned(_ partitions: [KafkaTopicPartition]) {
        state.withLock { state in
            state.assigned.formUnion(partitions)
            state.revoked.subtract(partitions)
            for partition in partitions { state.partitions[partition] = PartitionState() }
            // Another member may have dead-lettered or parked events of these partitions.
            state.catchUpRequests += 1
        }
    }

    /// On the consumer's poll thread: stops taking the partitions' records, waits (at most
    /// 30 s) for their running events and for a commit in progress, and returns their frontiers.
    private func revoking(_ partitions: [KafkaTopicPartition]) -> [KafkaAcknowledgement] {
        state.withLock { state in
            state.revoked.formUnion(partitions)
            state.assigned.subtract(partitions)
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let busy = state.withLock { state in
                state.isCommitting || partitions.contains { (state.partitions[$0]?.running ?? 0) > 0 }
            }
            if !busy { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return state.withLock { state in
            partitions.compactMap { partition in
                guard let value = state.partitions.removeValue(forKey: partition), let frontier = value.frontier, frontier != value.committed else { return nil }
                return KafkaAcknowledgement(topic: partition.topic, partition: partition.partition, offset: frontier)
            }
        }
    }
}
