import ArgumentParser
import FanoutApp

/// `fanout replay`: moves one consumer group's committed offsets.
struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a topic for one subscriber group: move the group's committed offsets to earliest, latest, an offset or a time.",
        discussion: """
            A dry run unless --execute (as kafka-consumer-groups --reset-offsets): prints each partition's committed \
            offset and the one it would move to (GROUP TOPIC[PARTITION]: BEFORE -> AFTER; none when the group has \
            no offset there) and changes nothing. With --execute it commits them. Refuses a topic that does not \
            exist, and a group the broker does not know (a typo would otherwise create a new group) unless --create.

            Stop every member of the group first (Kafka refuses offsets committed from outside a running group). \
            Other groups reading the topic are untouched. The group's next run starts from the new offsets.

            Example: fanout replay --group billing --topic orders.events --from 2026-11-01T00:00:00Z --execute
            """
    )

    @OptionGroup var kafka: KafkaOptions

    @Option(name: .long, help: "The consumer group (subscriber group name).")
    var group: String

    @Option(name: .long, help: "The topic to replay.")
    var topic: String

    @Option(name: .long, help: "earliest, latest, an offset (the same in every partition) or an ISO-8601 time such as 2026-11-01T00:00:00Z.")
    var from: String

    @Flag(name: .long, help: "Commit the new offsets (without it, only show them).")
    var execute = false

    @Flag(name: .long, help: "Accept a consumer group the broker does not know yet (a new group).")
    var create = false

    func run() async throws {
        try await reportingErrors {
            let lines = try await ReplayCommand.run(
                group: group, topic: topic, from: from, execute: execute, create: create, settings: try kafka.resolve(), logger: commandLogger()
            )
            lines.forEach { print($0) }
        }
    }
}
