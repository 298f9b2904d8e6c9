import Synchronization

/// A one-way stop flag that sleepers wait on: `wait(until:)` returns at the deadline or as soon as the
/// signal is triggered, whichever comes first (no polling). `wake()` ends the waits once without
/// triggering: a supervisor sleeping until its next deadline is woken when something it watches changed.
public final class StopSignal: Sendable {
    private struct State {
        var isTriggered = false
        /// A wake with no one waiting: the next wait returns at once (and clears it).
        var wakePending = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Waits under way, registered or not yet.
        var active: Set<Int> = []
        /// Waits already over (their deadline came, or a wake) whose continuation may not be registered yet.
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

    /// Ends every wait under way, once; with none under way, the next wait returns at once.
    public func wake() {
        let waiters = state.withLock { state in
            if state.active.isEmpty { state.wakePending = true }
            // A wait not yet registered returns as soon as it registers.
            state.abandoned.formUnion(state.active.subtracting(state.waiters.keys))
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns at `deadline`, or at once when the signal is (or becomes) triggered or woken, or when the task
    /// is cancelled.
    public func wait(until deadline: ContinuousClock.Instant) async {
        let id: Int? = state.withLock { state in
            if state.wakePending || state.isTriggered {
                state.wakePending = false
                return nil
            }
            defer { state.nextID += 1 }
            state.active.insert(state.nextID)
            return state.nextID
        }
        guard let id else { return }
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
        state.withLock { state in
            state.abandoned.remove(id)
            state.active.remove(id)
        }
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
