import AsyncHTTPClient
import Contracts
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1

/// The AWS JSON 1.0/1.1 protocol: `POST /` with `X-Amz-Target: <prefix>.<Operation>`,
/// a JSON body, SigV4 signed.
///
/// Throttling, 5xx and connection errors are retried with exponential backoff and
/// full jitter, as the configuration's ``AWSRetryPolicy`` allows; other errors
/// surface at once as ``AWSError``.
public final class AWSJSONClient: Sendable {
    public let service: AWSService
    public let configuration: AWSConfiguration
    public let endpoint: URL
    let httpClient: HTTPClient
    let logger: Logger
    let metrics = AWSCallMetrics()

    /// The largest response body accepted (GetRecords and Query answer at most 1 MB of data).
    static let maxResponseBytes = 32 * 1024 * 1024

    public init(service: AWSService, configuration: AWSConfiguration, httpClient: HTTPClient, logger: Logger) {
        self.service = service
        self.configuration = configuration
        self.endpoint = configuration.endpoint(for: service)
        self.httpClient = httpClient
        var logger = logger
        logger[metadataKey: LogKey.awsService] = .string(service.displayName)
        self.logger = logger
    }

    /// Calls `operation` with `input` encoded as JSON and decodes the answer.
    /// A response that does not decode is an ``AWSError`` of type `InvalidResponse`.
    public func call<Output: Decodable>(_ operation: String, input: some Encodable) async throws -> Output {
        let body: [UInt8]
        do {
            body = Array(try Self.encoder.encode(input))
        } catch {
            throw AWSError(
                operation: name(operation),
                type: "InvalidRequest",
                message: "cannot encode the request: \(error)"
            )
        }
        let response = try await call(operation, jsonBody: body)
        return try decode(Output.self, from: response, operation: operation)
    }

    /// Calls `operation` for its effect, ignoring the answer's body.
    public func send(_ operation: String, input: some Encodable) async throws {
        let _: EmptyOutput = try await call(operation, input: input)
    }

    /// The raw form: JSON bytes in, JSON bytes of a 2xx answer out.
    public func call(_ operation: String, jsonBody: [UInt8]) async throws -> [UInt8] {
        let policy = configuration.retryPolicy
        let started = ContinuousClock.now
        var attempt = 1
        let label = name(operation)
        let metrics = self.metrics.operation(label)
        while true {
            metrics.requests.increment()
            let attemptStarted = ContinuousClock.now
            // One observation per attempt, failed ones too: a slow endpoint shows whether it answers or not.
            defer { metrics.duration.recordNanoseconds(Self.nanoseconds(ContinuousClock.now - attemptStarted)) }
            do {
                return try await attemptCall(operation, body: jsonBody)
            } catch var error as AWSError {
                self.metrics.errors(label, code: error.type).increment()
                if error.isThrottling { metrics.throttles.increment() }
                error.attempts = attempt
                guard error.isRetriable, attempt < policy.maxAttempts else { throw error }
                let delay = policy.delay(beforeRetry: attempt, throttled: error.isThrottling)
                guard ContinuousClock.now - started + delay < policy.maxElapsed else { throw error }
                logger.debug(
                    "retrying AWS call",
                    metadata: [
                        LogKey.awsOperation: .string(operation), LogKey.awsAttempt: .stringConvertible(attempt),
                        LogKey.awsError: .string(error.type), LogKey.awsDelay: .string("\(delay)"),
                    ]
                )
                try await Task.sleep(for: delay)
                attempt += 1
            }
        }
    }

    func name(_ operation: String) -> String { "\(service.displayName).\(operation)" }

    /// The histogram of every AWS call's attempts, from the request's signing to its whole body read, by operation.
    public static let requestDurationLabel = "fanout_aws_request_duration_seconds"

    func decode<Output: Decodable>(_ type: Output.Type, from body: [UInt8], operation: String) throws -> Output {
        do {
            return try JSONDecoder().decode(Output.self, from: Data(body.isEmpty ? Array("{}".utf8) : body))
        } catch {
            throw AWSError(
                operation: name(operation),
                type: AWSError.invalidResponse,
                message: "cannot decode the response: \(Self.describe(decodingError: error))",
                statusCode: 200
            )
        }
    }

