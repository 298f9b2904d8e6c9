import AsyncHTTPClient
import Contracts
import Delivery
import Foundation
import Kafka
import Logging
import Metrics
import Prometheus
import Router
import ServiceLifecycle
import Settings
import StreamReader
import Synchronization
import UnixSignals

/// The sidecar's long-running parts, each a swift-service-lifecycle `Service` of one `ServiceGroup`, listed
/// in the order data flows through them from the producer's side: the group starts them in this order and
/// shuts them down in reverse. A graceful shutdown (SIGTERM, SIGINT, ``Sidecar/requestStop()``, or the
/// reader ending) therefore stops the readers first (each shard finishes its page: routing drains, the page
/// is delivered, its checkpoint written), then the monitors and the routes reloader, then releases the
/// leases, and last flushes and closes the producer and the clients.
extension Sidecar {
    /// The services, in flow order (the producer first: it closes last).
    func services() -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: DeliveryService(sidecar: self))]
        if let leases { services.append(.init(service: LeaseService(leases: leases, reader: reader))) }
        services.append(.init(service: reloader))
        services.append(.init(service: MonitorService(sidecar: self)))
        // The reader ending (a failure, or a stop asked for) shuts the others down in order.
        services.append(.init(service: ReaderService(sidecar: self), successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        return services
    }

    /// Reads and routes until `requestStop()` (or the graceful shutdown of the task running it, as a service),
    /// reloading the routes file when it changes (and on SIGHUP when made with `reloadOnHangup`); then shuts
    /// down in reverse flow order (see ``services()``).
    public func run() async throws {
        try await runServices(services(), gracefulShutdownSignals: [])
    }

    /// Stops reading: each shard finishes and checkpoints its current page, then the other services stop in
    /// reverse flow order and `run()` returns.
    public func requestStop() {
        reader.requestStop()
    }

    private func runServices(_ services: [ServiceGroupConfiguration.ServiceConfiguration], gracefulShutdownSignals: [UnixSignal]) async throws {
        logger.info("routing", metadata: [LogKey.stream: "\(streamARN)"])
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        // Draining is bounded: after 30 s the shutdown escalates to cancellation (what was checkpointed stays checkpointed).
        configuration.maximumGracefulShutdownDuration = .seconds(30)
        try await ServiceGroup(configuration: configuration).run()
        logger.info("stopped", metadata: [LogKey.records: "\(pipeline.currentCounts.recordsRead)"])
    }

    /// Runs until SIGTERM or SIGINT, then stops gracefully. With `statusPort`, serves `/healthz`, `/readyz`,
    /// `/status` and `/metrics` there (on `statusHost`) until the sidecar has drained (services stop in reverse order).
    public func runUntilSignalled(statusPort: Int? = nil, statusHost: String = "0.0.0.0", metrics: PrometheusCollectorRegistry? = nil) async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let statusPort {
            let application = makeStatusApplication(
                port: statusPort,
                host: statusHost,
                status: { [self] in self.status },
                readiness: { [self] in self.readiness() },
                metrics: metrics ?? PrometheusCollectorRegistry(),
                logger: logger,
                onServerRunning: { [logger] port in logger.info("status endpoint listening", metadata: [LogKey.httpPort: "\(port)"]) }
            )
            services.append(.init(service: application))
        }
        services += self.services()
        let secondSignal = Task { [logger] in
            // The first SIGTERM/SIGINT starts the graceful shutdown (the service group traps it too);
            // a second one means "now": exit at once. Checkpoints already written stay written; records
            // not yet acknowledged were never checkpointed, so the next start reads them again.
            var received = 0
            var deadline: Task<Void, Never>?
            defer { deadline?.cancel() }
            for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                received += 1
                guard received >= 2 else {
                    logger.info(
                        "shutting down: each shard finishes its page (Kafka has \(Sidecar.drainLimit.components.seconds) s to acknowledge it), then the leases are released and the producer closes; exit within \(Sidecar.shutdownLimit.components.seconds) s",
                        metadata: [LogKey.signal: "\(signal)"]
                    )
                    // Whatever a broker or AWS is doing, the process ends within the bound: past it, exit at once.
                    deadline = Task {
                        guard (try? await Task.sleep(for: Sidecar.shutdownLimit)) != nil else { return }
                        logger.warning(
                            "the shutdown did not finish within \(Sidecar.shutdownLimit.components.seconds) s: exiting now; checkpoints written stay written, what was not acknowledged is read again at the next start"
                        )
                        _exit(0)
                    }
                    continue
                }
                logger.warning("second signal: exiting at once without draining", metadata: [LogKey.signal: "\(signal)"])
                // _exit: no atexit handlers, which could run while librdkafka's threads still work.
                _exit(128 + signal.rawValue)
            }
        }
        defer { secondSignal.cancel() }
        try await runServices(services, gracefulShutdownSignals: [.sigterm, .sigint])
    }
}

