import AWS
import CQRSCore
import TestSupport
import Testing

/// Snapshots of event-sourced aggregates on moto's DynamoDB.
@Suite(.timeLimit(.minutes(2))) struct SnapshotTests {
    struct Counter: Aggregate, Codable {
        static let aggregateType = "Counter"
        let id: String
        var total = 0
        init(id: String) { self.id = id }
        mutating func apply(_ event: GenericDomainEventMessage) throws {
            total += try event.payload(as: Added.self).amount
        }
    }

    struct Added: EventPayload {
        static let eventName = "Added"
        var amount: Int
    }

    struct Add: CommandPayload {
        static let commandName = "Add"
        var amount: Int
    }

    @Test func aSnapshotIsTakenEveryNEventsAndLoadingStartsFromIt() async throws {
        try await DynamoDBEventStoreTests.withStore { store in
            let snapshots = DynamoDBSnapshotStore(dynamoDB: store.dynamoDB, tableName: TestServices.uniqueName("snapshots"))
            try await snapshots.createTableIfMissing()
            let repository = Repository<Counter>(store: store)
            for amount in 1...5 {
                var record = try await repository.load("c-1", snapshots: snapshots)
                try record.record(Added(amount: amount), causedBy: try GenericCommandMessage(Add(amount: amount)))
                try await repository.save(&record, snapshots: snapshots, every: 2)
            }
            // Taken after events 2 and 4; the newest covers 4 events (1+2+3+4).
            let snapshot = try #require(try await snapshots.load(Counter.self, id: "c-1"))
            #expect(snapshot.version == 4)
            #expect(snapshot.state.total == 10)

            let loaded = try await repository.load("c-1", snapshots: snapshots)
            #expect(loaded.version == 5)
            #expect(loaded.state.total == 15)

            // Loading reads the snapshot, then only the events after it: a (deliberately wrong)
            // snapshot shows through.
            var doctored = Counter(id: "c-1")
            doctored.total = 1000
            try await snapshots.save(doctored, version: 5)
            #expect(try await repository.load("c-1", snapshots: snapshots).state.total == 1000)
            #expect(try await repository.load("c-1").state.total == 15)
            // An older snapshot never replaces a newer one.
            try await snapshots.save(Counter(id: "c-1"), version: 3)
            #expect(try await snapshots.load(Counter.self, id: "c-1")?.version == 5)
        }
    }
}
