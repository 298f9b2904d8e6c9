import CQRSCore
import Synchronization

/// Remembers the message ids a handler has handled, within a window, so that a
/// redelivered event (after a crash before the commit, a replay overlap, a retry of a
/// dead letter) is handled once.
///
/// In memory: the window is per process. An id is remembered only after the handler
/// succeeded, so a failed attempt is retried.
public final class IdempotencyFilter: Sendable {
    public enum Window: Sendable, Hashable {
        /// The last `n` ids.
        case count(Int)
        /// Ids handled within this long.
        case duration(Duration)
    }

    public let window: Window
    private let clock: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex<(order: [(id: String, at: ContinuousClock.Instant)], ids: Set<String>)>(([], []))

    /// - Parameter now: the clock (tests pass their own).
    public init(window: Window, now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        if case .count(let n) = window { precondition(n > 0, "an idempotency window holds at least one id") }
        self.window = window
        self.clock = now
    }

    /// Whether `id` was handled within the window.
    public func contains(_ id: String) -> Bool {
        let now = clock()
        return state.withLock { state in
            evict(&state, now: now)
            return state.ids.contains(id)
        }
    }

    /// Records `id` as handled.
    public func insert(_ id: String) {
        let now = clock()
        state.withLock { state in
            guard state.ids.insert(id).inserted else { return }
            state.order.append((id, now))
            evict(&state, now: now)
        }
    }

    /// How many ids are remembered now.
    public var count: Int {
        let now = clock()
        return state.withLock { state in
            evict(&state, now: now)
            return state.ids.count
        }
    }

    private func evict(_ state: inout (order: [(id: String, at: ContinuousClock.Instant)], ids: Set<String>), now: ContinuousClock.Instant) {
        var drop = 0
        switch window {
        case .count(let n):
            drop = max(0, state.order.count - n)
        case .duration(let duration):
            while drop < state.order.count, now - state.order[drop].at > duration { drop += 1 }
        }
        guard drop > 0 else { return }
        for entry in state.order[..<drop] { state.ids.remove(entry.id) }
        state.order.removeFirst(drop)
    }
}

extension Subscription {
    /// The same subscription, skipping events whose message id `filter` has seen handled.
    public func deduplicated(by filter: IdempotencyFilter) -> Subscription {
        let handler = self.handler
        return Subscription(topic: topic, eventNames: eventNames) { event, context in
            guard !filter.contains(event.messageID) else { return }
            try await handler(event, context)
            filter.insert(event.messageID)
        }
    }
}