    private func attemptCall(_ operation: String, body: [UInt8]) async throws -> [UInt8] {
        let credentials = try await configuration.credentialProvider.credentials()
        let signer = SigV4Signer(credentials: credentials, region: configuration.region, service: service.signingName)
        let headers: [(name: String, value: String)] = [
            (name: "Content-Type", value: service.jsonContentType),
            (name: "X-Amz-Target", value: "\(service.targetPrefix).\(operation)"),
        ]
        let signed = signer.signHeaders(method: "POST", url: endpoint, headers: headers, body: body)

        var request = HTTPClientRequest(url: endpoint.absoluteString)
        request.method = .POST
        for header in headers + signed {
            request.headers.add(name: header.name, value: header.value)
        }
        request.body = .bytes(body)

        let status: Int
        let responseHeaders: [(name: String, value: String)]
        let responseBody: [UInt8]
        // One deadline for the head and the whole body: AsyncHTTPClient's covers the head only, so a
        // response that never ends is cut off here.
        let deadline = ContinuousClock.now + configuration.requestTimeout
        do {
            let response = try await httpClient.execute(
                request,
                timeout: .nanoseconds(Self.nanoseconds(configuration.requestTimeout)),
                logger: logger
            )
            status = Int(response.status.code)
            responseHeaders = response.headers.map { (name: $0.name, value: $0.value) }
            let length = response.headers.first(name: "Content-Length").flatMap { Int($0) }
            responseBody = try await readBody(response.body, length: length, operation: operation, status: status, deadline: deadline)
        } catch let error as AWSError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw transportError(operation, error)
        }
        guard (200..<300).contains(status) else {
            var error = AWSError.fromResponse(
                operation: name(operation),
                statusCode: status,
                headers: responseHeaders,
                body: responseBody
            )
            if error.isAuthenticationFailure { error.accessKeyID = credentials.accessKeyID }
            logger.debug(
                "AWS call failed",
                metadata: [LogKey.awsOperation: .string(operation), LogKey.awsError: .string(error.type)]
            )
            throw error
        }
        return responseBody
    }

    /// The whole body by `deadline`, and at most `maxResponseBytes` of it: past either, the request is
    /// cancelled (the connection closed) and a retriable error thrown. The chunks are appended to one
    /// array sized by `length` (the Content-Length, when the response has one), so a 1 MB page is
    /// neither grown by doubling nor copied once more at the end.
    private func readBody(
        _ body: HTTPClientResponse.Body, length: Int?, operation: String, status: Int, deadline: ContinuousClock.Instant
    ) async throws -> [UInt8] {
        let operationName = name(operation)
        let timeout = configuration.requestTimeout
        let endpoint = endpoint.absoluteString
        return try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            group.addTask {
                var bytes: [UInt8] = []
                if let length, length > 0 { bytes.reserveCapacity(min(length, Self.maxResponseBytes)) }
                for try await chunk in body {
                    guard bytes.count + chunk.readableBytes <= Self.maxResponseBytes else {
                        throw AWSError(
                            operation: operationName,
                            type: AWSError.responseTooLarge,
                            message: "response body larger than \(Self.maxResponseBytes) bytes",
                            statusCode: status
                        )
                    }
                    bytes.append(contentsOf: chunk.readableBytesView)
                }
                return bytes
            }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            defer { group.cancelAll() }
            guard let bytes = try await group.next() ?? nil else {
                throw AWSError(
                    operation: operationName,
                    type: AWSError.requestTimeout,
                    message: "the response from \(endpoint) did not end within \(timeout)",
                    statusCode: status
                )
            }
            return bytes
        }
    }

    private func transportError(_ operation: String, _ error: any Error) -> AWSError {
        if let httpError = error as? HTTPClientError {
            if httpError == .deadlineExceeded || httpError == .readTimeout || httpError == .writeTimeout {
                return AWSError(
                    operation: name(operation),
                    type: AWSError.requestTimeout,
                    message: "no complete answer from \(endpoint.absoluteString) within \(configuration.requestTimeout)"
                )
            }
            if httpError == .cancelled {
                return AWSError(operation: name(operation), type: "Cancelled", message: "the request was cancelled")
            }
        }
        return AWSError(
            operation: name(operation),
            type: AWSError.connectionError,
            message: "cannot reach \(endpoint.absoluteString): \(error)"
        )
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let c = duration.components
        let (total, overflow) = c.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? Int64.max : total &+ c.attoseconds / 1_000_000_000
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    static func describe(decodingError error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "top level" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing \(path(context)).\(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context)): \(context.debugDescription)"
        case .dataCorrupted(let context):
            return "\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// An answer whose content is not needed.
struct EmptyOutput: Decodable {}
