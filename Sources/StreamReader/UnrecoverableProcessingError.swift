/// Thrown by a page's `process` when retrying the page cannot succeed (for example, the Kafka
/// producer was fenced by a newer instance): the reader stops, without checkpointing the page,
/// and `run` rethrows it.
public struct UnrecoverableProcessingError: Error, Sendable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}
