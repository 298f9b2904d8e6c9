import Foundation
import TestSupport

/// A throwaway HTTP server (python3) that answers with scripted responses in
/// order and records every request it gets, for tests of retries, timeouts
/// and malformed answers.
final class ScriptedServer {
    struct Response: Encodable {
        var status: Int
        var body: String
        var headers: [String: String] = [:]
        /// Seconds to wait before answering.
        var delay: Double = 0
        /// A misbehaving answer instead of `body`: `trickle` (a 1 MB Content-Length, then one byte every
        /// 0.2 s: a response that never ends), `reset` (10 bytes of 1,000, then a TCP reset), `giant`
        /// (`size` bytes of body, written as fast as the client reads).
        var behavior: String? = nil
        var size: Int = 0
    }

    struct RecordedRequest: Decodable {
        var path: String
        var headers: [String: String]
        var body: String
    }

    let process: ChildProcess
    let port: Int
    let logFile: URL

    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }

    static let script = #"""
        import sys, json, time, http.server, threading, os, socket, struct
        # The test process may block SIGTERM for its children, so the server ends
        # when its stdin closes (stop(), or the test process dying), or after 120 s.
        def watchdog():
            sys.stdin.read()
            os._exit(0)
        threading.Thread(target=watchdog, daemon=True).start()
        threading.Timer(120, lambda: os._exit(0)).start()
        responses = json.loads(sys.argv[1]); log = sys.argv[2]; n = [0]
        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with open(log, "a") as f:
                    f.write(json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": body.decode("utf-8", "replace")}) + "\n")
                r = responses[min(n[0], len(responses) - 1)]; n[0] += 1
                time.sleep(r.get("delay", 0))
                behavior = r.get("behavior")
                if behavior == "trickle":
                    self.send_response(r["status"]); self.send_header("Content-Length", "1000000"); self.end_headers()
                    self.wfile.write(b'{"Records":['); self.wfile.flush()
                    for _ in range(600):
                        time.sleep(0.2); self.wfile.write(b" "); self.wfile.flush()
                    return
                if behavior == "reset":
                    self.send_response(r["status"]); self.send_header("Content-Length", "1000"); self.end_headers()
                    self.wfile.write(b'{"Records":['); self.wfile.flush()
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    return
                if behavior == "giant":
                    size = r["size"]
                    self.send_response(r["status"]); self.send_header("Content-Length", str(size)); self.end_headers()
                    chunk = b" " * 65536
                    sent = 0
                    while sent < size:
                        self.wfile.write(chunk[: min(len(chunk), size - sent)]); sent += len(chunk)
                    return
                data = r["body"].encode()
                self.send_response(r["status"])
                for k, v in r.get("headers", {}).items(): self.send_header(k, v)
                self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """#

    /// Starts a server off the cooperative pool (its start-up read blocks).
    static func start(_ responses: [Response]) async throws -> ScriptedServer {
        try await startOffPool { try ScriptedServer(responses) }
    }

    init(_ responses: [Response]) throws {
        logFile = FileManager.default.temporaryDirectory.appendingPathComponent("scripted-\(UUID().uuidString).jsonl")
        process = try ChildProcess(
            "/usr/bin/env",
            ["python3", "-c", Self.script, String(decoding: try JSONEncoder().encode(responses), as: UTF8.self), logFile.path],
            standardInput: .pipe, standardOutput: .capture, standardError: .inherit)
        guard let port = process.waitForFirstLine(timeout: .seconds(60)).flatMap({ Int($0) }) else {
            process.closeInput()
            throw ServerFailure(description: "the scripted python3 server did not start")
        }
        self.port = port
    }

    struct ServerFailure: Error, CustomStringConvertible { var description: String }

    func requests() throws -> [RecordedRequest] {
        guard let text = try? String(contentsOf: logFile, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(RecordedRequest.self, from: Data($0.utf8)) }
    }

    /// Closes the server's stdin, on which it exits; it is not waited for (that would block).
    func stop() {
        process.closeInput()
        try? FileManager.default.removeItem(at: logFile)
    }
}
