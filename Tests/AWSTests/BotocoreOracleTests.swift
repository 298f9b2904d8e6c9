import Foundation
import TestSupport
import Testing

@testable import AWS

/// Compares signatures with botocore's SigV4Auth, run through python3.
@Suite struct BotocoreOracleTests {
    struct Case: Codable {
        var method: String
        var url: String
        var headers: [String: String]
        var body: [UInt8]
        var accessKeyID: String
        var secret: String
        var token: String?
        var region: String
        var service: String
        var epochSeconds: Double
    }

    struct Answer: Codable {
        var authorization: String
        var amzDate: String
        var token: String?
    }

    static let script = #"""
        import sys, json, datetime
        from unittest import mock
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        out = []
        for c in json.load(sys.stdin):
            when = datetime.datetime.fromtimestamp(c["epochSeconds"], datetime.timezone.utc).replace(tzinfo=None)
            req = AWSRequest(method=c["method"], url=c["url"], data=bytes(c["body"]), headers=c["headers"])
            auth = SigV4Auth(Credentials(c["accessKeyID"], c["secret"], c.get("token")), c["service"], c["region"])
            with mock.patch("botocore.auth.get_current_datetime", lambda *a, **k: when):
                auth.add_auth(req)
            out.append({"authorization": req.headers["Authorization"], "amzDate": req.headers["X-Amz-Date"],
                        "token": req.headers.get("X-Amz-Security-Token")})
        json.dump(out, sys.stdout)
        """#

    static func botocore(_ cases: [Case]) async throws -> [Answer] {
        let (result, _) = try await ChildProcess.run("/usr/bin/env", ["python3", "-c", script], input: try JSONEncoder().encode(cases))
        guard result.status == 0 else {
            throw OracleFailure(description: "python3/botocore failed (\(result.termination)): \(result.standardError)")
        }
        return try JSONDecoder().decode([Answer].self, from: Data(result.standardOutput.utf8))
    }

    struct OracleFailure: Error, CustomStringConvertible { var description: String }

    static let cases: [Case] = [
        Case(
            method: "POST", url: "http://127.0.0.1:4566/",
            headers: ["Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.PutItem"],
            body: Array(#"{"TableName":"t","Item":{"pk":{"S":"héllo wörld ✓ 日本"}}}"#.utf8),
            accessKeyID: "AKIDEXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token: nil,
            region: "us-east-1", service: "dynamodb", epochSeconds: 1_440_938_160
        ),
        Case(
            method: "POST", url: "https://streams.dynamodb.eu-central-1.amazonaws.com",
            headers: ["Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords"],
            body: Array(#"{"ShardIterator":"arn:aws:dynamodb:…/stream/x|1|AAA="}"#.utf8),
            accessKeyID: "ASIAEXAMPLE", secret: "secret/with+chars=", token: "FwoGZXIvYXdzE//////////wEaDOKEN+/=",
            region: "eu-central-1", service: "dynamodb", epochSeconds: 1_709_251_199  // 2024-02-29T23:59:59Z
        ),
        Case(
            method: "GET", url: "https://kinesis.ap-southeast-2.amazonaws.com:8443/some/path?b=2&a=1&a=0&c=%20x",
            headers: ["X-Custom": "  spaced    value  "],
            body: [],
            accessKeyID: "AKID2", secret: "s2", token: "t2",
            region: "ap-southeast-2", service: "kinesis", epochSeconds: 946_598_400  // 1999-12-31T00:00:00Z
        ),
        Case(
            method: "POST", url: "http://localhost:8000",
            headers: ["Content-Type": "application/x-amz-json-1.1"],
            body: [0xC3, 0xA9, 0x00, 0xFF, 0x7B],
            accessKeyID: "AKID3", secret: "s3", token: nil,
            region: "us-west-2", service: "sts", epochSeconds: 1_924_992_001  // 2031-01-01T00:00:01Z
        ),
    ]

    @Test func signaturesMatchBotocore() async throws {
        let answers = try await Self.botocore(Self.cases)
        try #require(answers.count == Self.cases.count)
        for (c, expected) in zip(Self.cases, answers) {
            let signer = SigV4Signer(
                credentials: AWSCredentials(accessKeyID: c.accessKeyID, secretAccessKey: c.secret, sessionToken: c.token),
                region: c.region,
                service: c.service
            )
            let url = try #require(URL(string: c.url))
            let added = signer.signHeaders(
                method: c.method,
                url: url,
                headers: c.headers.map { (name: $0.key, value: $0.value) },
                body: c.body,
                date: Date(timeIntervalSince1970: c.epochSeconds)
            )
            func value(_ name: String) -> String? { added.first { $0.name == name }?.value }
            #expect(value("Authorization") == expected.authorization, "\(c.url)")
            #expect(value("X-Amz-Date") == expected.amzDate, "\(c.url)")
            #expect(value("X-Amz-Security-Token") == expected.token, "\(c.url)")
        }
    }
}
