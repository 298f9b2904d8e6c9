// The record contract (DESIGN.md, "Kafka record"): every header name Fanout writes or reads, defined here once.

/// Header names of every record Fanout writes (DESIGN.md's Kafka record contract).
public enum FanoutHeader {
    public static let contentType = "content-type"
    public static let eventName = "fanout-event-name"
    public static let messageID = "fanout-message-id"
    public static let aggregateID = "fanout-aggregate-id"
    public static let route = "fanout-route"
    /// `<stream ARN>/<shard id>/<sequence number>`: split from the right.
    public static let source = "fanout-source"
    public static let traceparent = "traceparent"
    /// Why a record went to the dead-letter topic.
    public static let error = "fanout-error"
}

/// Header names of the dead-letter topics of subscriber groups (`<group>.dead-letter`).
///
/// A dead-letter record keeps the original key, value and headers, and adds these.
public enum DeadLetterHeader {
    /// What the record is: see ``DeadLetterKind``.
    public static let kind = "fanout-dlq-kind"
    /// The last error of the handler (or why the record is not an event).
    public static let reason = "fanout-dlq-reason"
    /// How many times the handlers were tried.
    public static let attempts = "fanout-dlq-attempts"
    /// The subscriber group that gave up on the record.
    public static let group = "fanout-dlq-group"
    public static let originTopic = "fanout-dlq-origin-topic"
    public static let originPartition = "fanout-dlq-origin-partition"
    public static let originOffset = "fanout-dlq-origin-offset"
    /// For a parked record: the dead-letter offset of the failed record it waits behind.
    public static let parkedBehind = "fanout-dlq-parked-behind"
    /// For `resolved` and `retry-failed` markers: the dead-letter offsets now resolved, comma-separated.
    public static let resolves = "fanout-dlq-resolves"
    /// ISO-8601 time the record was written.
    public static let time = "fanout-dlq-time"
    /// Written by the Router (Fanout's own dead-letter topic): why, and the stream record.
    public static let routerError = FanoutHeader.error
    public static let routerSource = FanoutHeader.source
}

