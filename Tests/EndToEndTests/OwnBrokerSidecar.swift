import CQRSCore
import Foundation
import JSON
import Logging
import TestSupport

/// `fanout run` on servers of a test's own (a moto and a noida-db the test may freeze, kill or restart), routing
/// `Tick` events of 3 aggregates (`n<index>` in the payload) to one topic.
final class OwnBrokerSidecar: @unchecked Sendable {
    let suffix: String
    let moto: MotoServer
    let broker: BrokerRestartTests.OwnBroker
    let setup: TickSetup
    private let environment: [String: String]

    init(_ name: String, logger: Logger) async throws {
        suffix = TestServices.uniqueName(name)
        moto = try await MotoServer(name: suffix)
        broker = try BrokerRestartTests.OwnBroker(name: suffix)
        try await broker.start()
        setup = try await TickSetup(suffix: suffix, endpoint: moto.endpoint, logger: logger)
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in [
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": moto.endpoint,
            "FANOUT_LOG_LEVEL": "info",
        ] { environment[key] = value }
        self.environment = environment
    }

    /// Thaws and kills the broker, kills moto.
    func stop() {
        broker.process?.signal(SIGCONT)
        broker.process?.kill()
        moto.process.kill()
    }

    /// Starts `fanout run` (status endpoint on a free port) with its standard error in a file of its own.
    func start(_ name: String, _ extra: [String] = []) throws -> (process: ChildProcess, log: () -> String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fanout-\(suffix)-\(name).log")
        let process = try ChildProcess(
            CommandLineTests.binary.path,
            ["run", "--brokers", broker.brokers, "--table", suffix, "--routes", setup.routesPath, "--application", suffix, "--http-port", "0"]
                + extra,
            environment: environment, standardError: .file(file)
        )
        return (process, { (try? String(contentsOf: file, encoding: .utf8)) ?? "" })
    }

    func write(_ range: Range<Int>) async throws {
        for index in range {
            try await setup.store.appendRetrying(GenericDomainEventMessage(
                eventName: "Tick", aggregateID: "clock-\(index % 3)", aggregateType: "Clock",
                sequenceNumber: Int64(index / 3 + 1), payload: ["n": .number(index)]
            ))
        }
    }

    /// The `n<index>` tags of the events in the topic (read_committed).
    func routed() async throws -> Set<String> {
        Set(try await BrokerRestartTests.read(setup.topic, brokers: broker.brokers).map(BrokerRestartTests.tag))
    }
}
