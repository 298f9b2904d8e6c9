import Foundation

/// A failed AWS call: the service's error, or a transport failure.
///
/// `description` is one line and never contains credentials.
public struct AWSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `Service.Operation`, e.g. `DynamoDB.PutItem`.
    public var operation: String
    /// The error code without namespace, e.g. `ResourceNotFoundException`,
    /// or `ConnectionError`, `RequestTimeout`, `InvalidResponse` for failures on this side.
    public var type: String
    public var message: String
    public var statusCode: Int?
    public var requestID: String?
    /// For `TransactionCanceledException`: one code per transaction item, in
    /// order (`ConditionalCheckFailed`, `None`, …).
    public var cancellationReasons: [String]
    /// How many attempts were made before giving up.
    public var attempts: Int
    /// For authentication failures (a wrong secret, an unknown or expired key):
    /// the access key id the request was signed with. Never the secret.
    public var accessKeyID: String?

    public init(
        operation: String,
        type: String,
        message: String,
        statusCode: Int? = nil,
        requestID: String? = nil,
        cancellationReasons: [String] = [],
        attempts: Int = 1,
        accessKeyID: String? = nil
    ) {
        self.operation = operation
        self.type = type
        self.message = message
        self.statusCode = statusCode
        self.requestID = requestID
        self.cancellationReasons = cancellationReasons
        self.attempts = attempts
        self.accessKeyID = accessKeyID
    }

    // Well-known codes.
    public static let connectionError = "ConnectionError"
    public static let requestTimeout = "RequestTimeout"
    public static let invalidResponse = "InvalidResponse"
    /// A response body larger than the client accepts (a misbehaving endpoint); retried.
    public static let responseTooLarge = "ResponseTooLarge"
    public static let resourceNotFound = "ResourceNotFoundException"
    public static let conditionalCheckFailed = "ConditionalCheckFailedException"
    public static let transactionCanceled = "TransactionCanceledException"
    public static let expiredIterator = "ExpiredIteratorException"
    public static let trimmedDataAccess = "TrimmedDataAccessException"

    static let throttlingTypes: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException",
        "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
        "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
        "EC2ThrottledException",
    ]

    static let transientTypes: Set<String> = [
        connectionError, requestTimeout, responseTooLarge, "RequestTimeoutException", "InternalServerError",
        "InternalFailure", "InternalError", "ServiceUnavailable", "ServiceUnavailableException",
        "InternalServerErrorException",
    ]

    static let authenticationTypes: Set<String> = [
        "SignatureDoesNotMatch", "InvalidSignatureException", "IncompleteSignature", "IncompleteSignatureException",
        "UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId", "MissingAuthenticationToken",
        "MissingAuthenticationTokenException", "ExpiredToken", "ExpiredTokenException", "AuthFailure",
        "AccessDenied", "AccessDeniedException", "InvalidToken",
    ]

    /// The service did not accept the credentials (or they may not do this).
    public var isAuthenticationFailure: Bool {
        Self.authenticationTypes.contains(type)
    }

    /// The service asked the caller to slow down.
    public var isThrottling: Bool {
        statusCode == 429 || Self.throttlingTypes.contains(type)
    }

    /// Trying the same request again may succeed: throttling, 5xx, transport failures.
    public var isRetriable: Bool {
        isThrottling || Self.transientTypes.contains(type) || (statusCode.map { $0 >= 500 } ?? false)
    }

    public var description: String {
        var text = "\(operation) failed: \(type): \(message)"
        if !cancellationReasons.isEmpty {
            text += " [reasons: \(cancellationReasons.joined(separator: ", "))]"
        }
        var details: [String] = []
        if let statusCode { details.append("HTTP \(statusCode)") }
        if let accessKeyID { details.append("access key id \(accessKeyID)") }
        if let requestID { details.append("request id \(requestID)") }
        if attempts > 1 { details.append("after \(attempts) attempts") }
        if !details.isEmpty { text += " (\(details.joined(separator: ", ")))" }
        return Self.oneLine(text)
    }

    static func oneLine(_ text: String) -> String {
        var out = ""
        var lastWasSpace = false
        for ch in text {
            if ch.isNewline || ch == "\t" || ch == " " {
                if !lastWasSpace { out.append(" ") }
                lastWasSpace = true
            } else {
                out.append(ch)
                lastWasSpace = false
            }
        }
        return out.trimmingCharacters(in: .whitespaces)
    }
}

// MARK: - Parsing error responses