/// The producer's side (first started, last stopped): waits for the graceful shutdown, then flushes and
/// closes the transactional producers and the producer (every record queued is delivered or reported),
/// the admin client and the HTTP client.
struct DeliveryService: Service {
    let sidecar: Sidecar

    func run() async throws {
        // Cancelled (the shutdown overran its bound) or not: close what is open. The readers have stopped, so
        // what is left to flush is little (their pages were acknowledged, or abandoned at the drain limit).
        try? await gracefulShutdown()
        await sidecar.transactions?.shutdown()
        await sidecar.producer.shutdown(flushTimeout: .seconds(5))
        sidecar.admin.close()
        try? await sidecar.httpClient.shutdown()
        sidecar.logger.info("producer flushed and closed")
    }
}

/// The lease coordinator: renews, balances and takes leases until the shutdown; then (the readers having
/// checkpointed every shard) releases every lease, so the other instances take them at once.
struct LeaseService: Service {
    let leases: LeaseCoordinator
    let reader: ShardedStreamReader

    func run() async throws {
        await withGracefulShutdownHandler {
            await leases.run(reader: reader)
        } onGracefulShutdown: {
            leases.requestStop()
        }
    }
}

/// The readers (last started, first stopped): every shard read and each page routed, delivered and
/// checkpointed; on shutdown each shard finishes its page and checkpoints it before `run` returns.
///
/// A page Kafka does not acknowledge within ``Sidecar/drainLimit`` of the shutdown (a broker down or frozen) is
/// abandoned: its records are purged from the producers and it is not checkpointed, so the next start reads it
/// again (at-least-once: consumers may see it twice; exactly-once: its transaction is aborted).
struct ReaderService: Service {
    let sidecar: Sidecar

    func run() async throws {
        let drain = Mutex<Task<Void, Never>?>(nil)
        defer { drain.withLock { $0?.cancel() } }
        try await withGracefulShutdownHandler {
            try await sidecar.reader.run(process: sidecar.pipeline.process)
        } onGracefulShutdown: {
            sidecar.reader.requestStop()
            drain.withLock {
                $0 = Task { [sidecar] in
                    guard (try? await Task.sleep(for: Sidecar.drainLimit)) != nil else { return }
                    sidecar.abandonUndelivered()
                }
            }
        }
        sidecar.logger.info("stream reader stopped: every shard checkpointed up to what Kafka acknowledged")
    }
}

extension Sidecar {
    /// How long a shutdown waits for the pages in flight to be acknowledged before abandoning them.
    static let drainLimit: Duration = .seconds(20)
    /// The longest a SIGTERM or SIGINT shutdown takes: past it the process exits at once (README: within 30 s).
    static let shutdownLimit: Duration = .seconds(28)

    /// Purges what the producers still hold (the readers are stopping and cannot wait any longer for Kafka).
    func abandonUndelivered() {
        let abandoned = producers.reduce(0) { $0 + $1.abandonOutstanding() }
        logger.warning(
            "Kafka did not acknowledge the pages in flight within \(Sidecar.drainLimit.components.seconds) s of the shutdown: their records are left unacknowledged, not checkpointed, and read again at the next start",
            metadata: [LogKey.records: "\(abandoned)"]
        )
    }
}

/// The monitors: producer statistics and per-shard gauges into the metrics, a periodic check of Kafka for
/// `/readyz`. They hold nothing to flush: cancelled at the shutdown.
struct MonitorService: Service {
    let sidecar: Sidecar

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await sidecar.recordKafkaStatistics() }
                group.addTask { await sidecar.checkKafkaPeriodically() }
                group.addTask { await sidecar.recordShardMetrics() }
            }
        }
    }
}

