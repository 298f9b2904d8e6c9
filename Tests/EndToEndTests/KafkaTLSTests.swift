import Foundation
import TestSupport
import Testing

/// Fanout's TLS settings reach librdkafka and do what they say, against OpenSSL's own TLS server
/// (`openssl s_server`): no Kafka-protocol broker here speaks TLS, so these tests stop at the TLS
/// session, and prove it carried librdkafka's first Kafka request.
@Suite(.timeLimit(.minutes(2))) struct KafkaTLSTests {
    struct Certificates {
        var directory: URL
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    }

    static func openssl(_ arguments: [String], in directory: URL) async throws {
        let (result, _) = try await ChildProcess.run("/usr/bin/env", ["openssl"] + arguments, currentDirectory: directory)
        guard result.status == 0 else {
            throw SettingsTestError("openssl \(arguments.joined(separator: " ")) failed (install it: apt-get install openssl)")
        }
    }

    /// A CA, a server certificate for 127.0.0.1 signed by it, a client certificate signed by it, and an unrelated CA.
    static func makeCertificates() async throws -> Certificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("tls"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try "subjectAltName=IP:127.0.0.1\n".write(to: directory.appendingPathComponent("san.cnf"), atomically: true, encoding: .utf8)
        for ca in ["ca", "other"] {
            try await openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(ca).key", "-out", "\(ca).pem", "-days", "2", "-subj", "/CN=Fanout test \(ca)"], in: directory)
        }
        for (name, extra) in [("server", ["-extfile", "san.cnf"]), ("client", [])] {
            try await openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(name == "server" ? "127.0.0.1" : "fanout")"], in: directory)
            try await openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "\(name).pem", "-days", "2"] + extra, in: directory)
        }
        return Certificates(directory: directory)
    }

    /// A free TCP port on 127.0.0.1 (bound, then released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw SettingsTestError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `openssl s_server` on a free port; what it receives goes to the returned log file.
    /// Its standard input stays open (a pipe, until the process is killed): s_server closes its connections at end of input.
    static func startTLSServer(_ certificates: Certificates, requireClientCertificate: Bool) async throws -> (ChildProcess, Int, URL) {
        let port = try freePort()
        let log = certificates.directory.appendingPathComponent("s_server-\(port).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let arguments = ["openssl", "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificates.path("server.pem"), "-key", certificates.path("server.key"), "-quiet"]
            + (requireClientCertificate ? ["-Verify", "1", "-CAfile", certificates.path("ca.pem")] : [])
        let process = try ChildProcess("/usr/bin/env", arguments, standardInput: .pipe, standardOutput: .file(log), standardError: .file(log))
        // Ready when it accepts connections.
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if connected { return (process, port, log) }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.kill()
        throw SettingsTestError("openssl s_server did not listen on 127.0.0.1:\(port)")
    }

    static func ensure(port: Int, _ arguments: [String]) async throws -> CommandLineTests.Result {
        let routes = try OperatorCommandsTests.writeFile(#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "a", "events": ["*"], "to": ["t"]}]}"#)
        return try await CommandLineTests.run(
            ["topics", "ensure", "--dry-run", "--routes", routes, "--brokers", "127.0.0.1:\(port)", "--kafka-security-protocol", "ssl"] + arguments
        )
    }

    @Test func theBrokerIsVerifiedAgainstTheConfiguredCA() async throws {
        let certificates = try await Self.makeCertificates()
        let (server, port, log) = try await Self.startTLSServer(certificates, requireClientCertificate: false)
        defer { server.kill() }

        let wrongCA = try await Self.ensure(port: port, ["--kafka-ssl-ca-location", certificates.path("other.pem")])
        #expect(wrongCA.status == 1)
        // librdkafka's own log lines may interleave with it: find fanout's one-line error.
        let wrongLine = wrongCA.standardError.split(separator: "\n").last { $0.hasPrefix("fanout: error:") }.map(String.init) ?? ""
        #expect(wrongLine.hasPrefix("fanout: error: Kafka: could not read cluster metadata"), "\(wrongCA.standardError)")
        #expect(wrongLine.contains("certificate verify failed"), "the one-line error names the TLS failure: \(wrongLine)")
        #expect(!((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("rdkafka"))

        let rightCA = try await Self.ensure(port: port, ["--kafka-ssl-ca-location", certificates.path("ca.pem")])
        #expect(rightCA.status == 1, "s_server is no Kafka broker")
        #expect(!rightCA.standardError.contains("certificate verify failed"), "\(rightCA.standardError)")
        // librdkafka's first request (ApiVersions, client id "rdkafka") went through the TLS session.
        #expect(((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("rdkafka"))
    }

    @Test func aClientCertificateIsPresentedForMutualTLS() async throws {
        let certificates = try await Self.makeCertificates()
        let (server, port, log) = try await Self.startTLSServer(certificates, requireClientCertificate: true)
        defer { server.kill() }

        let without = try await Self.ensure(port: port, ["--kafka-ssl-ca-location", certificates.path("ca.pem")])
        #expect(without.status == 1)
        #expect(!((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("rdkafka"), "no client certificate, no session")

        let with = try await Self.ensure(port: port, [
            "--kafka-ssl-ca-location", certificates.path("ca.pem"),
            "--kafka-ssl-certificate-location", certificates.path("client.pem"), "--kafka-ssl-key-location", certificates.path("client.key"),
        ])
        #expect(with.status == 1, "s_server is no Kafka broker")
        #expect(((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("rdkafka"), "\(with.standardError)")
    }
}
