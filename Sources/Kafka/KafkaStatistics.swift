import Foundation

/// The top-level numbers of one librdkafka statistics report (emitted every
/// `statistics.interval.ms`; see librdkafka's STATISTICS.md).
public struct KafkaStatistics: Sendable, Hashable {
    /// One broker's numbers.
    public struct Broker: Sendable, Hashable {
        /// `name`, e.g. `127.0.0.1:9092/1`.
        public var name: String
        /// `nodeid`: the broker id (-1 for a bootstrap broker not yet identified).
        public var nodeID: Int
        /// `state`, e.g. `UP`, `DOWN`, `INIT`.
        public var state: String
        /// `rtt.avg`: the average request round-trip time in microseconds (0 without requests).
        public var averageRoundTripMicroseconds: Int64
        /// `outbuf_cnt`: requests waiting to be sent.
        public var requestsWaiting: Int64
        /// `waitresp_cnt`: requests sent and waiting for a response.
        public var requestsInFlight: Int64
        /// `txretries`: requests retried (a Produce error answered by the broker re-enqueues
        /// the records instead: see `sentMessages` growing past the records sent).
        public var retries: Int64

        public init(
            name: String,
            nodeID: Int,
            state: String,
            averageRoundTripMicroseconds: Int64,
            requestsWaiting: Int64,
            requestsInFlight: Int64,
            retries: Int64 = 0
        ) {
            self.name = name
            self.nodeID = nodeID
            self.state = state
            self.averageRoundTripMicroseconds = averageRoundTripMicroseconds
            self.requestsWaiting = requestsWaiting
            self.requestsInFlight = requestsInFlight
            self.retries = retries
        }
    }

    /// `name`: the client instance's name.
    public var clientName: String
    /// `ts`: librdkafka's monotonic clock at the report, in microseconds.
    public var timestampMicroseconds: Int64
    /// `msg_cnt`: records in the producer's queues (not yet delivered).
    public var queuedMessages: Int64
    /// `msg_size`: bytes of the records in the producer's queues.
    public var queuedBytes: Int64
    /// `txmsgs`: records sent to brokers since the client started.
    public var sentMessages: Int64
    /// `txmsg_bytes`: bytes of records sent to brokers.
    public var sentMessageBytes: Int64
    /// `rxmsgs`: records received from brokers (consumers).
    public var receivedMessages: Int64
    /// `tx`: requests sent to brokers.
    public var sentRequests: Int64
    /// `replyq`: operations (delivery reports, events) waiting to be polled.
    public var replyQueue: Int64
    /// The sum of the brokers' `txretries`: requests retried.
    public var retries: Int64 {
        brokers.values.reduce(0) { $0 + $1.retries }
    }
    /// `brokers`, by broker name.
    public var brokers: [String: Broker]

    /// Parses librdkafka's statistics JSON; nil when it is not a JSON object.
    public init?(json: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return nil }
        func int(_ dict: [String: Any], _ key: String) -> Int64 {
            (dict[key] as? NSNumber)?.int64Value ?? 0
        }
        clientName = object["name"] as? String ?? ""
        timestampMicroseconds = int(object, "ts")
        queuedMessages = int(object, "msg_cnt")
        queuedBytes = int(object, "msg_size")
        sentMessages = int(object, "txmsgs")
        sentMessageBytes = int(object, "txmsg_bytes")
        receivedMessages = int(object, "rxmsgs")
        sentRequests = int(object, "tx")
        replyQueue = int(object, "replyq")
        var brokers: [String: Broker] = [:]
        for case let (name, value as [String: Any]) in object["brokers"] as? [String: Any] ?? [:] {
            let rtt = value["rtt"] as? [String: Any] ?? [:]
            brokers[name] = Broker(
                name: name,
                nodeID: Int(int(value, "nodeid")),
                state: value["state"] as? String ?? "",
                averageRoundTripMicroseconds: int(rtt, "avg"),
                requestsWaiting: int(value, "outbuf_cnt"),
                requestsInFlight: int(value, "waitresp_cnt"),
                retries: int(value, "txretries")
            )
        }
        self.brokers = brokers
    }
}
