/// Another writer stored events for the aggregate first; reload and retry.
public struct ConcurrencyConflictError: Error, Sendable, Hashable, CustomStringConvertible {
    public var aggregateID: String
    public var expectedVersion: Int64

    public init(aggregateID: String, expectedVersion: Int64) {
        self.aggregateID = aggregateID
        self.expectedVersion = expectedVersion
    }

    public var description: String {
        "concurrent write to aggregate \"\(aggregateID)\": version \(expectedVersion) is no longer the latest; reload it and retry"
    }
}

/// Stores domain events by aggregate.
public protocol EventStore: Sendable {
    /// Appends events whose sequence numbers must all be free; throws
    /// `ConcurrencyConflictError` when another writer took one of them. All or nothing.
    func append(_ events: [GenericDomainEventMessage]) async throws
    /// The aggregate's events with a sequence number above `after`, in order.
    func events(aggregateID: String, after: Int64) async throws -> [GenericDomainEventMessage]
}