extension Sidecar {
    /// librdkafka's statistics (every `statistics.interval.ms`, 10 s by default) as gauges.
    fileprivate func recordKafkaStatistics() async {
        let queuedMessages = Metrics.Gauge(label: "fanout_kafka_producer_queue_messages")
        let queuedBytes = Metrics.Gauge(label: "fanout_kafka_producer_queue_bytes")
        let sent = Metrics.Gauge(label: "fanout_kafka_producer_sent_messages")
        let retries = Metrics.Gauge(label: "fanout_kafka_producer_retries")
        var roundTrips: [String: Metrics.Gauge] = [:]
        for await statistics in producer.statistics {
            queuedMessages.record(statistics.queuedMessages)
            queuedBytes.record(statistics.queuedBytes)
            sent.record(statistics.sentMessages)
            retries.record(statistics.retries)
            for (name, broker) in statistics.brokers where broker.nodeID >= 0 {
                let gauge = roundTrips[name] ?? Metrics.Gauge(label: "fanout_kafka_broker_rtt_seconds", dimensions: [("broker", name)])
                roundTrips[name] = gauge
                gauge.record(Double(broker.averageRoundTripMicroseconds) / 1_000_000)
            }
        }
    }

   /// Per-shard lag as gauges, from the reader's status, every 5 s: the age of the newest record read,
    /// the age of the last checkpoint, and whether the shard is stalled; plus trimmed gaps in total. A shard's
    /// series exist while it is read or waits for its parent, and are removed once it is finished or not held.
    fileprivate func recordShardMetrics() async {
        var gauges: [String: (age: Metrics.Gauge, lag: Metrics.Gauge, checkpointAge: Metrics.Gauge, stalled: Metrics.Gauge)] = [:]
        let gaps = Metrics.Gauge(label: "fanout_stream_trimmed_gaps")
        let stalledShards = Metrics.Gauge(label: "fanout_stream_stalled_shards")
        while !Task.isCancelled {
            let status = reader.status
            let now = Date()
            // A finished shard, or one whose lease this worker does not hold, has no series here (its owner has
            // them): the series of one that was read is removed, so dead shards do not pile up in /metrics.
            let live = status.shards.filter { $0.state == .reading || $0.state == .waitingForParent }
            let liveIDs = Set(live.map(\.shardID))
            for (shardID, retired) in gauges where !liveIDs.contains(shardID) {
                retired.age.destroy()
                retired.lag.destroy()
                retired.checkpointAge.destroy()
                retired.stalled.destroy()
                gauges[shardID] = nil
            }
            for shard in live {
                let shardGauges = gauges[shard.shardID] ?? (
                    Metrics.Gauge(label: "fanout_shard_newest_record_age_seconds", dimensions: [("shard", shard.shardID)]),
                    Metrics.Gauge(label: "fanout_shard_lag_seconds", dimensions: [("shard", shard.shardID)]),
                    Metrics.Gauge(label: "fanout_shard_checkpoint_age_seconds", dimensions: [("shard", shard.shardID)]),
                    Metrics.Gauge(label: "fanout_shard_stalled", dimensions: [("shard", shard.shardID)])
                )
                gauges[shard.shardID] = shardGauges
                if let age = shard.newestRecordAge(now: now) { shardGauges.age.record(age.seconds) }
                if let lag = shard.lag(now: now) { shardGauges.lag.record(lag.seconds) }
                if let checkpoint = shard.lastCheckpoint {
                    shardGauges.checkpointAge.record(now.timeIntervalSince(checkpoint))
                }
                shardGauges.stalled.record(shard.isStalled ? 1 : 0)
            }
            gaps.record(status.trimmedGaps)
            stalledShards.record(status.stalledShardIDs.count)
            do {
                try await Task.sleep(for: .seconds(5))
            } catch {
                return
            }
        }
    }

    /// Asks Kafka for its topics every 10 s (the readiness check), and logs an outage once when it begins (a
    /// clearer line than librdkafka's own) and once when it ends, with how long it lasted.
    fileprivate func checkKafkaPeriodically() async {
        var outageSince: ContinuousClock.Instant?
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(10))
                let topics = try await admin.listTopics(timeout: .seconds(5))
                kafkaCheck.withLock { $0 = (true, "\(topics.count) topics visible at \(configuration.brokers)") }
                if let since = outageSince {
                    outageSince = nil
                    logger.info(
                        "Kafka is reachable again after \((ContinuousClock.now - since).components.seconds) s",
                        metadata: [LogKey.brokers: "\(configuration.brokers)"]
                    )
                }
            } catch is CancellationError {
                return
            } catch {
                kafkaCheck.withLock { $0 = (false, "\(configuration.brokers): \(error)") }
                if outageSince == nil {
                    // The outage began at most one check interval ago.
                    outageSince = .now - .seconds(10)
                    logger.warning(
                        "Kafka is unreachable: the brokers did not answer a metadata request within 5 s; pages wait (nothing is checkpointed until Kafka acknowledges them)",
                        metadata: [LogKey.brokers: "\(configuration.brokers)", LogKey.error: "\(error)"]
                    )
                }
            }
        }
    }
}
