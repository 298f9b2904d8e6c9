import Delivery
import Foundation
import Kafka
import Router
import Settings
import StreamReader

/// What `GET /status` shows: the mode, the source stream, the routes in force and
/// why a newer routes file is not, the counts since start, and the shards.
///
/// Dates are `Date`s; the status endpoint encodes them as ISO-8601.
public struct SidecarStatus: Sendable, Encodable, Hashable {
    /// The routes in force.
    public struct Routes: Sendable, Encodable, Hashable {
        public var path: String
        /// SHA-256 of the live file's bytes.
        public var hash: String
        public var version: Int
        public var routeCount: Int
        public var topicCount: Int
        public var loadedAt: Date
        /// Successful reloads since start (the first load not counted).
        public var reloads: Int
        /// Files refused since start.
        public var reloadFailures: Int
        /// Why the newest file on disk is not live; nil once a good file is live again.
        public var lastError: String?
        public var lastErrorAt: Date?
        /// Existing topics whose partition count differs from the file's (Fanout publishes to them as they are; see
        /// `fanout topics ensure`), a line each; empty when none.
        public var topicDrift: [String] = []

        public init(
            path: String, hash: String, version: Int, routeCount: Int, topicCount: Int, loadedAt: Date,
            reloads: Int = 0, reloadFailures: Int = 0, lastError: String? = nil, lastErrorAt: Date? = nil
        ) {
            self.path = path
            self.hash = hash
            self.version = version
            self.routeCount = routeCount
            self.topicCount = topicCount
            self.loadedAt = loadedAt
            self.reloads = reloads
            self.reloadFailures = reloadFailures
            self.lastError = lastError
            self.lastErrorAt = lastErrorAt
        }

        public init(_ status: RoutesStatus) {
            self.init(
                path: status.path, hash: status.hash, version: status.version, routeCount: status.routeCount,
                topicCount: status.topicCount, loadedAt: status.loadedAt, reloads: status.reloads,
                reloadFailures: status.reloadFailures, lastError: status.lastError, lastErrorAt: status.lastErrorAt
            )
        }

        // Absent optionals are written as `null`, so every key is always present.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(path, forKey: .path)
            try container.encode(hash, forKey: .hash)
            try container.encode(version, forKey: .version)
            try container.encode(routeCount, forKey: .routeCount)
            try container.encode(topicCount, forKey: .topicCount)
            try container.encode(loadedAt, forKey: .loadedAt)
            try container.encode(reloads, forKey: .reloads)
            try container.encode(reloadFailures, forKey: .reloadFailures)
            try container.encode(lastError, forKey: .lastError)
            try container.encode(lastErrorAt, forKey: .lastErrorAt)
            try container.encode(topicDrift, forKey: .topicDrift)
        }

