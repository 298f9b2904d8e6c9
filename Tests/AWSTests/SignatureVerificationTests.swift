import AsyncHTTPClient
import Foundation
import Logging
import Testing

@testable import AWS

/// A private moto_server with signature checking on (the shared one accepts
/// any signature): it owns an IAM user and that user's access key. (Session
/// credentials are not checked here: moto 5.2.1 in this mode rejects the tokens
/// of its own GetSessionToken even from botocore; the session-token vectors and
/// the botocore oracle cover them.)
final class VerifyingMotoServer {
    let process = Process()
    let input = Pipe()
    let port: Int
    let credentials: AWSCredentials

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
        threading.Timer(120, lambda: os._exit(0)).start()   # never outlive a crashed test
        sys.stdin.read()                                      # ends when the test closes stdin
        os._exit(0)
        """#

    init() throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script]
        process.standardOutput = output
        process.standardInput = input
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        let fields = String(decoding: line, as: UTF8.self).split(separator: " ").map(String.init)
        guard fields.count == 3, let port = Int(fields[0]) else {
            try? input.fileHandleForWriting.close()
            throw ScriptedServer.ServerFailure(description: "moto_server with signature checks did not start (is moto[server] installed?)")
        }
        self.port = port
        credentials = AWSCredentials(accessKeyID: fields[1], secretAccessKey: fields[2])
    }

    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

@Suite struct SignatureVerificationTests {
    func configuration(_ server: VerifyingMotoServer, _ credentials: AWSCredentials) -> AWSConfiguration {
        AWSConfiguration(
            region: "us-east-1",
            credentialProvider: StaticCredentialProvider(credentials),
            endpoint: server.url,
            retryPolicy: .none
        )
    }

    @Test func motoVerifiesOurSignaturesAndRejectsWrongOnes() async throws {
        let server = try await startOffPool { try VerifyingMotoServer() }
        defer { server.stop() }
        let logger = Logger(label: "t")

        do {
            let credentials = server.credentials
            let dynamoDB = DynamoDB(configuration: configuration(server, credentials), httpClient: .shared, logger: logger)
            let table = "signed-key"
            _ = try await dynamoDB.createTable(
                CreateTableInput(
                    tableName: table, partitionKey: (name: "pk", type: .string),
                    streamSpecification: StreamSpecification(enabled: true, viewType: .newImage)
                )
            )
            try await dynamoDB.putItem(table: table, item: ["pk": .s("ünïcødé ✓")])
            #expect(try await dynamoDB.getItem(table: table, key: ["pk": .s("ünïcødé ✓")]) != nil)
            // Streams are signed with service name "dynamodb" too.
            let streams = DynamoDBStreams(configuration: configuration(server, credentials), httpClient: .shared, logger: logger)
            #expect(try await streams.listStreams(tableName: table).count == 1)
        }

        var wrong = server.credentials
        wrong.secretAccessKey = "not-the-secret"
        let rejected = DynamoDB(configuration: configuration(server, wrong), httpClient: .shared, logger: logger)
        let error = await #expect(throws: AWSError.self) {
            _ = try await rejected.describeTable("signed-key")
        }
        #expect(error?.type == "SignatureDoesNotMatch")
        #expect(error?.statusCode == 403)
        #expect(error?.isRetriable == false)
        #expect(!(error?.description.contains("not-the-secret") ?? true))
        #expect(error?.accessKeyID == server.credentials.accessKeyID)

        try await CredentialProviderTests.checkSignedAssumeRole(on: server)
    }
}
