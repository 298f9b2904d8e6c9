import Synchronization

/// A one-way stop flag that sleepers wait on: `wait(until:)` returns at the deadline or as soon as the
/// signal is triggered, whichever comes first (no polling).
public final class StopSignal: Sendable {
    private struct State {
        var isTriggered = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Waits already over (their deadline came) whose continuation may not be registered yet.
        var abandoned: Set<Int> = []
    }

    private let state = Mutex(State())

    public init() {}

    public var isTriggered: Bool { state.withLock { $0.isTriggered } }

    /// Triggers the signal: every waiter returns now, every later wait at once.
    public func trigger() {
        let waiters = state.withLock { state in
            state.isTriggered = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns at `deadline`, or at once when the signal is (or becomes) triggered, or when the task is cancelled.
    public func wait(until deadline: ContinuousClock.Instant) async {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            group.addTask { await self.waitForTrigger(id) }
            await group.next()
            group.cancelAll()
            // The deadline came first: the trigger's waiter ends now (or at once, if it registers later).
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.abandoned.insert(id)
                return nil
            }
            waiter?.resume()
        }
        state.withLock { _ = $0.abandoned.remove(id) }
    }

    private func waitForTrigger(_ id: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state in
                if state.isTriggered || state.abandoned.contains(id) { return true }
                state.waiters[id] = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