        private enum CodingKeys: String, CodingKey {
            case path, hash, version, routeCount, topicCount, loadedAt, reloads, reloadFailures, lastError, lastErrorAt, topicDrift
        }
    }

    /// Counts since start.
    public struct Counts: Sendable, Encodable, Hashable {
        public var recordsRead: Int
        /// Kafka records acknowledged, by topic.
        public var routedByTopic: [String: Int]
        /// Events no route selected, by event name.
        public var unroutedByEventName: [String: Int]
        public var deadLettered: Int
        public var ignored: Int

        public init(
            recordsRead: Int = 0, routedByTopic: [String: Int] = [:], unroutedByEventName: [String: Int] = [:],
            deadLettered: Int = 0, ignored: Int = 0
        ) {
            self.recordsRead = recordsRead
            self.routedByTopic = routedByTopic
            self.unroutedByEventName = unroutedByEventName
            self.deadLettered = deadLettered
            self.ignored = ignored
        }

        public init(_ counts: RouterCounts) {
            self.init(
                recordsRead: counts.recordsRead, routedByTopic: counts.routedByTopic,
                unroutedByEventName: counts.unroutedByEventName, deadLettered: counts.deadLettered, ignored: counts.ignored
            )
        }
    }

    /// The Kafka producers' state: whether they can produce, and how often a producer was replaced after a
    /// fatal error (a broker that restarted without the producer's state, say).
    public struct Producer: Sendable, Encodable, Hashable {
        /// True while every producer can produce.
        public var ok: Bool
        /// Why a producer cannot produce now (its fatal error, or why its replacement is not ready yet).
        public var failure: String?
        public var failedSince: Date?
        /// Producers replaced after a fatal error since start.
        public var rebuilds: Int
        public var lastRebuildAt: Date?
        /// Records (and requests) handed to Kafka and not yet acknowledged; during an outage, what waits.
        public var outstandingRecords: Int

        public init(_ healths: [KafkaProducerHealth], outstandingRecords: Int = 0) {
            self.outstandingRecords = outstandingRecords
            let failing = healths.first { !$0.canProduce }
            ok = failing == nil
            failure = failing?.failure
            failedSince = failing?.failedSince
            rebuilds = healths.reduce(0) { $0 + $1.rebuilds }
            lastRebuildAt = healths.compactMap(\.lastRebuildAt).max()
        }

        // Absent optionals are written as `null`, so every key is always present.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(ok, forKey: .ok)
            try container.encode(failure, forKey: .failure)
            try container.encode(failedSince, forKey: .failedSince)
            try container.encode(rebuilds, forKey: .rebuilds)
            try container.encode(lastRebuildAt, forKey: .lastRebuildAt)
            try container.encode(outstandingRecords, forKey: .outstandingRecords)
        }

        private enum CodingKeys: String, CodingKey {
            case ok, failure, failedSince, rebuilds, lastRebuildAt, outstandingRecords
        }
    }

    /// "at-least-once" or "exactly-once".
    public var mode: String
    /// The deployment's name (its checkpoint topic and transactional id).
    public var application: String
    public var streamARN: String
    public var routes: Routes
    public var counts: Counts
    public var producer = Producer([])
    /// One entry per shard being read.
    public var shards: [ShardStatusEntry]
    /// With `--leases on`: this instance's id in the lease table (absent otherwise).
    public var workerID: String?
    /// With `--leases on`: the leases this instance holds, with their epochs (absent otherwise).
    public var leases: [HeldLease]?

    public init(mode: String, application: String, streamARN: String, routes: Routes, counts: Counts, shards: [ShardStatusEntry] = []) {
        self.mode = mode
        self.application = application
        self.streamARN = streamARN
        self.routes = routes
        self.counts = counts
        self.shards = shards
    }
}

/// One shard as `GET /status` shows it.
public struct ShardStatusEntry: Sendable, Encodable, Hashable {
    /// The shard id.
    public var id: String
    /// What the reader is doing with the shard (for example "reading", "closed").
    public var state: String
    /// The last sequence number checkpointed; nil before the first checkpoint.
    public var lastSequenceNumber: String?
    public var recordsRead: Int
    /// Age of the newest record routed (now minus its approximate creation time); nil before the first record.
    public var newestRecordAgeSeconds: Double?
    /// How far routing is behind the writers now: the age of the oldest record read and not yet acknowledged, 0
    /// when caught up, else the time since the newest record routed or the shard was last caught up (the later).
    public var lagSeconds: Double?
    /// True when the shard has made no progress for longer than the reader allows.
    public var stalled: Bool
    /// The parent shard, and for a Kinesis merge the adjacent parent: read to their end before this one.
    public var parents: [String] = []
    /// Kinesis only: how far the last page was behind the tip of the stream.
    public var millisBehindLatest: Int?
    /// Seconds since the shard's checkpoint last moved; nil before the first.
    public var checkpointAgeSeconds: Double?
    /// The shard's last error (throttling, expired iterator, trimmed data, …) and how many times its data was trimmed before it was read.
    public var lastError: String?
    public var trimmedGaps: Int = 0

    public init(id: String, state: String, lastSequenceNumber: String? = nil, recordsRead: Int = 0, newestRecordAgeSeconds: Double? = nil, stalled: Bool = false) {
        self.id = id
        self.state = state
        self.lastSequenceNumber = lastSequenceNumber
        self.recordsRead = recordsRead
        self.newestRecordAgeSeconds = newestRecordAgeSeconds
        self.stalled = stalled
    }

