import AWS
import AsyncHTTPClient
import CQRSCore
import Foundation
import JSON
import Logging
import TestSupport
import Testing

/// State-stored aggregates on moto's DynamoDB: state and events in one transaction, optimistic concurrency.
@Suite(.timeLimit(.minutes(2))) struct StateStoredRepositoryTests {
    struct Account: StateStoredAggregate, Hashable {
        static let aggregateType = "Account"
        var id: String
        var balance: Int
    }

    struct Deposited: EventPayload {
        static let eventName = "Deposited"
        var amount: Int
    }

    @Test func stateAndEventsAreStoredTogetherAndAStaleWriterConflicts() async throws {
        let aws = AWSConfiguration(
            region: "us-east-1", credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: try TestServices.awsEndpoint())!
        )
        let httpClient = HTTPClient.forTests
        let dynamoDB = DynamoDB(configuration: aws, httpClient: httpClient, logger: Logger(label: "t"))
        let events = DynamoDBEventStore(dynamoDB: dynamoDB, tableName: TestServices.uniqueName("events"))
        try await events.createTableIfMissing()
        let accounts = StateStoredRepository<Account>(dynamoDB: dynamoDB, stateTable: TestServices.uniqueName("accounts"), eventStore: events)
        try await accounts.createTableIfMissing()
        let command = GenericCommandMessage(commandName: "Deposit", payload: [:])

        #expect(try await accounts.load("a-1") == nil)
        let stored = try await accounts.save(Account(id: "a-1", balance: 10), expectedVersion: 0, events: [Deposited(amount: 10)], causedBy: command)
        #expect(stored.map(\.sequenceNumber) == [1])
        let loaded = try #require(try await accounts.load("a-1"))
        #expect(loaded.state == Account(id: "a-1", balance: 10))
        #expect(loaded.version == 1)

        // Two writers start from version 1; the second one's save must fail and store nothing.
        try await accounts.save(Account(id: "a-1", balance: 15), expectedVersion: 1, events: [Deposited(amount: 5)], causedBy: command)
        await #expect(throws: ConcurrencyConflictError.self) {
            try await accounts.save(Account(id: "a-1", balance: 99), expectedVersion: 1, events: [Deposited(amount: 89)], causedBy: command)
        }
        #expect(try await accounts.load("a-1")?.state.balance == 15)
        #expect(try await events.events(aggregateID: "a-1", after: 0).map { try $0.payload(as: Deposited.self).amount } == [10, 5])
        // Creating an aggregate that exists is a conflict too.
        await #expect(throws: ConcurrencyConflictError.self) {
            try await accounts.save(Account(id: "a-1", balance: 1), expectedVersion: 0, events: [Deposited(amount: 1)], causedBy: command)
        }
    }
}
