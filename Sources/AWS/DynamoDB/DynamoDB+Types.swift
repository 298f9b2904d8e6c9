import Foundation

public enum KeyType: String, Sendable, Hashable, Codable {
    case hash = "HASH"
    case range = "RANGE"
}

/// The type of a key attribute.
public enum ScalarAttributeType: String, Sendable, Hashable, Codable {
    case string = "S"
    case number = "N"
    case binary = "B"
}

public struct KeySchemaElement: Sendable, Hashable, Codable {
    public var attributeName: String
    public var keyType: KeyType

    public init(attributeName: String, keyType: KeyType) {
        self.attributeName = attributeName
        self.keyType = keyType
    }

    enum CodingKeys: String, CodingKey {
        case attributeName = "AttributeName"
        case keyType = "KeyType"
    }
}

public struct AttributeDefinition: Sendable, Hashable, Codable {
    public var attributeName: String
    public var attributeType: ScalarAttributeType

    public init(attributeName: String, attributeType: ScalarAttributeType) {
        self.attributeName = attributeName
        self.attributeType = attributeType
    }

    enum CodingKeys: String, CodingKey {
        case attributeName = "AttributeName"
        case attributeType = "AttributeType"
    }
}

/// What a table's stream records carry.
public enum StreamViewType: String, Sendable, Hashable, Codable {
    case keysOnly = "KEYS_ONLY"
    case newImage = "NEW_IMAGE"
    case oldImage = "OLD_IMAGE"
    case newAndOldImages = "NEW_AND_OLD_IMAGES"
}

public struct StreamSpecification: Sendable, Hashable, Codable {
    public var enabled: Bool
    public var viewType: StreamViewType?

    public init(enabled: Bool, viewType: StreamViewType? = nil) {
        self.enabled = enabled
        self.viewType = viewType
    }

    enum CodingKeys: String, CodingKey {
        case enabled = "StreamEnabled"
        case viewType = "StreamViewType"
    }
}

public enum BillingMode: Sendable, Hashable {
    case payPerRequest
    case provisioned(readCapacityUnits: Int, writeCapacityUnits: Int)
}

public struct CreateTableInput: Sendable, Hashable, Encodable {
    public var tableName: String
    public var keySchema: [KeySchemaElement]
    public var attributeDefinitions: [AttributeDefinition]
    public var billingMode: BillingMode
    public var streamSpecification: StreamSpecification?

    public init(
        tableName: String,
        keySchema: [KeySchemaElement],
        attributeDefinitions: [AttributeDefinition],
        billingMode: BillingMode = .payPerRequest,
        streamSpecification: StreamSpecification? = nil
    ) {
        self.tableName = tableName
        self.keySchema = keySchema
        self.attributeDefinitions = attributeDefinitions
        self.billingMode = billingMode
        self.streamSpecification = streamSpecification
    }

    /// A table keyed by a partition key and an optional sort key.
    public init(
        tableName: String,
        partitionKey: (name: String, type: ScalarAttributeType),
        sortKey: (name: String, type: ScalarAttributeType)? = nil,
        billingMode: BillingMode = .payPerRequest,
        streamSpecification: StreamSpecification? = nil
    ) {
        var keys = [KeySchemaElement(attributeName: partitionKey.name, keyType: .hash)]
        var definitions = [AttributeDefinition(attributeName: partitionKey.name, attributeType: partitionKey.type)]
        if let sortKey {
            keys.append(KeySchemaElement(attributeName: sortKey.name, keyType: .range))
            definitions.append(AttributeDefinition(attributeName: sortKey.name, attributeType: sortKey.type))
        }
        self.init(
            tableName: tableName,
            keySchema: keys,
            attributeDefinitions: definitions,
            billingMode: billingMode,
            streamSpecification: streamSpecification
        )
    }

    enum CodingKeys: String, CodingKey {
        case tableName = "TableName"
        case keySchema = "KeySchema"
        case attributeDefinitions = "AttributeDefinitions"
        case billingMode = "BillingMode"
        case provisionedThroughput = "ProvisionedThroughput"
        case streamSpecification = "StreamSpecification"
    }

    struct Throughput: Encodable {
        var ReadCapacityUnits: Int
        var WriteCapacityUnits: Int
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tableName, forKey: .tableName)
        try c.encode(keySchema, forKey: .keySchema)
        try c.encode(attributeDefinitions, forKey: .attributeDefinitions)
        switch billingMode {
        case .payPerRequest:
            try c.encode("PAY_PER_REQUEST", forKey: .billingMode)
        case .provisioned(let read, let write):
            try c.encode("PROVISIONED", forKey: .billingMode)
            try c.encode(Throughput(ReadCapacityUnits: read, WriteCapacityUnits: write), forKey: .provisionedThroughput)
        }
        try c.encodeIfPresent(streamSpecification, forKey: .streamSpecification)
    }
}

