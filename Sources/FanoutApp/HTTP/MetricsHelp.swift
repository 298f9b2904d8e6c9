/// The `# HELP` text of every metric Fanout exposes (docs/operations.md lists them).
///
/// Fanout's metrics are made through swift-metrics, whose `PrometheusMetricsFactory` registers each with an empty
/// help text (and swift-prometheus stops the process when one name is registered with two help texts), so the help
/// is added to the exposition text instead: a `# HELP` line before each metric's `# TYPE` line.
public enum MetricsHelp {
    public static let texts: [String: String] = [
        "fanout_records_read_total": "Stream records read.",
        "fanout_records_routed_total": "Kafka records acknowledged, by topic.",
        "fanout_events_unrouted_total": "Events no route selected, by event name.",
        "fanout_route_records_total": "Kafka records acknowledged because of each route.",
        "fanout_records_dead_lettered_total": "Records sent to the dead-letter topic.",
        "fanout_records_ignored_total": "MODIFY and REMOVE records (only INSERTs are routed).",
        "fanout_delivery_latency_seconds": "Per stream record, from its creation time to Kafka's acknowledgement of its page.",
        "fanout_aws_requests_total": "AWS calls made, retries included, by operation.",
        "fanout_aws_errors_total": "AWS calls that failed, by operation and error code.",
        "fanout_aws_throttles_total": "Throttled AWS calls (retried with backoff), by operation.",
        "fanout_aws_request_duration_seconds": "Each attempt of an AWS call, from signing to the whole answer read.",
        "fanout_routes_info": "1 for the routes file in force, by hash and version.",
        "fanout_routes_reloads_total": "Successful reloads of the routes file.",
        "fanout_routes_reload_failures_total": "Routes files refused.",
        "fanout_routes_reload_failing": "1 while the newest routes file on disk is refused, else 0.",
        "fanout_kafka_producer_queue_messages": "Messages waiting in the Kafka producer's queue.",
        "fanout_kafka_producer_queue_bytes": "Bytes waiting in the Kafka producer's queue.",
        "fanout_kafka_producer_sent_messages": "Messages sent since start (librdkafka's running total).",
        "fanout_kafka_producer_retries": "Produce retries since start (librdkafka's running total).",
        "fanout_kafka_producer_rebuilds_total": "Kafka producers replaced after a fatal error.",
        "fanout_kafka_broker_rtt_seconds": "Average round trip to each broker.",
        "fanout_shard_newest_record_age_seconds": "Now minus the creation time of the newest record routed from the shard.",
        "fanout_shard_lag_seconds": "How far routing is behind the writers now: the age of the oldest record not yet acknowledged, 0 when caught up.",
        "fanout_shard_checkpoint_age_seconds": "Time since the shard's last checkpoint.",
        "fanout_shard_stalled": "1 while the shard is open, behind, and has made no progress for the stall timeout.",
        "fanout_stream_stalled_shards": "Shards stalled now.",
        "fanout_stream_trimmed_gaps": "Times a shard's data was trimmed before it was read.",
        "fanout_leases_held": "Shard leases this instance holds (--leases on).",
        "fanout_leases_taken_total": "Shard leases this instance took (--leases on).",
        "fanout_leases_lost_total": "Shard leases this instance lost to another (--leases on).",
    ]

    /// `exposition` with a `# HELP` line before every `# TYPE` line that has none; a metric missing from `texts`
    /// gets a line pointing at docs/operations.md.
    static func adding(to exposition: [UInt8]) -> [UInt8] {
        let text = String(decoding: exposition, as: UTF8.self)
        var out = ""
        out.reserveCapacity(text.utf8.count + 64 * texts.count)
        var previousIsHelp = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !previousIsHelp, line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first {
                out += "# HELP \(name) \(texts[String(name)] ?? "Fanout metric \(name) (docs/operations.md).")\n"
            }
            previousIsHelp = line.hasPrefix("# HELP ")
            out += line
            out += "\n"
        }
        out.removeLast()
        return Array(out.utf8)
    }
}
