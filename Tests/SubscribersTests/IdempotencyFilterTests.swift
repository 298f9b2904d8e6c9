import CQRSCore
import JSON
import Subscribers
import Synchronization
import Testing

@Suite struct IdempotencyFilterTests {
    @Test func aCountWindowRemembersTheLastIDs() {
        let filter = IdempotencyFilter(window: .count(2))
        filter.insert("a")
        filter.insert("b")
        #expect(filter.contains("a") && filter.contains("b"))
        filter.insert("c")
        #expect(!filter.contains("a"))
        #expect(filter.contains("b") && filter.contains("c"))
        filter.insert("c")
        #expect(filter.count == 2)
    }

    @Test func aDurationWindowForgetsOlderIDs() {
        let now = Mutex(ContinuousClock.now)
        let filter = IdempotencyFilter(window: .duration(.seconds(10))) { now.withLock { $0 } }
        filter.insert("a")
        now.withLock { $0 += .seconds(6) }
        filter.insert("b")
        #expect(filter.contains("a"))
        now.withLock { $0 += .seconds(5) }
        #expect(!filter.contains("a"))
        #expect(filter.contains("b"))
        #expect(filter.count == 1)
    }

    @Test func aDeduplicatedSubscriptionHandlesEachMessageOnceAndRetriesAFailure() async throws {
        struct Flaky: Error {}
        let calls = Mutex<[String]>([])
        let failNext = Mutex(true)
        let subscription = Subscription(topic: "t") { event, _ in
            calls.withLock { $0.append(event.messageID) }
            if event.messageID == "m2", failNext.withLock({ let f = $0; $0 = false; return f }) { throw Flaky() }
        }.deduplicated(by: IdempotencyFilter(window: .count(100)))
        let context = EventContext(topic: "t", partition: 0, offset: 0, key: nil, headers: [])
        func event(_ id: String) -> GenericDomainEventMessage {
            GenericDomainEventMessage(eventName: "E", aggregateID: "a", aggregateType: "T", sequenceNumber: 1, payload: [:], messageID: id)
        }
        try await subscription.handler(event("m1"), context)
        try await subscription.handler(event("m1"), context)
        await #expect(throws: Flaky.self) { try await subscription.handler(event("m2"), context) }
        try await subscription.handler(event("m2"), context)
        try await subscription.handler(event("m2"), context)
        #expect(calls.withLock { $0 } == ["m1", "m2", "m2"])
    }
}
