import AWS
import Foundation
import Logging

/// The shard leases of one application in DynamoDB: table `fanout-leases-<application>`
/// (PAY_PER_REQUEST; keys `stream` S HASH, `shard` S RANGE), created if missing.
///
/// - A lease item: `stream` = the stream ARN, `shard` = the shard id, `owner` (S, absent when free),
///   `epoch` (N, grows with every change of owner), `counter` (N, the owner's heartbeat),
///   `pendingOwner` (S, a worker asking for a handover), `finished` (BOOL), `parents` (L of S).
/// - A worker item: `stream` = `workers#<stream ARN>`, `shard` = the worker id, `counter` (N),
///   bumped every renewal so other workers know who is alive.
///
/// Every change is a conditional write, so each lease has at most one owner; a failed condition
/// is ``LeaseTable/Outcome/lost``.
public struct LeaseTable: Sendable {
    public let dynamoDB: DynamoDB
    public let tableName: String
    public let streamARN: String

    /// The table of an application's leases.
    public static func tableName(application: String) -> String { "fanout-leases-\(application)" }

    public init(dynamoDB: DynamoDB, tableName: String, streamARN: String) {
        self.dynamoDB = dynamoDB
        self.tableName = tableName
        self.streamARN = streamARN
    }

    /// Whether a conditional write took effect.
    public enum Outcome: Sendable, Hashable {
        case done
        /// The condition failed: someone else changed the lease first.
        case lost
    }

    private var workersKey: String { "workers#\(streamARN)" }

    /// Creates the table unless it exists, and waits until it is active.
    public func ensureTable(timeout: Duration = .seconds(60)) async throws {
        do {
            _ = try await dynamoDB.describeTable(tableName)
        } catch let error as AWSError where error.type == AWSError.resourceNotFound {
            do {
                _ = try await dynamoDB.createTable(
                    CreateTableInput(tableName: tableName, partitionKey: ("stream", .string), sortKey: ("shard", .string), billingMode: .payPerRequest)
                )
            } catch let error as AWSError where error.type == "ResourceInUseException" {
                // Another worker created it first.
            }
        }
        _ = try await dynamoDB.waitUntilActive(tableName, timeout: timeout)
    }

    private func key(_ shardID: String) -> DynamoDBItem { ["stream": .s(streamARN), "shard": .s(shardID)] }

    /// Runs a conditional write; a failed condition is `.lost`.
    private func conditional(_ write: () async throws -> Void) async throws -> Outcome {
        do {
            try await write()
            return .done
        } catch let error as AWSError where error.type == AWSError.conditionalCheckFailed {
            return .lost
        }
    }

    // MARK: Reading

    /// Every lease of the stream (all pages, consistent reads).
    public func leases() async throws -> [Lease] {
        try await queryAll(partition: streamARN).map(Self.lease(from:))
    }

    /// Every worker's heartbeat counter, by worker id.
    public func workers() async throws -> [String: Int64] {
        var workers: [String: Int64] = [:]
        for item in try await queryAll(partition: workersKey) {
            guard case .s(let id)? = item["shard"] else { continue }
            workers[id] = Self.number(item["counter"])
        }
        return workers
    }

    private func queryAll(partition: String) async throws -> [DynamoDBItem] {
        var items: [DynamoDBItem] = []
        var start: DynamoDBItem?
        repeat {
            let page = try await dynamoDB.query(
                table: tableName, keyConditionExpression: "#stream = :stream", expressionAttributeNames: ["#stream": "stream"],
                expressionAttributeValues: [":stream": .s(partition)], exclusiveStartKey: start
            )
            items += page.items
            start = page.lastEvaluatedKey
        } while start != nil
        return items
    }

    static func number(_ value: AttributeValue?) -> Int64 {
        if case .n(let text)? = value { return Int64(text) ?? 0 }
        return 0
    }

    static func lease(from item: DynamoDBItem) -> Lease {
        func string(_ name: String) -> String? {
            if case .s(let text)? = item[name] { return text }
            return nil
        }
        var parents: [String] = []
        if case .l(let values)? = item["parents"] {
            parents = values.compactMap { if case .s(let text) = $0 { text } else { nil } }
        }
        var finished = false
        if case .bool(let flag)? = item["finished"] { finished = flag }
        return Lease(
            shardID: string("shard") ?? "", owner: string("owner"), epoch: number(item["epoch"]), counter: number(item["counter"]),
            pendingOwner: string("pendingOwner"), isFinished: finished, parents: parents
        )
    }

    // MARK: Writing

    /// Creates the lease of a newly listed shard, free, unless it exists (any worker may create it).
    @discardableResult
    public func create(shardID: String, parents: [String]) async throws -> Outcome {
        var item = key(shardID)
        item["epoch"] = .n("0")
        item["counter"] = .n("0")
        item["finished"] = .bool(false)
        item["parents"] = .l(parents.map(AttributeValue.s))
        return try await conditional {
            try await dynamoDB.putItem(table: tableName, item: item, conditionExpression: "attribute_not_exists(#shard)", expressionAttributeNames: ["#shard": "shard"])
        }
    }

