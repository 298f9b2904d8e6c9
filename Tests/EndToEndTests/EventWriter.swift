import CQRSCore

extension DynamoDBEventStore {
    /// Appends one event as a test's writer does, writing it again when the call failed (moto is slow on a loaded
    /// machine), up to 5 times. A conflict on a retry means the first write was applied (its answer came too late,
    /// and moto ignores the retry's ClientRequestToken: INFRA.md); the caller is the aggregate's only writer, so the
    /// event is stored.
    func appendRetrying(_ event: GenericDomainEventMessage) async throws {
        for attempt in 1... {
            do {
                try await append([event])
                return
            } catch is ConcurrencyConflictError where attempt > 1 {
                return
            } catch where attempt < 5 && !(error is ConcurrencyConflictError) {
                try await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
    }
}
