import Foundation
import Testing

@testable import AWS

@Suite struct AWSErrorParsingTests {
    @Test func awsJSONError() {
        let body = #"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#
        let error = AWSError.fromResponse(
            operation: "DynamoDB.PutItem", statusCode: 400,
            headers: [(name: "x-amzn-RequestId", value: "REQ123")], body: Array(body.utf8)
        )
        #expect(error.type == "ResourceNotFoundException")
        #expect(error.message == "Requested resource not found")
        #expect(error.statusCode == 400)
        #expect(error.requestID == "REQ123")
        #expect(!error.isRetriable)
        #expect(
            error.description
                == "DynamoDB.PutItem failed: ResourceNotFoundException: Requested resource not found (HTTP 400, request id REQ123)"
        )
    }

    @Test func throttlingJSONErrorWithCapitalMessage() {
        let body = #"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","Message":"slow down"}"#
        let error = AWSError.fromResponse(operation: "DynamoDB.Query", statusCode: 400, headers: [], body: Array(body.utf8))
        #expect(error.type == "ProvisionedThroughputExceededException")
        #expect(error.message == "slow down")
        #expect(error.isThrottling)
        #expect(error.isRetriable)
    }

    @Test func transactionCanceledCarriesReasons() {
        let body = #"""
            {"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
             "CancellationReasons":[{"Code":"None"},{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"}],
             "Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]"}
            """#
        let error = AWSError.fromResponse(operation: "DynamoDB.TransactWriteItems", statusCode: 400, headers: [], body: Array(body.utf8))
        #expect(error.type == "TransactionCanceledException")
        #expect(error.cancellationReasons == ["None", "ConditionalCheckFailed"])
        #expect(!error.description.contains("\n"))
        // Without the structured list, the reasons come from the message.
        let bare = #"{"__type":"TransactionCanceledException","message":"Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]"}"#
        let fromMessage = AWSError.fromResponse(operation: "X.Y", statusCode: 400, headers: [], body: Array(bare.utf8))
        #expect(fromMessage.cancellationReasons == ["ConditionalCheckFailed", "None"])
    }

    @Test func motoXMLError() {
        let body = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code>
            <Message>The request signature we calculated does not match &amp; so on</Message></Error></Errors>
            <RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ErrorResponse>
            """
        let error = AWSError.fromResponse(operation: "DynamoDB.ListTables", statusCode: 403, headers: [], body: Array(body.utf8))
        #expect(error.type == "SignatureDoesNotMatch")
        #expect(error.message == "The request signature we calculated does not match & so on")
        #expect(error.requestID == "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE")
        #expect(!error.isRetriable)
    }

    @Test func htmlServerError() {
        let body = """
            <!doctype html>
            <html lang=en>
            <title>500 Internal Server Error</title>
            <h1>Internal Server Error</h1>
            <p>The server encountered an internal error and was unable to complete your request.</p>
            """
        let error = AWSError.fromResponse(operation: "DynamoDBStreams.GetRecords", statusCode: 500, headers: [], body: Array(body.utf8))
        #expect(error.type == "InternalServerError")
        #expect(error.message.hasPrefix("500 Internal Server Error Internal Server Error The server encountered"))
        #expect(error.isRetriable)
        #expect(!error.description.contains("<"))
    }

    @Test func emptyAndGarbageBodies() {
        let empty = AWSError.fromResponse(operation: "A.B", statusCode: 503, headers: [], body: [])
        #expect(empty.type == "ServiceUnavailable")
        #expect(empty.message == "HTTP 503 with no error message")
        #expect(empty.isRetriable)
        let truncated = AWSError.fromResponse(operation: "A.B", statusCode: 400, headers: [], body: Array(#"{"__type":"com.x#Valid"#.utf8))
        #expect(truncated.type == "BadRequest")
        let header = AWSError.fromResponse(
            operation: "A.B", statusCode: 400,
            headers: [(name: "X-Amzn-ErrorType", value: "ValidationException:http://internal.amazon.com/coral/")],
            body: []
        )
        #expect(header.type == "ValidationException")
    }
}

@Suite struct CredentialsAndConfigurationTests {
    @Test func credentialsNeverShowTheSecret() {
        let credentials = AWSCredentials(accessKeyID: "AKIDPUBLIC", secretAccessKey: "SECRETSECRET", sessionToken: "TOKENTOKEN")
        for text in [credentials.description, "\(credentials)", String(reflecting: credentials)] {
            #expect(text.contains("AKIDPUBLIC"))
            #expect(!text.contains("SECRETSECRET"))
            #expect(!text.contains("TOKENTOKEN"))
        }
    }

    @Test func environmentCredentials() async throws {
        let provider = EnvironmentCredentialProvider(environment: [
            "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "TK",
        ])
        let credentials = try await provider.credentials()
        #expect(credentials == AWSCredentials(accessKeyID: "AK", secretAccessKey: "SK", sessionToken: "TK"))
        let missing = EnvironmentCredentialProvider(environment: ["AWS_ACCESS_KEY_ID": "AK"])
        await #expect {
            _ = try await missing.credentials()
        } throws: { error in
            "\(error)".contains("AWS_SECRET_ACCESS_KEY") && !"\(error)".contains("AWS_ACCESS_KEY_ID")
        }
    }

    @Test func configurationFromEnvironment() throws {
        let base = ["AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"]
        #expect {
            _ = try AWSConfiguration.fromEnvironment(base)
        } throws: { "\($0)".contains("AWS_REGION") }

        let plain = try AWSConfiguration.fromEnvironment(base.merging(["AWS_DEFAULT_REGION": "eu-west-1"]) { $1 })
        #expect(plain.region == "eu-west-1")
        #expect(plain.endpoint(for: .dynamoDB).absoluteString == "https://dynamodb.eu-west-1.amazonaws.com")
        #expect(plain.endpoint(for: .dynamoDBStreams).absoluteString == "https://streams.dynamodb.eu-west-1.amazonaws.com")
        #expect(plain.endpoint(for: .kinesis).absoluteString == "https://kinesis.eu-west-1.amazonaws.com")

        let local = try AWSConfiguration.fromEnvironment(
            base.merging([
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "eu-west-1",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
                "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": "http://127.0.0.1:6000",
            ]) { $1 }
        )
        #expect(local.region == "us-east-1")
        #expect(local.endpoint(for: .dynamoDB).absoluteString == "http://127.0.0.1:5000")
        #expect(local.endpoint(for: .dynamoDBStreams).absoluteString == "http://127.0.0.1:6000")
        #expect(local.endpoint(for: .kinesis).absoluteString == "http://127.0.0.1:5000")

        #expect {
            _ = try AWSConfiguration.fromEnvironment(base.merging(["AWS_REGION": "x", "AWS_ENDPOINT_URL_KINESIS": "not a url"]) { $1 })
        } throws: { "\($0)".contains("AWS_ENDPOINT_URL_KINESIS") }
        #expect {
            _ = try AWSConfiguration.fromEnvironment(base.merging(["AWS_REGION": "eu west/1"]) { $1 })
        } throws: { "\($0)".contains("not a region name") }
        // Without credentials the configuration still builds: the chain is resolved on first use.
        let keyless = try AWSConfiguration.fromEnvironment(["AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"])
        #expect(keyless.credentialProvider is DefaultCredentialProvider)
    }

    @Test func retryDelaysAreBoundedFullJitter() {
        let policy = AWSRetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        for retry in 1...10 {
            let delay = policy.delay(beforeRetry: retry, throttled: false)
            let ceiling = min(Duration.seconds(1), .milliseconds(100) * (1 << (retry - 1)))
            #expect(delay >= .zero && delay <= ceiling)
        }
        // Full jitter: not always the ceiling.
        let delays = Set((0..<50).map { _ in policy.delay(beforeRetry: 5, throttled: false) })
        #expect(delays.count > 1)
    }

    /// Found by the aws-error fuzz target (Fuzz/Regressions/aws-error): an empty `<Code>` made an error without a type.
    @Test(arguments: [
        ("<Error><Code></Code><Message>m</Message></Error>", [(name: String, value: String)]()),
        (#"{"__type":"   ","message":"m"}"#, []),
        ("<Code>  </Code>", [(name: "x-amzn-ErrorType", value: "ThrottlingException:http://x")]),
    ])
    func aBlankErrorCodeFallsBackToTheHeaderOrTheStatus(body: String, headers: [(name: String, value: String)]) {
        let error = AWSError.fromResponse(operation: "A.B", statusCode: 500, headers: headers, body: Array(body.utf8))
        #expect(error.type == (headers.isEmpty ? "InternalServerError" : "ThrottlingException"), "\(error)")
        #expect(error.isRetriable)
    }
}
