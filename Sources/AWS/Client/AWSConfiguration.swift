import AsyncHTTPClient
import Foundation
import Logging

/// Region, credentials, endpoints, timeouts and retries shared by every AWS client.
public struct AWSConfiguration: Sendable {
    public var region: String
    public var credentialProvider: any AWSCredentialProvider
    /// Endpoints to use instead of the public AWS ones (moto, VPC endpoints).
    public var endpointOverrides: [AWSService: URL]
    /// How long one HTTP attempt may take, response body included. Default 10 s.
    public var requestTimeout: Duration
    /// How throttling, 5xx and connection errors are retried.
    public var retryPolicy: AWSRetryPolicy

    /// - Parameter endpoint: when given, every service is sent there.
    public init(
        region: String,
        credentialProvider: any AWSCredentialProvider,
        endpoint: URL? = nil,
        requestTimeout: Duration = .seconds(10),
        retryPolicy: AWSRetryPolicy = .default
    ) {
        self.region = region
        self.credentialProvider = credentialProvider
        self.requestTimeout = requestTimeout
        self.retryPolicy = retryPolicy
        var overrides: [AWSService: URL] = [:]
        if let endpoint {
            for service in AWSService.allCases { overrides[service] = endpoint }
        }
        self.endpointOverrides = overrides
    }

    /// Reads the region (`AWS_REGION`, else `AWS_DEFAULT_REGION`, else the
    /// `region` of profile `AWS_PROFILE` in the shared config file), the endpoints
    /// `AWS_ENDPOINT_URL` and per service `AWS_ENDPOINT_URL_DYNAMODB`,
    /// `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`, `AWS_ENDPOINT_URL_KINESIS`,
    /// `AWS_ENDPOINT_URL_STS`, and sets up a ``DefaultCredentialProvider``.
    ///
    /// Credentials are not looked up here: the provider resolves them on first
    /// use and its error lists every source it tried. Throws an
    /// ``AWSConfigurationError`` naming the variable when no region is found or
    /// an endpoint is not an http(s) URL.
    public static func fromEnvironment(
        _ env: [String: String] = ProcessInfo.processInfo.environment,
        httpClient: HTTPClient = .shared,
        logger: Logger = Logger(label: "fanout.aws.credentials")
    ) throws -> AWSConfiguration {
        func value(_ key: String) -> String? {
            guard let v = env[key]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        let profileName = value("AWS_PROFILE") ?? value("AWS_DEFAULT_PROFILE") ?? "default"
        let profileRegion = { () -> String? in
            guard let region = SharedConfigFiles(environment: env).profiles[profileName]?["region"], !region.isEmpty
            else { return nil }
            return region
        }
        guard let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? profileRegion() else {
            throw AWSConfigurationError(
                "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or region in profile \"\(profileName)\" of ~/.aws/config)"
            )
        }
        guard region.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" })
        else {
            throw AWSConfigurationError("AWS_REGION is not a region name (like eu-west-1): \(region)")
        }
        func url(_ key: String) throws -> URL? {
            guard let text = value(key) else { return nil }
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
                scheme == "http" || scheme == "https", url.host != nil
            else {
                throw AWSConfigurationError("\(key) is not an http(s) URL: \(text)")
            }
            return url
        }
        var configuration = AWSConfiguration(
            region: region,
            credentialProvider: StaticCredentialProvider(accessKeyID: "", secretAccessKey: ""),
            endpoint: try url("AWS_ENDPOINT_URL")
        )
        for service in AWSService.allCases {
            if let endpoint = try url("AWS_ENDPOINT_URL_\(service.environmentSuffix)") {
                configuration.endpointOverrides[service] = endpoint
            }
        }
        configuration.credentialProvider = DefaultCredentialProvider(
            environment: env,
            region: region,
            stsEndpoint: configuration.endpoint(for: .sts),
            httpClient: httpClient,
            logger: logger
        )
        return configuration
    }

    /// The override for the service, else `https://{prefix}.{region}.amazonaws.com`.
    public func endpoint(for service: AWSService) -> URL {
        if let url = endpointOverrides[service] { return url }
        let suffix = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        let host = "\(service.endpointPrefix).\(region).\(suffix)"
        // A region that cannot be part of a host name gives a URL that fails to
        // connect (a ConnectionError naming it) rather than a crash.
        return URL(string: "https://\(host)")
            ?? URL(string: "https://\(host.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "invalid-region")")
            ?? URL(filePath: "/invalid-region")
    }
}

/// Exponential backoff with full jitter, bounded by attempts and by total time.
public struct AWSRetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included. 1 means no retry.
    public var maxAttempts: Int
    /// The backoff ceiling of the first retry; it doubles each retry.
    public var baseDelay: Duration
    /// The base for throttling errors, which need a longer pause.
    public var throttlingBaseDelay: Duration
    /// No single pause is longer.
    public var maxDelay: Duration
    /// No retry starts after this much time since the first attempt.
    public var maxElapsed: Duration

    public init(
        maxAttempts: Int = 5,
        baseDelay: Duration = .milliseconds(100),
        throttlingBaseDelay: Duration = .milliseconds(500),
        maxDelay: Duration = .seconds(5),
        maxElapsed: Duration = .seconds(20)
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.throttlingBaseDelay = throttlingBaseDelay
        self.maxDelay = maxDelay
        self.maxElapsed = maxElapsed
    }

    /// 5 attempts within 20 s.
    public static let `default` = AWSRetryPolicy()
    /// A single attempt.
    public static let none = AWSRetryPolicy(maxAttempts: 1)

    /// The pause before retry number `retry` (1 for the first retry): uniformly
    /// random in 0...min(maxDelay, base × 2^(retry-1)).
    public func delay(beforeRetry retry: Int, throttled: Bool) -> Duration {
        let base = Self.seconds(throttled ? throttlingBaseDelay : baseDelay)
        let ceiling = min(Self.seconds(maxDelay), base * pow(2, Double(max(0, min(retry - 1, 30)))))
        guard ceiling > 0 else { return .zero }
        return .milliseconds(Int64(Double.random(in: 0...ceiling) * 1000))
    }

    static func seconds(_ duration: Duration) -> Double {
        let c = duration.components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
