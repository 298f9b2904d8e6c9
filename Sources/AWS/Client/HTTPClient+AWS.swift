import AsyncHTTPClient
import NIOCore

extension HTTPClient.Configuration {
    /// Settings for the HTTP client shared by the AWS clients.
    ///
    /// A failed connection attempt fails the request at once
    /// (`retryConnectionEstablishment = false`) so that ``AWSJSONClient`` retries it
    /// with its own bounded backoff; with AsyncHTTPClient's default the request
    /// instead keeps reconnecting until its timeout. Connecting may take at most
    /// `connectTimeout`.
    public static func forAWS(connectTimeout: Duration = .seconds(3)) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .nanoseconds(AWSJSONClient.nanoseconds(connectTimeout))
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }
}
