import CQRSCore
import ExampleDomain
import JSON
import Synchronization
import Testing

/// An event store in memory, for exercising the dispatcher and aggregates without a server.
/// The DynamoDB store is tested against moto in DynamoDBEventStoreTests.
final class MemoryEventStore: EventStore {
    let events = Mutex<[String: [GenericDomainEventMessage]]>([:])

    func append(_ new: [GenericDomainEventMessage]) async throws {
        try events.withLock { events in
            for event in new where events[event.aggregateID, default: []].contains(where: { $0.sequenceNumber == event.sequenceNumber }) {
                throw ConcurrencyConflictError(aggregateID: event.aggregateID, expectedVersion: event.sequenceNumber - 1)
            }
            for event in new { events[event.aggregateID, default: []].append(event) }
        }
    }

    func events(aggregateID: String, after: Int64) async throws -> [GenericDomainEventMessage] {
        events.withLock { $0[aggregateID, default: []].filter { $0.sequenceNumber > after } }
    }
}

final class Log: Sendable {
    let entries = Mutex<[String]>([])
}

@Suite struct DispatcherTests {
    @Test func routesACommandToItsControllerAndStoresTheEvents() async throws {
        let store = MemoryEventStore()
        let dispatcher = makeExampleDispatcher(store: store)
        let place = try GenericCommandMessage(PlaceOrder(orderId: "o-1", customerId: "alice", total: 10, items: ["x"]))
        let placed = try await dispatcher.dispatch(place)
        #expect(placed.map(\.eventName) == ["OrderPlaced"])
        #expect(placed[0].sequenceNumber == 1)
        #expect(placed[0].aggregateType == "Order")
        #expect(placed[0].metadata.causationID == place.messageID)
        #expect(placed[0].metadata.correlationID == place.metadata.correlationID)
        let shipped = try await dispatcher.dispatch(try GenericCommandMessage(ShipOrder(orderId: "o-1", carrier: "ups")))
        #expect(shipped.map(\.sequenceNumber) == [2])
        #expect(try await store.events(aggregateID: "o-1", after: 0).map(\.eventName) == ["OrderPlaced", "OrderShipped"])
    }

    @Test func reportsEveryViolationWithItsPath() async throws {
        let dispatcher = makeExampleDispatcher(store: MemoryEventStore())
        await #expect {
            try await dispatcher.dispatch(try GenericCommandMessage(PlaceOrder(orderId: "", customerId: "", total: 0, items: ["ok", ""])))
        } throws: { error in
            guard let error = error as? ValidationError else { return false }
            return error.violations.map(\.path) == ["orderId", "customerId", "total", "items[1]"]
        }
    }

    @Test func aPayloadOfTheWrongShapeIsAViolation() async throws {
        let dispatcher = makeExampleDispatcher(store: MemoryEventStore())
        let command = GenericCommandMessage(commandName: "PlaceOrder", payload: ["orderId": "o", "customerId": 5])
        await #expect {
            try await dispatcher.dispatch(command)
        } throws: { error in
            (error as? ValidationError)?.violations.first?.path == "payload"
        }
    }

    @Test func anUnknownCommandNamesTheKnownOnes() async throws {
        let dispatcher = makeExampleDispatcher(store: MemoryEventStore())
        await #expect {
            try await dispatcher.dispatch(GenericCommandMessage(commandName: "Teleport", payload: [:]))
        } throws: { error in
            "\(error)".contains("no controller handles command \"Teleport\"") && "\(error)".contains("PlaceOrder")
        }
    }

    @Test func theFirstControllerThatCanHandleWins() async throws {
        final class Recorder: CommandController {
            let name: String
            let log: Log
            init(name: String, log: Log) {
                self.name = name
                self.log = log
            }
            var commandNames: [String] { ["Ping"] }
            func execute(_ command: GenericCommandMessage) async throws -> [GenericDomainEventMessage] {
                log.entries.withLock { $0.append(name) }
                return []
            }
        }
        let log = Log()
        let first = Recorder(name: "first", log: log)
        let second = Recorder(name: "second", log: log)
        try await Dispatcher(controllers: [first, second]).dispatch(GenericCommandMessage(commandName: "Ping", payload: [:]))
        #expect(log.entries.withLock { $0 } == ["first"])
    }

    @Test func hooksRunInOrder() async throws {
        final class Hooks: CommandController {
            let calls = Mutex<[String]>([])
            var commandNames: [String] { ["Go"] }
            func preExecute(_ command: GenericCommandMessage) async throws { calls.withLock { $0.append("pre") } }
            func execute(_ command: GenericCommandMessage) async throws -> [GenericDomainEventMessage] {
                calls.withLock { $0.append("execute") }
                return []
            }
            func postExecute(_ command: GenericCommandMessage, events: [GenericDomainEventMessage]) async throws {
                calls.withLock { $0.append("post") }
            }
        }
        let hooks = Hooks()
        try await Dispatcher(controllers: [hooks]).dispatch(GenericCommandMessage(commandName: "Go", payload: [:]))
        #expect(hooks.calls.withLock { $0 } == ["pre", "execute", "post"])
    }

    @Test func domainRulesAreEnforcedOnTheReplayedState() async throws {
        let dispatcher = makeExampleDispatcher(store: MemoryEventStore())
        await #expect(throws: DomainRuleError.self) {
            try await dispatcher.dispatch(try GenericCommandMessage(ShipOrder(orderId: "never-placed", carrier: "ups")))
        }
    }
}

@Suite struct EventTypeRegistryTests {
    @Test func decodesRegisteredEventsToTheirTypes() throws {
        let registry = EventTypeRegistry([OrderPlaced.self, OrderShipped.self])
        #expect(registry.eventNames == ["OrderPlaced", "OrderShipped"])
        let placed = GenericDomainEventMessage(
            eventName: "OrderPlaced", aggregateID: "o", aggregateType: "Order", sequenceNumber: 1,
            payload: ["customerId": "c", "total": 5, "items": ["a"]]
        )
        let payload = try registry.payload(of: placed)
        #expect((payload as? OrderPlaced) == OrderPlaced(customerId: "c", total: 5, items: ["a"]))
        let unknown = GenericDomainEventMessage(eventName: "Other", aggregateID: "o", aggregateType: "T", sequenceNumber: 1, payload: [:])
        #expect(try registry.payload(of: unknown) == nil)
        let broken = GenericDomainEventMessage(eventName: "OrderShipped", aggregateID: "o", aggregateType: "Order", sequenceNumber: 2, payload: ["carrier": 5])
        #expect(throws: (any Error).self) { try registry.payload(of: broken) }
    }
}
