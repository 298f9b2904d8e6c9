import StreamReader
import Testing

/// The waits of the reader and the lease coordinator end on the event, not on a polling tick.
@Suite(.timeLimit(.minutes(1))) struct StopSignalTests {
    @Test func aTriggerEndsAWaitLongBeforeItsDeadline() async {
        let signal = StopSignal()
        let waiting = Task { await signal.wait(until: .now + .seconds(3600)) }
        signal.trigger()
        // Returns (an hour-long wait would hit the suite's time limit).
        await waiting.value
        #expect(signal.isTriggered)
    }

    @Test func aWaitAfterTheTriggerReturnsAtOnceAndADeadlineEndsAWaitWithoutATrigger() async {
        let untriggered = StopSignal()
        await untriggered.wait(until: .now + .milliseconds(20))
        #expect(!untriggered.isTriggered)
        let triggered = StopSignal()
        triggered.trigger()
        await triggered.wait(until: .now + .seconds(3600))
    }

    @Test func manyWaitersAllWake() async {
        let signal = StopSignal()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<50 { group.addTask { await signal.wait(until: .now + .seconds(3600)) } }
            signal.trigger()
        }
    }

    @Test func aWakeEndsTheWaitsUnderWayOnceWithoutTriggering() async {
        let signal = StopSignal()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<10 { group.addTask { await signal.wait(until: .now + .seconds(3600)) } }
            // Woken, registered or not yet: the waits end (an hour-long one would hit the time limit).
            try? await Task.sleep(for: .milliseconds(20))
            signal.wake()
        }
        #expect(!signal.isTriggered)
        // The wake was spent: a later wait lasts to its deadline.
        let started = ContinuousClock.now
        await signal.wait(until: started + .milliseconds(200))
        #expect(ContinuousClock.now - started >= .milliseconds(200))
    }

    @Test func aWakeWithNoOneWaitingEndsTheNextWaitAtOnce() async {
        let signal = StopSignal()
        signal.wake()
        await signal.wait(until: .now + .seconds(3600))
        #expect(!signal.isTriggered)
    }
}
