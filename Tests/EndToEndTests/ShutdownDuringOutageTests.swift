import CQRSCore
import Foundation
import JSON
import Logging
import TestSupport
import Testing

/// SIGTERM while the Kafka broker is frozen (SIGSTOP: connections stay open, nothing answers) and a page waits for
/// its acknowledgement: the sidecar must exit 0 within its documented bound (30 s), say that the signal arrived and
/// what it left unacknowledged, log no error line, and the next start must route what was left.
@Suite(.serialized, .timeLimit(.minutes(4))) struct ShutdownDuringOutageTests {
    static let logger = Logger(label: "shutdown-outage-test")

    @Test(arguments: [false, true])
    func sigtermDuringAFrozenBrokerExitsWithinTheBoundAndTheNextStartRoutesWhatWasLeft(exactlyOnce: Bool) async throws {
        let own = try await OwnBrokerSidecar(exactlyOnce ? "shutdown-outage-eos" : "shutdown-outage", logger: Self.logger)
        defer { own.stop() }
        let broker = own.broker
        let mode = exactlyOnce ? ["--exactly-once"] : []

        let (first, text) = try own.start("first", mode)
        defer { first.kill() }
        try await own.write(0..<12)
        _ = try await BrokerRestartTests.waitFor("the first 12 events routed", seconds: 60) {
            try await own.routed().count >= 12 ? true : nil
        }

        // Their checkpoint saved and nothing outstanding: then the broker frozen, and three more events, read by the
        // sidecar and waiting for an acknowledgement that cannot come.
        _ = try await BrokerRestartTests.waitFor("the first 12 events checkpointed", seconds: 30) { () async throws -> Bool? in
            let status = try await BrokerRestartTests.statusJSON(log: text())
            let outstanding = (status["producer"] as? [String: Any])?["outstandingRecords"] as? Int ?? -1
            let checkpointed = (status["shards"] as? [[String: Any]] ?? []).contains { $0["checkpointAgeSeconds"] is Double }
            return outstanding == 0 && checkpointed ? true : nil
        }
        broker.process?.signal(SIGSTOP)
        try await own.write(12..<15)
        let waiting = try await BrokerRestartTests.waitFor("the sidecar to hold records Kafka has not acknowledged", seconds: 30) {
            let producer = try await BrokerRestartTests.statusJSON(log: text())["producer"] as? [String: Any]
            return (producer?["outstandingRecords"] as? Int ?? 0) > 0 ? producer : nil
        }

        let signalled = ContinuousClock.now
        first.terminate()
        let termination = await first.exited(timeout: .seconds(60))
        let took = ContinuousClock.now - signalled
        let log = text()
        #expect(waiting["outstandingRecords"] as? Int ?? 0 >= 1)
        #expect(termination == .exited(0), "after \(took): \(termination.map { "\($0)" } ?? "still running"); log: \(log.suffix(3_000))")
        #expect(took < .seconds(33), "exited after \(took) (README: within 30 s)")
        #expect(log.contains("shutting down: each shard finishes its page"), "no line saying the signal arrived: \(log.suffix(2_000))")
        #expect(log.contains("left unacknowledged"), "no line saying what was left: \(log.suffix(2_000))")
        let errorLines = log.split(separator: "\n").filter { $0.contains(" error ") && !$0.contains("[librdkafka]") }
        #expect(errorLines.isEmpty, "error lines during a clean shutdown: \(errorLines.joined(separator: "\n"))")

        // The broker back: the next start reads again what the first left unacknowledged (its checkpoint stayed at
        // the 12th event) and routes it.
        broker.process?.signal(SIGCONT)
        let (second, secondText) = try own.start("second", mode)
        defer { second.kill() }
        _ = try await BrokerRestartTests.waitFor("the 3 events left read again and all 15 routed", seconds: 90) { () async throws -> Bool? in
            let read = (try await BrokerRestartTests.statusJSON(log: secondText())["counts"] as? [String: Any])?["recordsRead"] as? Int ?? 0
            guard read == 3 else { return nil }
            return try await own.routed().isSuperset(of: Set((0..<15).map { "n\($0)" })) ? true : nil
        }
        let secondStatus = try await BrokerRestartTests.statusJSON(log: secondText())
        #expect((secondStatus["counts"] as? [String: Any])?["recordsRead"] as? Int == 3, "the second start read: \(secondStatus)")
        second.terminate()
        let secondTermination = await second.exited(timeout: .seconds(40))
        #expect(secondTermination == .exited(0), "\(secondTermination.map { "\($0)" } ?? "still running"): \(secondText().suffix(2_000))")
    }
}
