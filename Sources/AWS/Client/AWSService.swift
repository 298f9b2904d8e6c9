/// The AWS services this module talks to.
public enum AWSService: String, Sendable, Hashable, CaseIterable {
    case dynamoDB
    case dynamoDBStreams
    case kinesis
    case sts

    /// The name used in error messages and logs (`DynamoDB.PutItem`).
    public var displayName: String {
        switch self {
        case .dynamoDB: "DynamoDB"
        case .dynamoDBStreams: "DynamoDBStreams"
        case .kinesis: "Kinesis"
        case .sts: "STS"
        }
    }

    /// The service name in the SigV4 credential scope. DynamoDB Streams signs as `dynamodb`.
    public var signingName: String {
        switch self {
        case .dynamoDB, .dynamoDBStreams: "dynamodb"
        case .kinesis: "kinesis"
        case .sts: "sts"
        }
    }

    /// The `X-Amz-Target` prefix of the JSON protocol.
    public var targetPrefix: String {
        switch self {
        case .dynamoDB: "DynamoDB_20120810"
        case .dynamoDBStreams: "DynamoDBStreams_20120810"
        case .kinesis: "Kinesis_20131202"
        case .sts: "AWSSecurityTokenServiceV20110615"
        }
    }

    /// `application/x-amz-json-1.0` or `-1.1`.
    public var jsonContentType: String {
        switch self {
        case .dynamoDB, .dynamoDBStreams: "application/x-amz-json-1.0"
        case .kinesis, .sts: "application/x-amz-json-1.1"
        }
    }

    /// The host name prefix of the public endpoint (`dynamodb.us-east-1.amazonaws.com`).
    var endpointPrefix: String {
        switch self {
        case .dynamoDB: "dynamodb"
        case .dynamoDBStreams: "streams.dynamodb"
        case .kinesis: "kinesis"
        case .sts: "sts"
        }
    }

    /// The suffix of the per-service endpoint variable (`AWS_ENDPOINT_URL_DYNAMODB_STREAMS`).
    var environmentSuffix: String {
        switch self {
        case .dynamoDB: "DYNAMODB"
        case .dynamoDBStreams: "DYNAMODB_STREAMS"
        case .kinesis: "KINESIS"
        case .sts: "STS"
        }
    }
}
