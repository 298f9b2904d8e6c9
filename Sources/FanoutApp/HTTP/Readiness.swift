/// Whether the sidecar should receive traffic, and why not: what `GET /readyz` shows.
///
/// The checks (routes loaded, Kafka reachable, AWS reachable, no stalled shard) are
/// computed by whoever runs the status endpoint; this type only carries them.
public struct Readiness: Sendable, Encodable, Hashable {
    /// One thing readiness depends on.
    public struct Check: Sendable, Encodable, Hashable {
        /// A short stable name, such as "routes", "kafka", "aws", "shards".
        public var name: String
        public var ok: Bool
        /// What was found, in one line (the error when `ok` is false).
        public var detail: String

        public init(name: String, ok: Bool, detail: String) {
            self.name = name
            self.ok = ok
            self.detail = detail
        }
    }

    public var isReady: Bool
    public var checks: [Check]

    public init(isReady: Bool, checks: [Check]) {
        self.isReady = isReady
        self.checks = checks
    }

    /// Ready exactly when every check passed.
    public init(checks: [Check]) {
        self.init(isReady: checks.allSatisfy(\.ok), checks: checks)
    }

}
