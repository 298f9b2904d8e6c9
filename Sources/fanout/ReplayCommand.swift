import ArgumentParser
import Contracts
import FanoutApp
import Foundation
import Kafka
import Logging

/// `fanout replay`: moves one consumer group's committed offsets.
struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a topic for one subscriber group: move the group's committed offsets to earliest, latest, an offset or a time.",
        discussion: """
            Stop every member of the group first (Kafka refuses offsets committed from outside a running group). \
            Other groups reading the topic are untouched. The group's next run starts from the new offsets.

            Example: fanout replay --group billing --topic orders.events --from 2026-11-01T00:00:00Z
            """
    )

    @OptionGroup var kafka: KafkaOptions

    @Option(name: .long, help: "The consumer group (subscriber group name).")
    var group: String

    @Option(name: .long, help: "The topic to replay.")
    var topic: String

    @Option(name: .long, help: "earliest, latest, an offset (the same in every partition) or an ISO-8601 time such as 2026-11-01T00:00:00Z.")
    var from: String

    func run() async throws {
        do {
            let position = try Self.position(from)
            let offsets = try await KafkaGroupOffsets.reset(
                group: group, topic: topic, to: position, configuration: try kafka.resolve().kafkaConfiguration(), logger: commandLogger()
            )
            for offset in offsets.sorted(by: { $0.partition < $1.partition }) {
                print("\(group) \(topic)[\(offset.partition)] -> \(offset.offset)")
            }
        } catch {
            printError("fanout: error: \(error)")
            throw ExitCode.failure
        }
    }

    static func position(_ text: String) throws -> KafkaGroupOffsets.Position {
        switch text.lowercased() {
        case "earliest", "beginning": return .earliest
        case "latest", "end": return .latest
        default:
            if let offset = Int64(text), offset >= 0 { return .offset(offset) }
            if let date = try? Date(text, strategy: .iso8601) { return .timestamp(date) }
            throw ValidationError("--from: \"\(text)\" is not earliest, latest, an offset or an ISO-8601 time (2026-11-01T00:00:00Z)")
        }
    }
}
