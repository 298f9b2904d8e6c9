import JSON
/// An event-sourced aggregate: its state is the fold of its events.
public protocol Aggregate: Sendable {
    /// The `aggregateType` of its events, e.g. `Order`.
    static var aggregateType: String { get }
    init(id: String)
    var id: String { get }
    /// Applies one of its own events to the state.
    mutating func apply(_ event: GenericDomainEventMessage) throws
}

/// An aggregate as loaded from the store, with the events recorded since.
public struct AggregateRecord<A: Aggregate>: Sendable {
    public private(set) var state: A
    /// Sequence number of the last stored event (0 for a new aggregate).
    public private(set) var version: Int64
    /// Events recorded and applied but not stored yet.
    public private(set) var pending: [GenericDomainEventMessage] = []

    init(state: A, version: Int64) {
        self.state = state
        self.version = version
    }

    public var isNew: Bool { version == 0 && pending.isEmpty }

    /// Records a new event: numbers it, carries the command's correlation and tracing, applies it.
    @discardableResult
    public mutating func record<E: EventPayload>(_ event: E, causedBy command: GenericCommandMessage) throws -> GenericDomainEventMessage {
        var metadata = MessageMetadata()
        metadata.correlationID = command.metadata.correlationID ?? command.messageID
        metadata.causationID = command.messageID
        metadata.traceparent = command.metadata.traceparent
        let message = GenericDomainEventMessage(
            eventName: E.eventName,
            aggregateID: state.id,
            aggregateType: A.aggregateType,
            sequenceNumber: version + Int64(pending.count) + 1,
            payload: try JSONValue(encoding: event),
            metadata: metadata
        )
        try state.apply(message)
        pending.append(message)
        return message
    }

    mutating func markStored() {
        version += Int64(pending.count)
        pending = []
    }
}

/// Loads aggregates by replaying their events, and stores the events they record.
public struct Repository<A: Aggregate>: Sendable {
    public let store: any EventStore

    public init(store: any EventStore) {
        self.store = store
    }

    public func load(_ id: String) async throws -> AggregateRecord<A> {
        var state = A(id: id)
        var version: Int64 = 0
        for event in try await store.events(aggregateID: id, after: 0) {
            try state.apply(event)
            version = event.sequenceNumber
        }
        return AggregateRecord(state: state, version: version)
    }

    /// Stores the pending events atomically; throws `ConcurrencyConflictError` if another writer was first.
    /// Returns the stored events.
    @discardableResult
    public func save(_ record: inout AggregateRecord<A>) async throws -> [GenericDomainEventMessage] {
        let events = record.pending
        try await store.append(events)
        record.markStored()
        return events
    }
}
