import AWS
import Foundation
import JSON

/// A state-stored aggregate: its current state is kept as one item, versioned.
public protocol StateStoredAggregate: Codable, Sendable {
    static var aggregateType: String { get }
    var id: String { get }
}

/// An aggregate's state as loaded, with the version that a save must still find.
public struct VersionedState<A: StateStoredAggregate>: Sendable {
    public var state: A
    /// The stored version (0 for an aggregate not stored yet).
    public let version: Int64

    public init(state: A, version: Int64) {
        self.state = state
        self.version = version
    }
}

/// Keeps aggregates' state in a DynamoDB table (`id` S partition key, `version` N, `state` M), and writes the
/// new state together with the events it produced in one TransactWriteItems: either both are stored or neither.
/// A concurrent writer makes the save fail with `ConcurrencyConflictError` (reload and retry).
public struct StateStoredRepository<A: StateStoredAggregate>: Sendable {
    public let dynamoDB: DynamoDB
    public let stateTable: String
    public let eventStore: DynamoDBEventStore

    public init(dynamoDB: DynamoDB, stateTable: String, eventStore: DynamoDBEventStore) {
        self.dynamoDB = dynamoDB
        self.stateTable = stateTable
        self.eventStore = eventStore
    }

    /// Creates the state table if it is missing.
    public func createTableIfMissing(timeout: Duration = .seconds(30)) async throws {
        do {
            _ = try await dynamoDB.describeTable(stateTable)
            return
        } catch let error as AWSError where error.type == "ResourceNotFoundException" {
            _ = try await dynamoDB.createTable(CreateTableInput(tableName: stateTable, partitionKey: ("id", .string)))
        }
        _ = try await dynamoDB.waitUntilActive(stateTable, timeout: timeout)
    }

    /// The aggregate's state and version, or nil when it was never saved.
    public func load(_ id: String) async throws -> VersionedState<A>? {
        guard let item = try await dynamoDB.getItem(table: stateTable, key: ["id": .s(id)]) else { return nil }
        guard case .n(let versionText)? = item["version"], let version = Int64(versionText), let state = item["state"] else {
            throw EventDecodingError(field: "version", reason: "state item \(id) in \(stateTable) has no numeric version or no state")
        }
        return VersionedState(state: try JSONValue(state).decode(as: A.self), version: version)
    }

    /// Stores `state` as version `expectedVersion + 1` together with `events` (numbered from `expectedVersion + 1`),
    /// if the stored version is still `expectedVersion`. Returns the stored events.
    @discardableResult
    public func save(
        _ state: A, expectedVersion: Int64, events payloads: [some EventPayload], causedBy command: GenericCommandMessage
    ) async throws -> [GenericDomainEventMessage] {
        var events: [GenericDomainEventMessage] = []
        for (offset, payload) in payloads.enumerated() {
            var metadata = MessageMetadata()
            metadata.correlationID = command.metadata.correlationID ?? command.messageID
            metadata.causationID = command.messageID
            metadata.traceparent = command.metadata.traceparent
            events.append(GenericDomainEventMessage(
                eventName: type(of: payload).eventName, aggregateID: state.id, aggregateType: A.aggregateType,
                sequenceNumber: expectedVersion + Int64(offset) + 1, payload: try JSONValue(encoding: payload), metadata: metadata
            ))
        }
        precondition(events.count < DynamoDBEventStore.maximumEventsPerAppend, "at most 99 events per save")
        let newVersion = expectedVersion + Int64(max(events.count, 1))
        let stateItem: DynamoDBItem = [
            "id": .s(state.id), "version": .n(String(newVersion)), "state": try JSONValue(encoding: state).attributeValue,
            "aggregateType": .s(A.aggregateType),
        ]
        let statePut = TransactWriteItem.put(
            table: stateTable, item: stateItem,
            condition: expectedVersion == 0 ? "attribute_not_exists(#id)" : "#version = :expected",
            names: expectedVersion == 0 ? ["#id": "id"] : ["#version": "version"],
            values: expectedVersion == 0 ? [:] : [":expected": .n(String(expectedVersion))]
        )
        let eventPuts = events.map { event in
            TransactWriteItem.put(
                table: eventStore.tableName, item: event.item,
                condition: "attribute_not_exists(#seq)", names: ["#seq": GenericDomainEventMessage.Field.sequenceNumber]
            )
        }
        do {
            // One token for every retry of this write: DynamoDB then answers a retry of a write that already
            // succeeded (its answer lost to a timeout) with success, not with a failed condition.
            try await dynamoDB.transactWriteItems([statePut] + eventPuts, clientRequestToken: UUID().uuidString)
        } catch let error as AWSError where error.type == "TransactionCanceledException" && error.cancellationReasons.contains("ConditionalCheckFailed") {
            throw ConcurrencyConflictError(aggregateID: state.id, expectedVersion: expectedVersion)
        }
        return events
    }
}
