import Crypto
import Foundation

/// AWS Signature Version 4, header form.
///
/// Every step is a separate method so tests can check it against the official
/// vectors; every method that depends on the time takes the `date`.
public struct SigV4Signer: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// SHA-256 of the empty body.
    public static let emptyBodyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// Headers never signed (the ones botocore leaves out, plus the signature itself).
    static let unsignedHeaders: Set<String> = ["authorization", "user-agent", "expect", "x-amzn-trace-id"]

    public var credentials: AWSCredentials
    public var region: String
    public var service: String

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    // MARK: Signing

    /// Returns the headers to add to the request: `Authorization`, `X-Amz-Date`,
    /// `X-Amz-Security-Token` when the credentials have a session token, and
    /// `host` when `headers` has none.
    public func signHeaders(
        method: String,
        url: URL,
        headers: [(name: String, value: String)],
        body: [UInt8],
        date: Date = Date()
    ) -> [(name: String, value: String)] {
        var path = url.path(percentEncoded: true)
        if path.isEmpty { path = "/" }
        var added: [(name: String, value: String)] = []
        if !headers.contains(where: { $0.name.lowercased() == "host" }) {
            added.append((name: "host", value: Self.hostHeader(for: url)))
        }
        return added
            + signHeaders(
                method: method,
                path: path,
                query: url.query(percentEncoded: true),
                headers: headers + added,
                body: body,
                date: date
            )
    }

    /// Signs a request given by its parts. `path` is the path as sent on the
    /// request line; it is URI-encoded once more, as every service but S3 expects.
    /// `headers` must include `host`.
    ///
    /// - Parameters:
    ///   - normalizePath: remove `.`/`..` segments and empty segments first (not for S3).
    ///   - addContentSHA256: also send and sign `x-amz-content-sha256`.
    /// - Returns: the headers to add (not including `host`).
    public func signHeaders(
        method: String,
        path: String,
        query: String?,
        headers: [(name: String, value: String)],
        body: [UInt8],
        date: Date = Date(),
        normalizePath: Bool = true,
        addContentSHA256: Bool = false
    ) -> [(name: String, value: String)] {
        let bodyHash = Self.hexSHA256(body)
        var added: [(name: String, value: String)] = [(name: "X-Amz-Date", value: Self.amzDate(date))]
        if let token = credentials.sessionToken,
            !headers.contains(where: { $0.name.lowercased() == "x-amz-security-token" })
        {
            added.append((name: "X-Amz-Security-Token", value: token))
        }
        if addContentSHA256 {
            added.append((name: "x-amz-content-sha256", value: bodyHash))
        }
        let canonical = canonicalRequest(
            method: method,
            path: path,
            query: query,
            headers: headers + added,
            bodyHash: bodyHash,
            normalizePath: normalizePath
        )
        let toSign = stringToSign(canonicalRequest: canonical.request, date: date)
        let sig = signature(stringToSign: toSign, date: date)
        added.append(
            (
                name: "Authorization",
                value: authorization(signature: sig, signedHeaders: canonical.signedHeaders, date: date)
            )
        )
        return added
    }

    // MARK: Steps

    /// Step 1: the canonical request and the `SignedHeaders` list.
    public func canonicalRequest(
        method: String,
        path: String,
        query: String?,
        headers: [(name: String, value: String)],
        bodyHash: String,
        normalizePath: Bool = true
    ) -> (request: String, signedHeaders: String) {
        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(headers)
        let request = [
            method.uppercased(),
            Self.canonicalURI(path, normalize: normalizePath),
            Self.canonicalQuery(query ?? ""),
            canonicalHeaders,
            signedHeaders,
            bodyHash,
        ].joined(separator: "\n")
        return (request, signedHeaders)
    }

    /// `yyyymmdd/region/service/aws4_request`
    public func credentialScope(date: Date) -> String {
        "\(Self.amzDay(date))/\(region)/\(service)/aws4_request"
    }

    /// Step 2: the string to sign.
    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        [
            Self.algorithm,
            Self.amzDate(date),
            credentialScope(date: date),
            Self.hexSHA256(Array(canonicalRequest.utf8)),
        ].joined(separator: "\n")
    }

    /// Step 3: the signing key, derived from the secret for this day, region and service.
    public func signingKey(date: Date) -> SymmetricKey {
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [Self.amzDay(date), region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    /// Step 4: the hex signature of the string to sign.
    public func signature(stringToSign: String, date: Date) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: signingKey(date: date))
        return Self.hex(mac)
    }

    /// Step 5: the `Authorization` header value.
    public func authorization(signature: String, signedHeaders: String, date: Date) -> String {
        "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(credentialScope(date: date)), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    // MARK: Canonical forms

    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (headers: String, signed: String) {
        var values: [String: [String]] = [:]
        for header in headers {
            let name = header.name.lowercased()
            if unsignedHeaders.contains(name) { continue }
            values[name, default: []].append(normalizeHeaderValue(header.value))
        }
        let sorted = values.sorted { $0.key < $1.key }
        let lines = sorted.map { "\($0.key):\($0.value.joined(separator: ","))\n" }.joined()
        return (lines, sorted.map(\.key).joined(separator: ";"))
    }

    /// Trims the value and collapses runs of spaces into one.
    static func normalizeHeaderValue(_ value: String) -> String {
        var result = ""
        var lastWasSpace = false
        for scalar in value.trimmingCharacters(in: .whitespaces).unicodeScalars {
            if scalar == " " || scalar == "\t" {
                if !lastWasSpace { result.unicodeScalars.append(" ") }
                lastWasSpace = true
            } else {
                result.unicodeScalars.append(scalar)
                lastWasSpace = false
            }
        }
        return result
    }

    static func canonicalURI(_ path: String, normalize: Bool) -> String {
        var path = path.isEmpty ? "/" : path
        if normalize {
            var segments: [Substring] = []
            for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
                switch segment {
                case ".": continue
                case "..": _ = segments.popLast()
                default: segments.append(segment)
                }
            }
            let endsWithSlash = path.hasSuffix("/") && !segments.isEmpty
            path = "/" + segments.joined(separator: "/") + (endsWithSlash ? "/" : "")
        }
        return path.split(separator: "/", omittingEmptySubsequences: false)
            .map { uriEncode(String($0)) }
            .joined(separator: "/")
    }

    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        var pairs: [(String, String)] = []
        for item in query.split(separator: "&", omittingEmptySubsequences: true) {
            let key: Substring
            let value: Substring
            if let eq = item.firstIndex(of: "=") {
                key = item[..<eq]
                value = item[item.index(after: eq)...]
            } else {
                key = item
                value = ""
            }
            let decodedKey = String(key).removingPercentEncoding ?? String(key)
            let decodedValue = String(value).removingPercentEncoding ?? String(value)
            pairs.append((uriEncode(decodedKey), uriEncode(decodedValue)))
        }
        pairs.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        return pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// RFC 3986 encoding of everything but the unreserved characters, upper-case hex.
    static func uriEncode(_ string: String) -> String {
        var out = ""
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%"
                out += hexDigits[Int(byte >> 4)]
                out += hexDigits[Int(byte & 0x0F)]
            }
        }
        return out
    }

    private static let hexDigits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]

    static func hostHeader(for url: URL) -> String {
        let host = url.host ?? ""
        guard let port = url.port else { return host }
        let scheme = url.scheme?.lowercased()
        if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) { return host }
        return "\(host):\(port)"
    }

    // MARK: Hashing and dates

    public static func hexSHA256(_ bytes: [UInt8]) -> String {
        hex(SHA256.hash(data: bytes))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var out = ""
        out.reserveCapacity(64)
        for byte in bytes {
            let text = String(byte, radix: 16)
            if text.count == 1 { out += "0" }
            out += text
        }
        return out
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public static func amzDate(_ date: Date) -> String {
        let (y, m, d, hh, mm, ss) = civil(date)
        return pad(y, 4) + pad(m, 2) + pad(d, 2) + "T" + pad(hh, 2) + pad(mm, 2) + pad(ss, 2) + "Z"
    }

    /// `yyyyMMdd` in UTC.
    public static func amzDay(_ date: Date) -> String {
        let (y, m, d, _, _, _) = civil(date)
        return pad(y, 4) + pad(m, 2) + pad(d, 2)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    /// UTC calendar fields of a date (Howard Hinnant's days-to-civil algorithm).
    private static func civil(_ date: Date) -> (Int, Int, Int, Int, Int, Int) {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = Int((Double(seconds) / 86400).rounded(.down))
        let secondOfDay = seconds - days * 86400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, secondOfDay / 3600, (secondOfDay % 3600) / 60, secondOfDay % 60)
    }
}
