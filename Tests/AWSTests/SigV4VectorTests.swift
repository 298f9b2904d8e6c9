import Crypto
import Foundation
import Testing
import TestSupport

@testable import AWS

/// One case folder of the official SigV4 suite (`../shared/testdata/aws-sigv4`).
struct SigV4Vector: CustomTestStringConvertible, Sendable {
    var name: String
    var folder: URL

    var testDescription: String { name }

    static var root: URL {
        let beside = TestServices.packageRoot.appendingPathComponent("../shared/testdata/aws-sigv4").standardized
        if FileManager.default.fileExists(atPath: beside.path) { return beside }
        return URL(fileURLWithPath: "/work/shared/testdata/aws-sigv4")
    }

    /// Every case folder. All are header-signing cases; the `query-*` files in
    /// them (presigned URLs) are not used because Fanout signs headers only.
    static var all: [SigV4Vector] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.sorted().compactMap { name in
            let folder = root.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("request.txt").path) else {
                return nil
            }
            return SigV4Vector(name: name, folder: folder)
        }
    }

    func text(_ file: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
    }

    struct Context: Decodable {
        struct Credentials: Decodable {
            var access_key_id: String
            var secret_access_key: String
            var token: String?
        }
        var credentials: Credentials
        var region: String
        var service: String
        var timestamp: String
        var normalize: Bool
        var sign_body: Bool
        var omit_session_token: Bool?
    }

    struct Request {
        var method: String
        var path: String
        var query: String?
        var headers: [(name: String, value: String)]
        var body: [UInt8]
    }

    func context() throws -> Context {
        try JSONDecoder().decode(Context.self, from: Data(try text("context.json").utf8))
    }

    /// Parses `request.txt`: request line, `Name:value` lines, blank line, body.
    /// The path is taken literally (it may hold spaces or UTF-8, as the suite intends).
    func request() throws -> Request {
        let raw = try text("request.txt")
        let (head, body): (Substring, Substring)
        if let blank = raw.range(of: "\n\n") {
            head = raw[..<blank.lowerBound]
            body = raw[blank.upperBound...]
        } else {
            head = Substring(raw)
            body = ""
        }
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false)
        let requestLine = try #require(lines.first)
        lines.removeFirst()
        let space = try #require(requestLine.firstIndex(of: " "))
        let versionStart = try #require(requestLine.range(of: " HTTP/", options: .backwards))
        let method = String(requestLine[..<space])
        let target = String(requestLine[requestLine.index(after: space)..<versionStart.lowerBound])
        var path = target
        var query: String? = nil
        if let q = target.firstIndex(of: "?") {
            path = String(target[..<q])
            query = String(target[target.index(after: q)...])
        }
        var headers: [(name: String, value: String)] = []
        for line in lines where !line.isEmpty {
            let colon = try #require(line.firstIndex(of: ":"))
            headers.append((name: String(line[..<colon]), value: String(line[line.index(after: colon)...])))
        }
        return Request(method: method, path: path, query: query, headers: headers, body: Array(body.utf8))
    }
}

@Suite struct SigV4VectorTests {
    @Test func theSuiteIsPresentAndComplete() {
        // 30 case folders in aws-c-auth's v4 suite at the pinned commit.
        #expect(SigV4Vector.all.count == 30, "found \(SigV4Vector.all.count) cases in \(SigV4Vector.root.path)")
    }