extension AWSError {
    /// Builds the error for a non-2xx response: AWS JSON (`__type` + `message`),
    /// XML (`<Code>` + `<Message>`, as moto answers some failures), or anything
    /// else (HTML from a proxy or moto's 500 page), described by its status.
    public static func fromResponse(
        operation: String,
        statusCode: Int,
        headers: [(name: String, value: String)],
        body: [UInt8]
    ) -> AWSError {
        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name }?.value
        }
        let headerRequestID = header("x-amzn-requestid") ?? header("x-amz-request-id")
        let headerType = header("x-amzn-errortype").map(shortType)

        var error = AWSError(
            operation: operation,
            type: headerType ?? fallbackType(statusCode),
            message: "",
            statusCode: statusCode,
            requestID: headerRequestID
        )
        let text = String(decoding: body, as: UTF8.self)
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)

        if trimmed.hasPrefix("{"),
            let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        {
            let rawType = (object["__type"] ?? object["code"] ?? object["Code"]) as? String
            if let rawType, !rawType.isEmpty { error.type = shortType(rawType) }
            error.message = (object["message"] ?? object["Message"] ?? object["errorMessage"]) as? String ?? ""
            if let reasons = object["CancellationReasons"] as? [Any] {
                error.cancellationReasons = reasons.map { (($0 as? [String: Any])?["Code"] as? String) ?? "None" }
            }
        } else if trimmed.hasPrefix("<"), let code = xmlElement("Code", in: trimmed), !code.isEmpty {
            error.type = shortType(code)
            error.message = xmlElement("Message", in: trimmed) ?? ""
            error.requestID = error.requestID ?? xmlElement("RequestId", in: trimmed) ?? xmlElement("RequestID", in: trimmed)
        } else {
            error.message = summary(ofNonAWSBody: trimmed)
        }
        if error.cancellationReasons.isEmpty, error.type == transactionCanceled {
            error.cancellationReasons = reasonsFromMessage(error.message)
        }
        // A blank code (`<Code></Code>`, `"__type": " "`) says nothing: the status's type stands.
        if error.type.allSatisfy(\.isWhitespace) { error.type = headerType.flatMap { $0.allSatisfy(\.isWhitespace) ? nil : $0 } ?? fallbackType(statusCode) }
        if error.message.isEmpty {
            error.message = "HTTP \(statusCode) with no error message"
        }
        return error
    }

    /// `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException` → `ResourceNotFoundException`;
    /// `ValidationException:http://internal.amazon.com/...` → `ValidationException`.
    static func shortType(_ raw: String) -> String {
        var type = Substring(raw)
        if let hash = type.lastIndex(of: "#") { type = type[type.index(after: hash)...] }
        if let colon = type.firstIndex(of: ":") { type = type[..<colon] }
        let result = type.trimmingCharacters(in: .whitespaces)
        return result.isEmpty ? raw : result
    }

    static func fallbackType(_ status: Int) -> String {
        switch status {
        case 400: "BadRequest"
        case 403: "AccessDenied"
        case 404: "NotFound"
        case 413: "RequestEntityTooLarge"
        case 429: "TooManyRequestsException"
        case 500: "InternalServerError"
        case 502: "BadGateway"
        case 503: "ServiceUnavailable"
        case 504: "GatewayTimeout"
        default: "HTTP\(status)"
        }
    }

    /// "… specific reasons [ConditionalCheckFailed, None]" → ["ConditionalCheckFailed", "None"].
    static func reasonsFromMessage(_ message: String) -> [String] {
        guard let open = message.lastIndex(of: "["), let close = message.lastIndex(of: "]"), open < close else {
            return []
        }
        return message[message.index(after: open)..<close]
            .split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    static func xmlElement(_ name: String, in text: String) -> String? {
        guard let start = text.range(of: "<\(name)>"),
            let end = text.range(of: "</\(name)>", range: start.upperBound..<text.endIndex)
        else { return nil }
        return xmlUnescape(String(text[start.upperBound..<end.lowerBound]))
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func xmlUnescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// The text of an HTML or plain body: its `<title>` and first paragraph, tags removed, at most 300 characters.
    static func summary(ofNonAWSBody text: String) -> String {
        var plain = ""
        var inTag = false
        for ch in text {
            if ch == "<" {
                inTag = true
                plain.append(" ")
            } else if ch == ">" {
                inTag = false
            } else if !inTag {
                plain.append(ch)
            }
        }
        let collapsed = oneLine(xmlUnescape(plain))
        return collapsed.count > 300 ? String(collapsed.prefix(300)) + "…" : collapsed
    }
}
