import AWS
import Foundation
import Logging

/// The events table in DynamoDB: partition key `aggregateId` (S), sort key
/// `sequenceNumber` (N), one item per event (DESIGN.md's contract), with a
/// stream of NEW_AND_OLD_IMAGES for Fanout to read.
public struct DynamoDBEventStore: EventStore {
    /// TransactWriteItems takes at most 100 actions.
    public static let maximumEventsPerAppend = 100

    public let dynamoDB: DynamoDB
    public let tableName: String
    /// Items per Query page when reading an aggregate's history (nil: DynamoDB's 1 MB pages).
    public let queryPageSize: Int?

    public init(dynamoDB: DynamoDB, tableName: String, queryPageSize: Int? = nil) {
        self.dynamoDB = dynamoDB
        self.tableName = tableName
        self.queryPageSize = queryPageSize
    }

    /// Creates the events table with its stream if it does not exist, and waits until it is active.
    /// Returns the stream ARN.
    @discardableResult
    public func createTableIfMissing(timeout: Duration = .seconds(30)) async throws -> String? {
        do {
            let description = try await dynamoDB.describeTable(tableName)
            return description.latestStreamARN
        } catch let error as AWSError where error.type == "ResourceNotFoundException" {
            _ = try await dynamoDB.createTable(Self.tableDefinition(tableName))
        }
        return try await dynamoDB.waitUntilActive(tableName, timeout: timeout).latestStreamARN
    }

    /// The events table's definition: keys, on-demand billing, NEW_AND_OLD_IMAGES stream.
    public static func tableDefinition(_ name: String) -> CreateTableInput {
        CreateTableInput(
            tableName: name,
            partitionKey: (GenericDomainEventMessage.Field.aggregateID, .string),
            sortKey: (GenericDomainEventMessage.Field.sequenceNumber, .number),
            streamSpecification: StreamSpecification(enabled: true, viewType: .newAndOldImages)
        )
    }

    public func append(_ events: [GenericDomainEventMessage]) async throws {
        guard let first = events.first else { return }
        precondition(events.count <= Self.maximumEventsPerAppend, "at most \(Self.maximumEventsPerAppend) events per append")
        // Every item gets all of `requiredItemStrings` (the timestamp is always written); an empty one would be
        // dead-lettered by the router, so it is refused here, before anything is stored.
        for event in events {
            for (field, text) in [(GenericDomainEventMessage.Field.messageID, event.messageID), (GenericDomainEventMessage.Field.aggregateType, event.aggregateType)]
            where text.isEmpty {
                throw EventDecodingError(field: field, reason: "is empty in event \(event.eventName) of aggregate \(event.aggregateID); the events table requires it")
            }
        }
        let items = events.map { event in
            TransactWriteItem.put(
                table: tableName,
                item: event.item,
                condition: "attribute_not_exists(#seq)",
                names: ["#seq": GenericDomainEventMessage.Field.sequenceNumber]
            )
        }
        do {
            // One token for every retry of this write: DynamoDB then answers a retry of a write that already
            // succeeded (its answer lost to a timeout) with success, not with a failed condition.
            try await dynamoDB.transactWriteItems(items, clientRequestToken: UUID().uuidString)
        } catch let error as AWSError where error.type == "TransactionCanceledException" && error.cancellationReasons.contains("ConditionalCheckFailed") {
            throw ConcurrencyConflictError(aggregateID: first.aggregateID, expectedVersion: first.sequenceNumber - 1)
        }
    }

    public func events(aggregateID: String, after: Int64) async throws -> [GenericDomainEventMessage] {
        var events: [GenericDomainEventMessage] = []
        var startKey: DynamoDBItem? = nil
        repeat {
            let page = try await dynamoDB.query(
                table: tableName,
                keyConditionExpression: "#id = :id AND #seq > :after",
                expressionAttributeNames: ["#id": GenericDomainEventMessage.Field.aggregateID, "#seq": GenericDomainEventMessage.Field.sequenceNumber],
                expressionAttributeValues: [":id": .s(aggregateID), ":after": .n(String(after))],
                exclusiveStartKey: startKey,
                limit: queryPageSize
            )
            for item in page.items { events.append(try GenericDomainEventMessage(item: item)) }
            startKey = page.lastEvaluatedKey
        } while startKey != nil
        return events
    }
}