    @Test(arguments: SigV4Vector.all)
    func headerSigningStepByStep(_ vector: SigV4Vector) throws {
        let context = try vector.context()
        let request = try vector.request()
        let date = try #require(ISO8601DateFormatter().date(from: context.timestamp))
        let signer = SigV4Signer(
            credentials: AWSCredentials(
                accessKeyID: context.credentials.access_key_id,
                secretAccessKey: context.credentials.secret_access_key,
                sessionToken: context.credentials.token
            ),
            region: context.region,
            service: context.service
        )

        // The headers the signer adds before signing, as the suite expects them.
        var headers = request.headers
        headers.append((name: "X-Amz-Date", value: SigV4Signer.amzDate(date)))
        if let token = context.credentials.token, context.omit_session_token != true {
            headers.append((name: "X-Amz-Security-Token", value: token))
        }
        let bodyHash = SigV4Signer.hexSHA256(request.body)
        if context.sign_body {
            headers.append((name: "x-amz-content-sha256", value: bodyHash))
        }

        // 1. canonical request
        let canonical = signer.canonicalRequest(
            method: request.method,
            path: request.path,
            query: request.query,
            headers: headers,
            bodyHash: bodyHash,
            normalizePath: context.normalize
        )
        #expect(canonical.request == (try vector.text("header-canonical-request.txt")))

        // 2. string to sign
        let stringToSign = signer.stringToSign(canonicalRequest: canonical.request, date: date)
        #expect(stringToSign == (try vector.text("header-string-to-sign.txt")))

        // 3. signature
        let signature = signer.signature(stringToSign: stringToSign, date: date)
        #expect(signature == (try vector.text("header-signature.txt")).trimmingCharacters(in: .whitespacesAndNewlines))

        // 4. the whole thing: the headers signHeaders adds match the signed request.
        let signedRequest = try vector.text("header-signed-request.txt")
        func expectedHeader(_ name: String) -> String? {
            signedRequest.split(separator: "\n")
                .first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
                .map { String($0.dropFirst(name.count + 1)) }
        }
        let added = signer.signHeaders(
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: request.body,
            date: date,
            normalizePath: context.normalize,
            addContentSHA256: context.sign_body
        )
        let authorization = try #require(added.first { $0.name == "Authorization" }?.value)
        #expect(authorization == expectedHeader("Authorization"))
        #expect(added.first { $0.name == "X-Amz-Date" }?.value == expectedHeader("X-Amz-Date"))
        #expect(added.first { $0.name == "X-Amz-Security-Token" }?.value == expectedHeader("X-Amz-Security-Token"))
    }
}

@Suite struct SigV4SignerUnitTests {
    let signer = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1",
        service: "service"
    )

    @Test func datesAreUTCAndZeroPadded() {
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 1_440_938_160)) == "20150830T123600Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 0)) == "19700101T000000Z")
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 951_868_799)) == "20000229T235959Z")
        #expect(SigV4Signer.amzDay(Date(timeIntervalSince1970: 4_102_444_800)) == "21000101")
    }

    @Test func signingKeyMatchesTheDocumentedExample() {
        // AWS documentation's derived key for this secret, 20150830/us-east-1/iam.
        let iam = SigV4Signer(credentials: signer.credentials, region: "us-east-1", service: "iam")
        let key = iam.signingKey(date: Date(timeIntervalSince1970: 1_440_938_160))
        let hex = key.withUnsafeBytes { SigV4Signer.hex($0) }
        #expect(hex == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
    }

    @Test func signHeadersAddsHostWithPortAndTheToken() {
        var withToken = signer
        withToken.credentials.sessionToken = "TOKEN"
        let url = URL(string: "http://127.0.0.1:4566")!
        let added = withToken.signHeaders(method: "POST", url: url, headers: [], body: [])
        #expect(added.first { $0.name == "host" }?.value == "127.0.0.1:4566")
        #expect(added.first { $0.name == "X-Amz-Security-Token" }?.value == "TOKEN")
        let authorization = added.first { $0.name == "Authorization" }?.value ?? ""
        #expect(authorization.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"))
        let https = signer.signHeaders(method: "POST", url: URL(string: "https://dynamodb.eu-west-1.amazonaws.com:443/")!, headers: [], body: [])
        #expect(https.first { $0.name == "host" }?.value == "dynamodb.eu-west-1.amazonaws.com")
    }
}
