import AsyncHTTPClient
import Contracts
import Foundation
import Logging

/// The AWS default credential chain, resolved on first use and cached.
///
/// Sources, in order (the first that is configured wins; one that is configured
/// but fails stops the chain with its error, as the AWS SDKs do):
/// 1. environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
/// 2. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`
///    (+ `AWS_ROLE_SESSION_NAME`) through STS `AssumeRoleWithWebIdentity`;
/// 3. the shared credentials and config files, profile `AWS_PROFILE` (default
///    `default`): static keys, or `role_arn` + `source_profile` through STS `AssumeRole`;
/// 4. the ECS container endpoint: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or
///    `AWS_CONTAINER_CREDENTIALS_FULL_URI`;
/// 5. EC2 instance metadata (IMDSv2), unless `AWS_EC2_METADATA_DISABLED=true`.
///
/// Temporary credentials are refreshed `refreshWindow` before they expire.
/// Concurrent callers share one refresh; while the old credentials are still
/// valid, a failed refresh is logged and the old ones are served.
///
/// Secrets and session tokens never appear in errors or logs.
public actor DefaultCredentialProvider: AWSCredentialProvider {
    /// One source of the chain.
    public enum Source: String, Sendable, CaseIterable {
        case environment
        case webIdentity = "web identity"
        case sharedFiles = "shared config files"
        case container = "container endpoint"
        case instanceMetadata = "EC2 instance metadata"
    }

    nonisolated let environment: [String: String]
    nonisolated let region: String
    nonisolated let stsEndpoint: URL
    nonisolated let httpClient: HTTPClient
    nonisolated let logger: Logger
    /// How long before their expiration temporary credentials are replaced.
    public nonisolated let refreshWindow: Duration
    /// The bound of each request to the container endpoint.
    nonisolated let containerTimeout: Duration
    /// The bound of each request to the instance metadata service.
    nonisolated let instanceMetadataTimeout: Duration

    private var cached: (value: ExpiringCredentials, source: Source)?
    private var inFlight: Task<(value: ExpiringCredentials, source: Source), any Error>?
    private var noRefreshBefore: Date?

    /// - Parameters:
    ///   - environment: where the variables above are read (and `HOME` for `~/.aws`).
    ///   - region: the region of the STS calls.
    ///   - stsEndpoint: where STS is called (see ``AWSConfiguration/endpoint(for:)``).
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        region: String,
        stsEndpoint: URL,
        httpClient: HTTPClient = .shared,
        refreshWindow: Duration = .seconds(300),
        containerTimeout: Duration = .seconds(2),
        instanceMetadataTimeout: Duration = .seconds(1),
        logger: Logger = Logger(label: "fanout.aws.credentials")
    ) {
        self.environment = environment
        self.region = region
        self.stsEndpoint = stsEndpoint
        self.httpClient = httpClient
        self.refreshWindow = refreshWindow
        self.containerTimeout = containerTimeout
        self.instanceMetadataTimeout = instanceMetadataTimeout
        self.logger = logger
    }

    /// Where the current credentials came from, once resolved.
    public var currentSource: Source? { cached?.source }

    public func credentials() async throws -> AWSCredentials {
        let now = Date()
        if let cached, !needsRefresh(cached.value, now: now) {
            return cached.value.credentials
        }
        if let cached, let noRefreshBefore, now < noRefreshBefore, !isExpired(cached.value, now: now) {
            return cached.value.credentials
        }
        let task: Task<(value: ExpiringCredentials, source: Source), any Error>
        if let inFlight {
            task = inFlight
        } else {
            let previous = cached?.source
            task = Task { try await self.resolve(preferring: previous) }
            inFlight = task
        }
        do {
            let result = try await task.value
            if inFlight == task {
                inFlight = nil
                noRefreshBefore = nil
                if cached?.value.credentials != result.value.credentials {
                    logger.debug(
                        "AWS credentials resolved",
                        metadata: [
                            LogKey.credentialsSource: .string(result.source.rawValue),
                            "aws.access_key_id": .string(result.value.credentials.accessKeyID),
                            LogKey.credentialsExpiration: .string(result.value.expiration.map { "\($0)" } ?? "none"),
                        ]
                    )
                }
                cached = result
            }
            return result.value.credentials
        } catch {
            if inFlight == task {
                inFlight = nil
            }
            if let cached, !isExpired(cached.value, now: Date()) {
                if noRefreshBefore == nil || Date() >= noRefreshBefore! {
                    logger.warning(
                        "cannot refresh AWS credentials; using the current ones until they expire",
                        metadata: [
                            LogKey.credentialsSource: .string(cached.source.rawValue),
                            "aws.access_key_id": .string(cached.value.credentials.accessKeyID),
                            LogKey.awsError: .string("\(error)"),
                        ]
                    )
                }
                noRefreshBefore = Date().addingTimeInterval(5)
                return cached.value.credentials
            }
            throw error
        }
    }

    private func needsRefresh(_ value: ExpiringCredentials, now: Date) -> Bool {
        guard let expiration = value.expiration else { return false }
        return now >= expiration.addingTimeInterval(-AWSRetryPolicy.seconds(refreshWindow))
    }

    private func isExpired(_ value: ExpiringCredentials, now: Date) -> Bool {
        guard let expiration = value.expiration else { return false }
        return now >= expiration
    }

    // MARK: The chain

    enum Outcome: Sendable {
        case notConfigured(String)
        case credentials(ExpiringCredentials)
    }

    /// The source that gave the last credentials first (a refresh), then the whole chain.
    nonisolated func resolve(preferring previous: Source?) async throws -> (value: ExpiringCredentials, source: Source) {
        if let previous {
            do {
                if case .credentials(let value) = try await load(previous) { return (value, previous) }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw AWSCredentialsError(
                    failedSource: previous.rawValue,
                    tried: [.init(source: previous.rawValue, outcome: "\(error)")],
                    underlying: error as? AWSError
                )
            }
        }
        var tried: [AWSCredentialsError.Attempt] = []
        for source in Source.allCases {
            do {
                switch try await load(source) {
                case .credentials(let value):
                    return (value, source)
                case .notConfigured(let reason):
                    tried.append(.init(source: source.rawValue, outcome: reason))
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                tried.append(.init(source: source.rawValue, outcome: "\(error)"))
                throw AWSCredentialsError(failedSource: source.rawValue, tried: tried, underlying: error as? AWSError)
            }
        }
        throw AWSCredentialsError(failedSource: nil, tried: tried, underlying: nil)
    }

    nonisolated func load(_ source: Source) async throws -> Outcome {
        switch source {
        case .environment: try loadEnvironment()
        case .webIdentity: try await loadWebIdentity()
        case .sharedFiles: try await loadSharedFiles()
        case .container: try await loadContainer()
        case .instanceMetadata: try await loadInstanceMetadata()
        }
    }

    nonisolated func value(_ key: String) -> String? {
        guard let v = environment[key]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
        return v
    }

    nonisolated var sts: STS { STS(endpoint: stsEndpoint, region: region, httpClient: httpClient) }

    nonisolated var defaultSessionName: String { "fanout-\(Int(Date().timeIntervalSince1970))" }
}

/// No source of the chain gave credentials, or a configured one failed.
///
/// The description lists every source tried and why it gave nothing; it
/// never contains a secret or a token.
public struct AWSCredentialsError: Error, Sendable, CustomStringConvertible {
    public struct Attempt: Sendable, Hashable {
        public var source: String
        public var outcome: String
    }

    /// The configured source that failed, or nil when no source was configured.
    public var failedSource: String?
    /// Every source tried, in order, with what it said.
    public var tried: [Attempt]
    /// The AWS error of a failed STS call.
    public var underlying: AWSError?

    public var description: String {
        let list = tried.map { "\($0.source): \($0.outcome)" }.joined(separator: "; ")
        if let failedSource {
            return AWSError.oneLine("cannot get AWS credentials from the \(failedSource) [tried: \(list)]")
        }
        return AWSError.oneLine("no AWS credentials found [tried: \(list)]")
    }
}
