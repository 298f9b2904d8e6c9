import Foundation

/// An access key pair, optionally with a session token.
///
/// `description` shows only the access key id: the secret and the token never
/// appear in logs or errors.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>"
            + (sessionToken == nil ? ")" : ", sessionToken: <redacted>)")
    }
}

extension AWSCredentials: CustomDebugStringConvertible {
    public var debugDescription: String { description }
}

/// A source of credentials, asked before every request (so a provider may rotate them).
public protocol AWSCredentialProvider: Sendable {
    func credentials() async throws -> AWSCredentials
}

/// Always the same credentials.
public struct StaticCredentialProvider: AWSCredentialProvider {
    public var value: AWSCredentials

    public init(_ credentials: AWSCredentials) {
        self.value = credentials
    }

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.value = AWSCredentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: sessionToken)
    }

    public func credentials() async throws -> AWSCredentials { value }
}

/// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional
/// `AWS_SESSION_TOKEN`, read from the environment given at creation.
public struct EnvironmentCredentialProvider: AWSCredentialProvider {
    let environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The credentials, or an ``AWSConfigurationError`` naming the missing variables.
    public func resolve() throws -> AWSCredentials {
        let keyID = environment["AWS_ACCESS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = environment["AWS_SECRET_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        guard let keyID, let secret else {
            let missing = [
                keyID == nil ? "AWS_ACCESS_KEY_ID" : nil,
                secret == nil ? "AWS_SECRET_ACCESS_KEY" : nil,
            ].compactMap { $0 }
            throw AWSConfigurationError(
                "no AWS credentials in the environment: \(missing.joined(separator: " and ")) "
                    + (missing.count == 1 ? "is" : "are") + " unset"
            )
        }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token)
    }

    public func credentials() async throws -> AWSCredentials { try resolve() }
}

/// A configuration problem found before any request was sent.
public struct AWSConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
