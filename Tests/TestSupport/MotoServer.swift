import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A moto_server of a test's own, on a free port: the shared one (scripts/services) serves every other suite, and
/// on a loaded machine its one Python thread answers slower than clients wait. For suites that keep it busy for
/// long (a sidecar polling its stream while events are written).
public final class MotoServer: Sendable {
    public let process: ChildProcess
    /// `http://127.0.0.1:<port>`.
    public let endpoint: String

    /// Starts it and waits until it answers (at most 60 s); its output goes to `<tmp>/moto-<name>.log`.
    public init(name: String) async throws {
        let port = try TestServices.freePort()
        endpoint = "http://127.0.0.1:\(port)"
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("moto-\(name).log")
        process = try ChildProcess(
            "/usr/bin/env", ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)],
            standardOutput: .file(log), standardError: .file(log)
        )
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, process.isRunning {
            if Self.accepts(port: port) { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        process.kill()
        throw ChildProcess.Failure(
            "moto_server did not answer at \(endpoint) within 60 s (install it with scripts/install-deps: pip install 'moto[server]==5.2.1'); its log: \(log.path)"
        )
    }

    public func stop() async { _ = await process.stop() }

    /// Whether something accepts TCP connections on `host`:`port` (moto listens on 127.0.0.1 once it is ready to answer).
    public static func accepts(port: Int, host: String = "127.0.0.1") -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

extension TestServices {
    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ChildProcess.Failure("socket: errno \(errno)", errorNumber: errno) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ChildProcess.Failure("bind: errno \(errno)", errorNumber: errno) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
