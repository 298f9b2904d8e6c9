import Foundation

/// Runs blocking work (a server's start-up read, waiting for a process) on a thread of its own and
/// returns its result: on Swift's cooperative pool (two threads on two cores) a blocking call would
/// stall every other test running in parallel.
public func startOffPool<Value>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
    let box = ResultBox<Value>()
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        let thread = Thread {
            do {
                box.value = try work()
                continuation.resume()
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.name = "fanout.tests.off-pool"
        thread.start()
    }
    return box.value!
}

private final class ResultBox<Value>: @unchecked Sendable {
    var value: Value?
}