    /// Takes a lease nobody holds, or whose owner stopped renewing it: only if its owner and counter
    /// are still what this worker saw. Returns the new epoch, or nil when someone else changed it first.
    public func take(shardID: String, me: String, expectedOwner: String?, expectedCounter: Int64) async throws -> Int64? {
        var values: DynamoDBItem = [":me": .s(me), ":one": .n("1"), ":counter": .n("\(expectedCounter)")]
        let condition =
            expectedOwner == nil
            ? "attribute_not_exists(#owner) AND #counter = :counter"
            : "#owner = :expected AND #counter = :counter"
        if let expectedOwner { values[":expected"] = .s(expectedOwner) }
        do {
            let attributes = try await dynamoDB.updateItem(
                table: tableName, key: key(shardID),
                updateExpression: "SET #owner = :me, #epoch = #epoch + :one, #counter = #counter + :one REMOVE #pending",
                conditionExpression: condition,
                expressionAttributeNames: ["#owner": "owner", "#epoch": "epoch", "#counter": "counter", "#pending": "pendingOwner"],
                expressionAttributeValues: values, returnValues: .allNew
            )
            return Self.number(attributes["epoch"])
        } catch let error as AWSError where error.type == AWSError.conditionalCheckFailed {
            return nil
        }
    }

    /// Renews a held lease (its counter grows) only while this worker still owns it at this epoch.
    public func renew(shardID: String, me: String, epoch: Int64) async throws -> Outcome {
        try await conditional {
            try await dynamoDB.updateItem(
                table: tableName, key: key(shardID), updateExpression: "SET #counter = #counter + :one",
                conditionExpression: "#owner = :me AND #epoch = :epoch",
                expressionAttributeNames: ["#owner": "owner", "#epoch": "epoch", "#counter": "counter"],
                expressionAttributeValues: [":me": .s(me), ":epoch": .n("\(epoch)"), ":one": .n("1")]
            )
        }
    }

    /// Asks `owner` to hand the lease over to `me`, unless someone else asked first.
    public func requestHandover(shardID: String, me: String, owner: String) async throws -> Outcome {
        try await conditional {
            try await dynamoDB.updateItem(
                table: tableName, key: key(shardID), updateExpression: "SET #pending = :me",
                conditionExpression: "#owner = :owner AND attribute_not_exists(#pending)",
                expressionAttributeNames: ["#owner": "owner", "#pending": "pendingOwner"],
                expressionAttributeValues: [":me": .s(me), ":owner": .s(owner)]
            )
        }
    }

    /// Hands a held lease to the worker that asked for it: the owner changes and the epoch grows.
    public func handOver(shardID: String, me: String, to worker: String) async throws -> Outcome {
        try await conditional {
            try await dynamoDB.updateItem(
                table: tableName, key: key(shardID),
                updateExpression: "SET #owner = :to, #epoch = #epoch + :one, #counter = #counter + :one REMOVE #pending",
                conditionExpression: "#owner = :me AND #pending = :to",
                expressionAttributeNames: ["#owner": "owner", "#epoch": "epoch", "#counter": "counter", "#pending": "pendingOwner"],
                expressionAttributeValues: [":me": .s(me), ":to": .s(worker), ":one": .n("1")]
            )
        }
    }

    /// Refuses a handover request.
    public func refuseHandover(shardID: String, me: String) async throws -> Outcome {
        try await conditional {
            try await dynamoDB.updateItem(
                table: tableName, key: key(shardID), updateExpression: "REMOVE #pending", conditionExpression: "#owner = :me",
                expressionAttributeNames: ["#owner": "owner", "#pending": "pendingOwner"], expressionAttributeValues: [":me": .s(me)]
            )
        }
    }

    /// Gives a held lease up: it is free for any worker at once.
    public func release(shardID: String, me: String) async throws -> Outcome {
        try await conditional {
            try await dynamoDB.updateItem(
                table: tableName, key: key(shardID), updateExpression: "SET #counter = #counter + :one REMOVE #owner, #pending",
                conditionExpression: "#owner = :me",
                expressionAttributeNames: ["#owner": "owner", "#pending": "pendingOwner", "#counter": "counter"],
                expressionAttributeValues: [":me": .s(me), ":one": .n("1")]
            )
        }
    }

    /// Marks a held shard finished (read to its end, last checkpoint written): its children become ready.
    public func finish(shardID: String, me: String, epoch: Int64) async throws -> Outcome {
        try await conditional {
            try await dynamoDB.updateItem(
                table: tableName, key: key(shardID), updateExpression: "SET #finished = :true REMOVE #owner, #pending",
                conditionExpression: "#owner = :me AND #epoch = :epoch",
                expressionAttributeNames: ["#owner": "owner", "#epoch": "epoch", "#finished": "finished", "#pending": "pendingOwner"],
                expressionAttributeValues: [":me": .s(me), ":epoch": .n("\(epoch)"), ":true": .bool(true)]
            )
        }
    }

    /// Bumps this worker's heartbeat (creating its item on the first call).
    public func heartbeat(me: String) async throws {
        try await dynamoDB.updateItem(
            table: tableName, key: ["stream": .s(workersKey), "shard": .s(me)], updateExpression: "ADD #counter :one",
            expressionAttributeNames: ["#counter": "counter"], expressionAttributeValues: [":one": .n("1")]
        )
    }

    /// Removes this worker's heartbeat item (a graceful stop: the others rebalance at once).
    public func removeWorker(me: String) async throws {
        try await dynamoDB.deleteItem(table: tableName, key: ["stream": .s(workersKey), "shard": .s(me)])
    }
}
