import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport

/// A python3 stand-in for the ECS container credentials endpoint and EC2's
/// instance metadata service (IMDSv2). Every credential it hands out is new:
/// `AKID<n>`, `SECRET-<n>-xyz`, `TOKEN-<n>-xyz`, expiring `ttl` seconds later.
final class CredentialServer {
    let process: ChildProcess
    let port: Int
    static let authorization = "Bearer container-token"

    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }

    static let script = #"""
        import sys, json, time, http.server, threading, os, datetime
        def watchdog():
            sys.stdin.read()
            os._exit(0)
        threading.Thread(target=watchdog, daemon=True).start()
        threading.Timer(120, lambda: os._exit(0)).start()
        ttl = float(sys.argv[1]); auth = sys.argv[2]; hang = sys.argv[3] == "hang"; issued = [0]; lock = threading.Lock()
        def creds():
            with lock:
                issued[0] += 1; n = issued[0]
            time.sleep(0.3)   # slow enough for concurrent callers to overlap
            exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=ttl)
            return json.dumps({"Code": "Success", "AccessKeyId": f"AKID{n}", "SecretAccessKey": f"SECRET-{n}-xyz",
                               "Token": f"TOKEN-{n}-xyz", "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")})
        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def answer(self, status, text):
                data = text.encode(); self.send_response(status)
                self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
            def do_PUT(self):
                if hang:
                    time.sleep(60)   # an address where nothing answers
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self.answer(200, "IMDS-SESSION")
                else:
                    self.answer(400, "bad token request")
            def do_GET(self):
                if self.path == "/issued":
                    return self.answer(200, str(issued[0]))
                if self.path == "/container":
                    if self.headers.get("Authorization") != auth:
                        return self.answer(401, "wrong authorization")
                    return self.answer(200, creds())
                if self.path.startswith("/latest/meta-data/iam/security-credentials/"):
                    if self.headers.get("X-aws-ec2-metadata-token") != "IMDS-SESSION":
                        return self.answer(401, "")
                    role = self.path[len("/latest/meta-data/iam/security-credentials/"):]
                    if role == "":
                        return self.answer(200, "fanout-role\n")
                    if role == "fanout-role":
                        return self.answer(200, creds())
                self.answer(404, "not found")
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """#

    /// - Parameter ttl: seconds from issue to expiration of each credential.
    /// - Parameter hang: never answer the IMDS token request.
    init(ttl: Double = 3600, hang: Bool = false) throws {
        process = try ChildProcess(
            "/usr/bin/env", ["python3", "-c", Self.script, String(ttl), Self.authorization, hang ? "hang" : "answer"],
            standardInput: .pipe, standardOutput: .capture, standardError: .inherit)
        guard let port = process.waitForFirstLine(timeout: .seconds(60)).flatMap({ Int($0) }) else {
            process.closeInput()
            throw ScriptedServer.ServerFailure(description: "the python3 credential server did not start")
        }
        self.port = port
    }

    /// How many credentials were handed out.
    func issued() async throws -> Int {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(url)/issued"), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1024)
        return Int(String(buffer: body)) ?? -1
    }

    /// Closes the server's stdin, on which it exits; it is not waited for (that would block).
    func stop() {
        process.closeInput()
    }
}
