import AWS
import AsyncHTTPClient

extension HTTPClient {
    /// One client for every test of the process, configured as Fanout configures its own (`forAWS`).
    ///
    /// Never shut down, like `HTTPClient.shared`: a client of a test's own must be shut down before it
    /// deinits, or AsyncHTTPClient traps in a debug build, and a test that throws halfway would then
    /// crash the whole test process.
    public static let forTests = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .forAWS())
}
