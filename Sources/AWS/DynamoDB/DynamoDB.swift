import AsyncHTTPClient
import Foundation
import Logging

/// The DynamoDB operations Fanout uses.
public struct DynamoDB: Sendable {
    public let client: AWSJSONClient

    public init(configuration: AWSConfiguration, httpClient: HTTPClient, logger: Logger) {
        self.client = AWSJSONClient(service: .dynamoDB, configuration: configuration, httpClient: httpClient, logger: logger)
    }

    // MARK: Tables

    public func createTable(_ input: CreateTableInput) async throws -> TableDescription {
        let output: TableOutput = try await client.call("CreateTable", input: input)
        return output.table
    }

    public func describeTable(_ name: String) async throws -> TableDescription {
        let output: TableOutput = try await client.call("DescribeTable", input: ["TableName": name])
        return output.table
    }

    /// Polls `DescribeTable` until the table is `ACTIVE`; an ``AWSError`` of type
    /// `WaiterTimeout` when it is not within `timeout`.
    public func waitUntilActive(_ name: String, timeout: Duration) async throws -> TableDescription {
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.milliseconds(50)
        while true {
            let table = try await describeTable(name)
            if table.isActive { return table }
            guard ContinuousClock.now + pause < deadline else {
                throw AWSError(
                    operation: client.name("DescribeTable"),
                    type: "WaiterTimeout",
                    message: "table \(name) is still \(table.tableStatus) after \(timeout)"
                )
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(2))
        }
    }

    public func deleteTable(_ name: String) async throws {
        try await client.send("DeleteTable", input: ["TableName": name])
    }

    // MARK: Items

    /// Writes an item; a failed condition is an ``AWSError`` of type `ConditionalCheckFailedException`.
    public func putItem(
        table: String,
        item: DynamoDBItem,
        conditionExpression: String? = nil,
        expressionAttributeNames: [String: String]? = nil,
        expressionAttributeValues: DynamoDBItem? = nil
    ) async throws {
        struct Input: Encodable {
            var TableName: String
            var Item: DynamoDBItem
            var ConditionExpression: String?
            var ExpressionAttributeNames: [String: String]?
            var ExpressionAttributeValues: DynamoDBItem?
        }
        try await client.send(
            "PutItem",
            input: Input(
                TableName: table, Item: item, ConditionExpression: conditionExpression,
                ExpressionAttributeNames: expressionAttributeNames, ExpressionAttributeValues: expressionAttributeValues
            )
        )
    }

    /// The item with this key, or nil.
    public func getItem(table: String, key: DynamoDBItem, consistentRead: Bool = true) async throws -> DynamoDBItem? {
        struct Input: Encodable {
            var TableName: String
            var Key: DynamoDBItem
            var ConsistentRead: Bool
        }
        struct Output: Decodable { var Item: DynamoDBItem? }
        let output: Output = try await client.call(
            "GetItem",
            input: Input(TableName: table, Key: key, ConsistentRead: consistentRead)
        )
        return output.Item
    }

    /// Deletes the item with this key (no error when there is none).
    public func deleteItem(
        table: String,
        key: DynamoDBItem,
        conditionExpression: String? = nil,
        expressionAttributeNames: [String: String]? = nil,
        expressionAttributeValues: DynamoDBItem? = nil
    ) async throws {
        struct Input: Encodable {
            var TableName: String
            var Key: DynamoDBItem
            var ConditionExpression: String?
            var ExpressionAttributeNames: [String: String]?
            var ExpressionAttributeValues: DynamoDBItem?
        }
        try await client.send(
            "DeleteItem",
            input: Input(
                TableName: table, Key: key, ConditionExpression: conditionExpression,
                ExpressionAttributeNames: expressionAttributeNames, ExpressionAttributeValues: expressionAttributeValues
            )
        )
    }

    /// Writes all items or none. When a condition fails, the ``AWSError`` has type
    /// `TransactionCanceledException` and one code per item in `cancellationReasons`
    /// (`ConditionalCheckFailed` for the failing one, `None` for the others).
    public func transactWriteItems(_ items: [TransactWriteItem], clientRequestToken: String? = nil) async throws {
        struct Input: Encodable {
            var TransactItems: [TransactWriteItem]
            var ClientRequestToken: String?
        }
        try await client.send("TransactWriteItems", input: Input(TransactItems: items, ClientRequestToken: clientRequestToken))
    }

    /// One page of a query; pass `lastEvaluatedKey` back as `exclusiveStartKey` for the next.
    public func query(
        table: String,
        keyConditionExpression: String,
        expressionAttributeNames: [String: String]? = nil,
        expressionAttributeValues: DynamoDBItem,
        exclusiveStartKey: DynamoDBItem? = nil,
        limit: Int? = nil,
        scanIndexForward: Bool = true,
        consistentRead: Bool = true,
        indexName: String? = nil
    ) async throws -> (items: [DynamoDBItem], lastEvaluatedKey: DynamoDBItem?) {
        struct Input: Encodable {
            var TableName: String
            var IndexName: String?
            var KeyConditionExpression: String
            var ExpressionAttributeNames: [String: String]?
            var ExpressionAttributeValues: DynamoDBItem
            var ExclusiveStartKey: DynamoDBItem?
            var Limit: Int?
            var ScanIndexForward: Bool
            var ConsistentRead: Bool
        }
        struct Output: Decodable {
            var Items: [DynamoDBItem]?
            var LastEvaluatedKey: DynamoDBItem?
        }
        let output: Output = try await client.call(
            "Query",
            input: Input(
                TableName: table, IndexName: indexName, KeyConditionExpression: keyConditionExpression,
                ExpressionAttributeNames: expressionAttributeNames, ExpressionAttributeValues: expressionAttributeValues,
                ExclusiveStartKey: exclusiveStartKey, Limit: limit, ScanIndexForward: scanIndexForward,
                ConsistentRead: consistentRead
            )
        )
        let last = output.LastEvaluatedKey.flatMap { $0.isEmpty ? nil : $0 }
        return (output.Items ?? [], last)
    }
}

/// `{"Table": …}` or `{"TableDescription": …}`.
struct TableOutput: Decodable {
    var table: TableDescription

    enum CodingKeys: String, CodingKey {
        case table = "Table"
        case tableDescription = "TableDescription"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let table = try c.decodeIfPresent(TableDescription.self, forKey: .table) {
            self.table = table
        } else {
            self.table = try c.decode(TableDescription.self, forKey: .tableDescription)
        }
    }
}
