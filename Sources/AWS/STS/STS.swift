import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The two STS operations the credential chain needs, in STS's query protocol:
/// `POST /` with a form-encoded body (`Action=…&Version=2011-06-15`) and an XML answer.
///
/// `AssumeRoleWithWebIdentity` is sent unsigned (the web identity token is the
/// proof); `AssumeRole` is signed with the source credentials (SigV4 service `sts`).
struct STS: Sendable {
    static let version = "2011-06-15"

    var endpoint: URL
    var region: String
    var httpClient: HTTPClient
    var timeout: Duration = .seconds(5)
    var retryPolicy: AWSRetryPolicy = AWSRetryPolicy(maxAttempts: 3, maxElapsed: .seconds(15))

    func assumeRoleWithWebIdentity(roleARN: String, sessionName: String, webIdentityToken: String) async throws
        -> ExpiringCredentials
    {
        try await call(
            "AssumeRoleWithWebIdentity",
            parameters: [("RoleArn", roleARN), ("RoleSessionName", sessionName), ("WebIdentityToken", webIdentityToken)],
            signedWith: nil
        )
    }

    func assumeRole(
        roleARN: String,
        sessionName: String,
        externalID: String? = nil,
        durationSeconds: Int? = nil,
        credentials: AWSCredentials
    ) async throws -> ExpiringCredentials {
        var parameters = [("RoleArn", roleARN), ("RoleSessionName", sessionName)]
        if let externalID { parameters.append(("ExternalId", externalID)) }
        if let durationSeconds { parameters.append(("DurationSeconds", String(durationSeconds))) }
        return try await call("AssumeRole", parameters: parameters, signedWith: credentials)
    }

    /// `Action=…&Version=…&k=v…`, each part percent-encoded as SigV4 expects.
    static func formBody(action: String, parameters: [(String, String)]) -> String {
        ([("Action", action), ("Version", version)] + parameters)
            .map { "\(SigV4Signer.uriEncode($0.0))=\(SigV4Signer.uriEncode($0.1))" }
            .joined(separator: "&")
    }

    private func call(_ action: String, parameters: [(String, String)], signedWith credentials: AWSCredentials?)
        async throws -> ExpiringCredentials
    {
        let body = Array(Self.formBody(action: action, parameters: parameters).utf8)
        let started = ContinuousClock.now
        var attempt = 1
        while true {
            do {
                let xml = try await send(action, body: body, credentials: credentials)
                return try Self.parseCredentials(xml, operation: "STS.\(action)")
            } catch var error as AWSError {
                error.attempts = attempt
                if let credentials, error.isAuthenticationFailure { error.accessKeyID = credentials.accessKeyID }
                guard error.isRetriable, attempt < retryPolicy.maxAttempts else { throw error }
                let delay = retryPolicy.delay(beforeRetry: attempt, throttled: error.isThrottling)
                guard ContinuousClock.now - started + delay < retryPolicy.maxElapsed else { throw error }
                try await Task.sleep(for: delay)
                attempt += 1
            }
        }
    }

    private func send(_ action: String, body: [UInt8], credentials: AWSCredentials?) async throws -> String {
        let headers: [(name: String, value: String)] = [
            (name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")
        ]
        var all = headers
        if let credentials {
            all += SigV4Signer(credentials: credentials, region: region, service: "sts")
                .signHeaders(method: "POST", url: endpoint, headers: headers, body: body)
        }
        var request = HTTPClientRequest(url: endpoint.absoluteString)
        request.method = .POST
        for header in all { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(body)
        let operation = "STS.\(action)"
        let response: CredentialHTTP.Response
        do {
            response = try await CredentialHTTP.execute(request, httpClient: httpClient, timeout: timeout)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw AWSError(
                operation: operation,
                type: (error as? CredentialHTTP.Failure)?.isTimeout == true ? AWSError.requestTimeout : AWSError.connectionError,
                message: "cannot reach \(endpoint.absoluteString): \(error)"
            )
        }
        guard (200..<300).contains(response.status) else {
            throw AWSError.fromResponse(
                operation: operation,
                statusCode: response.status,
                headers: response.headers,
                body: response.body
            )
        }
        return String(decoding: response.body, as: UTF8.self)
    }

    /// The `<Credentials>` element of an AssumeRole* answer.
    static func parseCredentials(_ xml: String, operation: String) throws -> ExpiringCredentials {
        guard let keyID = AWSError.xmlElement("AccessKeyId", in: xml),
            let secret = AWSError.xmlElement("SecretAccessKey", in: xml),
            let token = AWSError.xmlElement("SessionToken", in: xml)
        else {
            throw AWSError(
                operation: operation,
                type: AWSError.invalidResponse,
                message: "the answer has no Credentials (AccessKeyId, SecretAccessKey, SessionToken)",
                statusCode: 200
            )
        }
        let expiration = AWSError.xmlElement("Expiration", in: xml).flatMap(CredentialHTTP.parseDate)
        return ExpiringCredentials(
            credentials: AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token),
            expiration: expiration
        )
    }
}
