import AWS
import JSON

/// Snapshots of event-sourced aggregates in a DynamoDB table: one item per aggregate
/// (`id` S partition key, `aggregateType`, `version` N: the sequence number of the last
/// event folded in, `state` M: the aggregate encoded as JSON). A snapshot is only a cache:
/// the events stay the truth, and a missing or older snapshot only makes loading slower.
public struct DynamoDBSnapshotStore: Sendable {
    public let dynamoDB: DynamoDB
    public let tableName: String

    public init(dynamoDB: DynamoDB, tableName: String) {
        self.dynamoDB = dynamoDB
        self.tableName = tableName
    }

    /// Creates the snapshot table if it is missing, and waits until it is active.
    public func createTableIfMissing(timeout: Duration = .seconds(30)) async throws {
        do {
            _ = try await dynamoDB.describeTable(tableName)
            return
        } catch let error as AWSError where error.type == "ResourceNotFoundException" {
            _ = try await dynamoDB.createTable(CreateTableInput(tableName: tableName, partitionKey: ("id", .string)))
        }
        _ = try await dynamoDB.waitUntilActive(tableName, timeout: timeout)
    }

    /// The newest snapshot of an aggregate: its state and the version it covers.
    public func load<A: Aggregate & Codable>(_ type: A.Type, id: String) async throws -> (state: A, version: Int64)? {
        guard let item = try await dynamoDB.getItem(table: tableName, key: ["id": .s(id)]) else { return nil }
        guard case .n(let versionText)? = item["version"], let version = Int64(versionText), let state = item["state"] else {
            throw EventDecodingError(field: "version", reason: "snapshot \(id) in \(tableName) has no numeric version or no state")
        }
        return (try JSONValue(state).decode(as: A.self), version)
    }

    /// Stores a snapshot unless a newer one is there already.
    public func save<A: Aggregate & Codable>(_ state: A, version: Int64) async throws {
        let item: DynamoDBItem = [
            "id": .s(state.id), "aggregateType": .s(A.aggregateType), "version": .n(String(version)),
            "state": try JSONValue(encoding: state).attributeValue,
        ]
        do {
            try await dynamoDB.putItem(
                table: tableName, item: item,
                conditionExpression: "attribute_not_exists(#id) OR #version < :version",
                expressionAttributeNames: ["#id": "id", "#version": "version"],
                expressionAttributeValues: [":version": .n(String(version))]
            )
        } catch let error as AWSError where error.type == "ConditionalCheckFailedException" {
            // A newer snapshot is stored: keep it.
        }
    }
}

extension Repository where A: Codable {
    /// Loads from the newest snapshot, then the events after it.
    public func load(_ id: String, snapshots: DynamoDBSnapshotStore) async throws -> AggregateRecord<A> {
        guard let snapshot = try await snapshots.load(A.self, id: id) else { return try await load(id) }
        var state = snapshot.state
        var version = snapshot.version
        for event in try await store.events(aggregateID: id, after: snapshot.version) {
            try state.apply(event)
            version = event.sequenceNumber
        }
        return AggregateRecord(state: state, version: version)
    }

    /// Stores the pending events, then a snapshot when the save crossed a multiple of
    /// `every` events. Returns the stored events.
    @discardableResult
    public func save(_ record: inout AggregateRecord<A>, snapshots: DynamoDBSnapshotStore, every: Int) async throws -> [GenericDomainEventMessage] {
        precondition(every > 0, "snapshots are taken every 1 or more events")
        let before = record.version
        let events = try await save(&record)
        if record.version / Int64(every) > before / Int64(every) {
            try await snapshots.save(record.state, version: record.version)
        }
        return events
    }
}