    // Absent optionals are written as `null`, so every key is always present.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(state, forKey: .state)
        try container.encode(lastSequenceNumber, forKey: .lastSequenceNumber)
        try container.encode(recordsRead, forKey: .recordsRead)
        try container.encode(newestRecordAgeSeconds, forKey: .newestRecordAgeSeconds)
        try container.encode(lagSeconds, forKey: .lagSeconds)
        try container.encode(stalled, forKey: .stalled)
        try container.encode(parents, forKey: .parents)
        try container.encode(millisBehindLatest, forKey: .millisBehindLatest)
        try container.encode(checkpointAgeSeconds, forKey: .checkpointAgeSeconds)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(trimmedGaps, forKey: .trimmedGaps)
    }

    private enum CodingKeys: String, CodingKey {
        case id, state, lastSequenceNumber, recordsRead, newestRecordAgeSeconds, lagSeconds, stalled, parents, millisBehindLatest
        case checkpointAgeSeconds, lastError, trimmedGaps
    }
}

extension Sidecar {
    /// A snapshot of what the sidecar is doing, for `GET /status`.
    public var status: SidecarStatus {
        let now = Date()
        var status = SidecarStatus(
            mode: configuration.exactlyOnce ? "exactly-once" : "at-least-once",
            application: configuration.application,
            streamARN: streamARN,
            routes: SidecarStatus.Routes(routes.status),
            counts: SidecarStatus.Counts(pipeline.currentCounts),
            shards: streamStatus.shards.map { shard in
                var entry = ShardStatusEntry(
                    id: shard.shardID,
                    state: shard.state.rawValue,
                    lastSequenceNumber: shard.lastSequenceNumber,
                    recordsRead: shard.recordsRead,
                    newestRecordAgeSeconds: shard.newestRecordAge(now: now)?.seconds,
                    stalled: shard.isStalled
                )
                entry.lagSeconds = shard.lag(now: now)?.seconds
                entry.parents = [shard.parentShardID, shard.adjacentParentShardID].compactMap { $0 }
                entry.millisBehindLatest = shard.millisBehindLatest
                entry.checkpointAgeSeconds = shard.lastCheckpoint.map { max(0, now.timeIntervalSince($0)) }
                entry.lastError = shard.lastError
                entry.trimmedGaps = shard.trimmedGaps
                return entry
            }
        )
        status.routes.topicDrift = topicDrift.current
        status.producer = SidecarStatus.Producer(producersHealth, outstandingRecords: producers.reduce(0) { $0 + $1.outstandingRecords })
        status.workerID = leases?.workerID
        status.leases = leases?.heldLeases
        return status
    }

    /// Every Kafka producer the sidecar routes through: the main one (the transactional one in exactly-once mode
    /// without leases), and the per-shard transactional ones in exactly-once mode with leases.
    var producers: [KafkaProducer] {
        [producer] + (transactions?.perShardProducers ?? [])
    }

    var producersHealth: [KafkaProducerHealth] {
        producers.map(\.health)
    }

    /// Whether the sidecar can do its job: routes loaded, Kafka answering (checked in the background every
    /// 10 s), every producer able to produce (not failed for good and waiting for its replacement), the stream
    /// describable, and no stalled shard.
    public func readiness() -> Readiness {
        let stream = streamStatus
        let kafka = kafkaHealth
        let producerStatus = SidecarStatus.Producer(producersHealth)
        let routes = self.routes.status
        return Readiness(checks: [
            Readiness.Check(
                name: "routes", ok: true,
                detail: "hash \(routes.hash.prefix(12)) loaded" + (routes.lastError.map { "; newer file refused: \($0)" } ?? "")
            ),
            Readiness.Check(name: "kafka", ok: kafka.ok, detail: kafka.detail),
            Readiness.Check(
                name: "producer", ok: producerStatus.ok,
                detail: producerStatus.failure.map { "cannot produce: \($0)" }
                    ?? "producing (\(producerStatus.rebuilds) replaced after a fatal error since start)"
            ),
            Readiness.Check(
                name: "aws", ok: stream.lastDiscoveryError == nil && stream.lastDiscovery != nil,
                detail: stream.lastDiscoveryError ?? (stream.lastDiscovery == nil ? "the stream was not described yet" : "DescribeStream answered")
            ),
            Readiness.Check(
                name: "shards", ok: stream.stalledShardIDs.isEmpty,
                detail: stream.stalledShardIDs.isEmpty ? "\(stream.shards.count) shards, none stalled" : "stalled: \(stream.stalledShardIDs.joined(separator: ", "))"
            ),
        ])
    }
}
