import Metrics
import Synchronization

/// The metrics of one AWS client's calls: each created once (per operation, and per operation and error code),
/// never per attempt. Every label is bounded: operations are this code's, and error codes, which come from
/// the server, keep their own label up to ``maximumErrorCodes`` per client, then share `(other)`.
final class AWSCallMetrics: Sendable {
    struct Operation: Sendable {
        let requests: Counter
        let duration: Metrics.Timer
        let throttles: Counter
    }

    /// Distinct error codes labelled per client; past it, `(other)`.
    static let maximumErrorCodes = 64
    static let otherErrorCode = "(other)"

    private struct State {
        var operations: [String: Operation] = [:]
        var errors: [String: Counter] = [:]
        var codes: Set<String> = []
    }

    private let state = Mutex(State())

    /// The metrics of `operation` (a service-qualified name such as `DynamoDBStreams.GetRecords`).
    func operation(_ operation: String) -> Operation {
        state.withLock { state in
            if let metrics = state.operations[operation] { return metrics }
            let metrics = Operation(
                requests: Counter(label: "fanout_aws_requests_total", dimensions: [("operation", operation)]),
                duration: Metrics.Timer(label: AWSJSONClient.requestDurationLabel, dimensions: [("operation", operation)]),
                throttles: Counter(label: "fanout_aws_throttles_total", dimensions: [("operation", operation)])
            )
            state.operations[operation] = metrics
            return metrics
        }
    }

    /// The error counter of `operation` for `code`.
    func errors(_ operation: String, code: String) -> Counter {
        state.withLock { state in
            let known = state.codes.contains(code) || state.codes.count < Self.maximumErrorCodes
            if known { state.codes.insert(code) }
            let label = known ? code : Self.otherErrorCode
            let key = "\(operation)|\(label)"
            if let counter = state.errors[key] { return counter }
            let counter = Counter(label: "fanout_aws_errors_total", dimensions: [("operation", operation), ("code", label)])
            state.errors[key] = counter
            return counter
        }
    }
}
