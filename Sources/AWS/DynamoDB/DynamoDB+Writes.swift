import Foundation

/// One request of a `BatchWriteItem`.
public enum WriteRequest: Sendable, Hashable, Encodable {
    case put(DynamoDBItem)
    case delete(key: DynamoDBItem)

    enum CodingKeys: String, CodingKey { case PutRequest, DeleteRequest }
    enum ItemKeys: String, CodingKey { case Item, Key }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .put(let item):
            var nested = container.nestedContainer(keyedBy: ItemKeys.self, forKey: .PutRequest)
            try nested.encode(item, forKey: .Item)
        case .delete(let key):
            var nested = container.nestedContainer(keyedBy: ItemKeys.self, forKey: .DeleteRequest)
            try nested.encode(key, forKey: .Key)
        }
    }
}

/// What `UpdateItem` returns (`ReturnValues`).
public enum ReturnValues: String, Sendable, Hashable, Encodable {
    case none = "NONE"
    case allOld = "ALL_OLD"
    case updatedOld = "UPDATED_OLD"
    case allNew = "ALL_NEW"
    case updatedNew = "UPDATED_NEW"
}

extension DynamoDB {
    /// The most requests one `BatchWriteItem` may carry.
    public static let batchWriteLimit = 25

    /// Turns the table's stream on (with a view type) or off.
    public func updateTable(_ name: String, streamSpecification: StreamSpecification) async throws -> TableDescription {
        struct Input: Encodable {
            var TableName: String
            var StreamSpecification: StreamSpecification
        }
        let output: TableOutput = try await client.call(
            "UpdateTable",
            input: Input(TableName: name, StreamSpecification: streamSpecification)
        )
        return output.table
    }

    /// Updates (or creates) the item with this key. A failed condition is an
    /// ``AWSError`` of type `ConditionalCheckFailedException`. Returns the
    /// attributes `returnValues` asks for (empty for `.none`).
    @discardableResult
    public func updateItem(
        table: String,
        key: DynamoDBItem,
        updateExpression: String,
        conditionExpression: String? = nil,
        expressionAttributeNames: [String: String]? = nil,
        expressionAttributeValues: DynamoDBItem? = nil,
        returnValues: ReturnValues = .none
    ) async throws -> DynamoDBItem {
        struct Input: Encodable {
            var TableName: String
            var Key: DynamoDBItem
            var UpdateExpression: String
            var ConditionExpression: String?
            var ExpressionAttributeNames: [String: String]?
            var ExpressionAttributeValues: DynamoDBItem?
            var ReturnValues: ReturnValues
        }
        struct Output: Decodable { var Attributes: DynamoDBItem? }
        let output: Output = try await client.call(
            "UpdateItem",
            input: Input(
                TableName: table, Key: key, UpdateExpression: updateExpression, ConditionExpression: conditionExpression,
                ExpressionAttributeNames: expressionAttributeNames, ExpressionAttributeValues: expressionAttributeValues,
                ReturnValues: returnValues
            )
        )
        return output.Attributes ?? [:]
    }

    /// Writes every request, in chunks of ``batchWriteLimit``. Requests DynamoDB
    /// leaves unprocessed (throttling) are sent again after a backoff (the
    /// configuration's ``AWSRetryPolicy``, throttling base) up to `maxRounds`
    /// times per chunk; then an ``AWSError`` of type `UnprocessedItems` says how
    /// many remain. Not atomic: chunks before a failure stay written.
    public func batchWriteItem(table: String, requests: [WriteRequest], maxRounds: Int = 8) async throws {
        struct Input: Encodable { var RequestItems: [String: [WriteRequest]] }
        struct Output: Decodable { var UnprocessedItems: [String: [RawWriteRequest]]? }
        var start = 0
        while start < requests.count {
            var pending = Array(requests[start..<min(start + Self.batchWriteLimit, requests.count)])
            start += Self.batchWriteLimit
            var round = 1
            while true {
                let output: Output = try await client.call("BatchWriteItem", input: Input(RequestItems: [table: pending]))
                let unprocessed = (output.UnprocessedItems?[table] ?? []).compactMap(\.request)
                if unprocessed.isEmpty { break }
                guard round < maxRounds else {
                    throw AWSError(
                        operation: client.name("BatchWriteItem"),
                        type: "UnprocessedItems",
                        message: "\(unprocessed.count) of \(pending.count) requests still unprocessed after \(round) rounds",
                        attempts: round
                    )
                }
                try await Task.sleep(for: client.configuration.retryPolicy.delay(beforeRetry: round, throttled: true))
                pending = unprocessed
                round += 1
            }
        }
    }
}

/// A write request as DynamoDB returns it in `UnprocessedItems`.
struct RawWriteRequest: Decodable {
    struct Put: Decodable { var Item: DynamoDBItem }
    struct Delete: Decodable { var Key: DynamoDBItem }
    var PutRequest: Put?
    var DeleteRequest: Delete?

    var request: WriteRequest? {
        if let PutRequest { return .put(PutRequest.Item) }
        if let DeleteRequest { return .delete(key: DeleteRequest.Key) }
        return nil
    }
}
