import ArgumentParser
import FanoutApp

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
        try await reportingErrors {
            let lines = try await ReplayCommand.run(group: group, topic: topic, from: from, settings: try kafka.resolve(), logger: commandLogger())
            lines.forEach { print($0) }
        }
    }
}
