import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Credentials with the time they stop working (nil: never).
struct ExpiringCredentials: Sendable {
    var credentials: AWSCredentials
    var expiration: Date?
}

/// Small HTTP exchanges of the credential sources (STS, container endpoint, IMDS),
/// each bounded by one deadline that covers connecting too.
enum CredentialHTTP {
    struct Response: Sendable {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        var isTimeout: Bool
    }

    /// Credential answers are small; anything larger is refused.
    static let maxBodyBytes = 1 << 20

    static func execute(_ request: HTTPClientRequest, httpClient: HTTPClient, timeout: Duration) async throws -> Response {
        do {
            let response = try await httpClient.execute(
                request,
                timeout: .nanoseconds(AWSJSONClient.nanoseconds(timeout))
            )
            let body = try await response.body.collect(upTo: maxBodyBytes)
            return Response(
                status: Int(response.status.code),
                headers: response.headers.map { (name: $0.name, value: $0.value) },
                body: Array(buffer: body)
            )
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as HTTPClientError {
            if Task.isCancelled { throw CancellationError() }
            let isTimeout = error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout
            throw Failure(
                description: isTimeout ? "no answer within \(timeout)" : "\(error)",
                isTimeout: isTimeout
            )
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw Failure(description: "\(error)", isTimeout: false)
        }
    }

    /// ISO 8601 with or without fractional seconds (`2026-11-27T22:43:11.299720Z`, `2026-11-27T22:43:11Z`).
    static func parseDate(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let date = try? Date(trimmed, strategy: .iso8601) { return date }
        // Drop the fraction, which ISO8601FormatStyle accepts only with a fixed length.
        if let dot = trimmed.firstIndex(of: "."), let end = trimmed[dot...].firstIndex(where: { !$0.isNumber && $0 != "." }) {
            let whole = String(trimmed[..<dot]) + String(trimmed[end...])
            return try? Date(whole, strategy: .iso8601)
        }
        return nil
    }

    /// The credential JSON of the container endpoint and IMDS:
    /// `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`.
    static func decodeCredentialJSON(_ body: [UInt8]) -> ExpiringCredentials? {
        struct Payload: Decodable {
            var AccessKeyId: String
            var SecretAccessKey: String
            var Token: String?
            var Expiration: String?
        }
        guard let payload = try? JSONDecoder().decode(Payload.self, from: Data(body)),
            !payload.AccessKeyId.isEmpty, !payload.SecretAccessKey.isEmpty
        else { return nil }
        return ExpiringCredentials(
            credentials: AWSCredentials(
                accessKeyID: payload.AccessKeyId,
                secretAccessKey: payload.SecretAccessKey,
                sessionToken: payload.Token.flatMap { $0.isEmpty ? nil : $0 }
            ),
            expiration: payload.Expiration.flatMap(parseDate)
        )
    }
}
