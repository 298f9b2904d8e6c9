import CQRSCore
import Contracts
import Dispatch
import Foundation
import Kafka
import Subscribers

extension Demo {
    /// `fanout-demo subscribe GROUP TOPIC`: a subscriber process. Prints one line per
    /// handled event (`handled <topic> <partition> <offset> <aggregate id> <sequence number> <message id>`)
    /// and per commit (`committed <topic> <partition> <next offset>`), until SIGTERM or SIGINT, then finishes what it is handling, commits, leaves the group
    /// and exits 0. FANOUT_DEMO_HANDLER_DELAY_MS makes each event take that long.
    static func subscribe(group name: String, topic: String) async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let brokers = environment["FANOUT_BROKERS"] else { fail("fanout-demo: error: FANOUT_BROKERS is not set") }
        let delay = environment["FANOUT_DEMO_HANDLER_DELAY_MS"].flatMap { Int($0) } ?? 0
        // FANOUT_DEMO_KAFKA: librdkafka properties, key=value;key=value.
        var properties: [String: String] = [:]
        for pair in (environment["FANOUT_DEMO_KAFKA"] ?? "").split(separator: ";") {
            guard let eq = pair.firstIndex(of: "=") else { fail("fanout-demo: error: FANOUT_DEMO_KAFKA: \"\(pair)\" is not key=value") }
            properties[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        let group = SubscriberGroup(
            name: name,
            configuration: KafkaConfiguration(bootstrapServers: brokers, properties: properties),
            subscriptions: [Subscription(topic: topic) { event, context in
                if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                let line = "handled \(context.topic) \(context.partition) \(context.offset) \(event.aggregateID) \(event.sequenceNumber) \(event.messageID)\n"
                Demo.printLine(line)
            }],
            onCommit: { offset in
                Demo.printLine("committed \(offset.topic) \(offset.partition) \(offset.offset)\n")
            },
            logger: logger
        )
        let running = Task { try await group.run() }
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { running.cancel() }
            source.resume()
            sources.append(source)
        }
        printLine("subscribed \(name) \(topic)\n")
        try await running.value
        sources.forEach { $0.cancel() }
        printLine("stopped\n")
    }
}
