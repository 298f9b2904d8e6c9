import Foundation

/// A private moto_server that checks every signature (the shared one accepts any), with one IAM
/// user and its access key: what real AWS would accept or refuse. (Session credentials are not
/// checked this way: moto 5.2.1 in this mode rejects the tokens of its own GetSessionToken even
/// from botocore.)
public final class VerifyingMotoServer: @unchecked Sendable {
    let process: ChildProcess
    public let port: Int
    public let accessKeyID: String
    public let secretAccessKey: String

    static let script = #"""
        import os, sys, socket, threading
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"   # the IAM set-up below; signatures are checked after it
        s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
        from moto.server import ThreadedMotoServer
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        import boto3
        url = f"http://127.0.0.1:{port}"
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="fanout")
        iam.put_user_policy(UserName="fanout", PolicyName="all",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}')
        key = iam.create_access_key(UserName="fanout")["AccessKey"]
        print(port, key["AccessKeyId"], key["SecretAccessKey"], flush=True)
        threading.Timer(170, lambda: os._exit(0)).start()   # never outlive a crashed test
        sys.stdin.read()                                      # ends when the test closes stdin
        os._exit(0)
        """#

    public init() throws {
        process = try ChildProcess("/usr/bin/env", ["python3", "-c", Self.script], standardInput: .pipe, standardOutput: .capture)
        let line = process.waitForFirstLine(timeout: .seconds(120)) ?? ""
        let fields = line.split(separator: " ").map(String.init)
        guard fields.count == 3, let port = Int(fields[0]) else {
            process.closeInput()
            throw Failure(description: "moto_server in auth mode did not start: pip install 'moto[server]==5.2.1' boto3")
        }
        self.port = port
        accessKeyID = fields[1]
        secretAccessKey = fields[2]
    }

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// The environment a deployment would give Fanout, with these keys.
    public func environment(secret: String) -> [String: String] {
        [
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": url, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": accessKeyID, "AWS_SECRET_ACCESS_KEY": secret,
        ]
    }

    /// Closes the server's stdin, on which it exits; it is not waited for (that would block).
    public func stop() {
        process.closeInput()
    }
}