public struct TableDescription: Sendable, Hashable, Decodable {
    public var tableName: String
    /// `CREATING`, `ACTIVE`, `UPDATING`, `DELETING`, …
    public var tableStatus: String
    public var tableARN: String?
    public var keySchema: [KeySchemaElement]
    public var streamSpecification: StreamSpecification?
    public var latestStreamARN: String?
    public var latestStreamLabel: String?
    public var itemCount: Int?

    public var isActive: Bool { tableStatus == "ACTIVE" }

    public init(
        tableName: String,
        tableStatus: String,
        tableARN: String? = nil,
        keySchema: [KeySchemaElement] = [],
        streamSpecification: StreamSpecification? = nil,
        latestStreamARN: String? = nil,
        latestStreamLabel: String? = nil,
        itemCount: Int? = nil
    ) {
        self.tableName = tableName
        self.tableStatus = tableStatus
        self.tableARN = tableARN
        self.keySchema = keySchema
        self.streamSpecification = streamSpecification
        self.latestStreamARN = latestStreamARN
        self.latestStreamLabel = latestStreamLabel
        self.itemCount = itemCount
    }

    enum CodingKeys: String, CodingKey {
        case tableName = "TableName"
        case tableStatus = "TableStatus"
        case tableARN = "TableArn"
        case keySchema = "KeySchema"
        case streamSpecification = "StreamSpecification"
        case latestStreamARN = "LatestStreamArn"
        case latestStreamLabel = "LatestStreamLabel"
        case itemCount = "ItemCount"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tableName = try c.decode(String.self, forKey: .tableName)
        tableStatus = try c.decode(String.self, forKey: .tableStatus)
        tableARN = try c.decodeIfPresent(String.self, forKey: .tableARN)
        keySchema = try c.decodeIfPresent([KeySchemaElement].self, forKey: .keySchema) ?? []
        streamSpecification = try c.decodeIfPresent(StreamSpecification.self, forKey: .streamSpecification)
        latestStreamARN = try c.decodeIfPresent(String.self, forKey: .latestStreamARN)
        latestStreamLabel = try c.decodeIfPresent(String.self, forKey: .latestStreamLabel)
        itemCount = try c.decodeIfPresent(Int.self, forKey: .itemCount)
    }
}

/// One action of a `TransactWriteItems` call. `names` and `values` are the
/// expression attribute names (`#n`) and values (`:v`) of its expressions.
public enum TransactWriteItem: Sendable, Hashable {
    case put(
        table: String,
        item: DynamoDBItem,
        condition: String? = nil,
        names: [String: String] = [:],
        values: DynamoDBItem = [:]
    )
    case update(
        table: String,
        key: DynamoDBItem,
        updateExpression: String,
        condition: String? = nil,
        names: [String: String] = [:],
        values: DynamoDBItem = [:]
    )
    case conditionCheck(
        table: String,
        key: DynamoDBItem,
        condition: String,
        names: [String: String] = [:],
        values: DynamoDBItem = [:]
    )
    case delete(
        table: String,
        key: DynamoDBItem,
        condition: String? = nil,
        names: [String: String] = [:],
        values: DynamoDBItem = [:]
    )
}

extension TransactWriteItem: Encodable {
    struct Action: Encodable {
        var TableName: String
        var Item: DynamoDBItem?
        var Key: DynamoDBItem?
        var UpdateExpression: String?
        var ConditionExpression: String?
        var ExpressionAttributeNames: [String: String]?
        var ExpressionAttributeValues: DynamoDBItem?
    }

    enum CodingKeys: String, CodingKey {
        case put = "Put", update = "Update", conditionCheck = "ConditionCheck", delete = "Delete"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        func nonEmpty<T: Collection>(_ value: T) -> T? { value.isEmpty ? nil : value }
        switch self {
        case .put(let table, let item, let condition, let names, let values):
            try c.encode(
                Action(
                    TableName: table, Item: item, ConditionExpression: condition,
                    ExpressionAttributeNames: nonEmpty(names), ExpressionAttributeValues: nonEmpty(values)
                ),
                forKey: .put
            )
        case .update(let table, let key, let update, let condition, let names, let values):
            try c.encode(
                Action(
                    TableName: table, Key: key, UpdateExpression: update, ConditionExpression: condition,
                    ExpressionAttributeNames: nonEmpty(names), ExpressionAttributeValues: nonEmpty(values)
                ),
                forKey: .update
            )
        case .conditionCheck(let table, let key, let condition, let names, let values):
            try c.encode(
                Action(
                    TableName: table, Key: key, ConditionExpression: condition,
                    ExpressionAttributeNames: nonEmpty(names), ExpressionAttributeValues: nonEmpty(values)
                ),
                forKey: .conditionCheck
            )
        case .delete(let table, let key, let condition, let names, let values):
            try c.encode(
                Action(
                    TableName: table, Key: key, ConditionExpression: condition,
                    ExpressionAttributeNames: nonEmpty(names), ExpressionAttributeValues: nonEmpty(values)
                ),
                forKey: .delete
            )
        }
    }
}
