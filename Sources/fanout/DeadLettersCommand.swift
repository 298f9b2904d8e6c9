import ArgumentParser
import FanoutApp

/// `fanout dead-letters list|retry`.
struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List a dead-letter topic (a subscriber group's, or the Router's), and retry an aggregate's dead letters.",
        subcommands: [List.self, Retry.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every record of a dead-letter topic with its kind, key, origin, attempts and reason, then the unresolved aggregates.",
            discussion: """
                --group G reads G's topic (G.dead-letter); --topic T reads any dead-letter topic, e.g. the Router's \
                fanout.dead-letter. One line per record: offset, kind (failed, parked, not-an-event, retry, resolved, \
                retry-failed, router), key, origin topic[partition]@offset, event name, attempts, reason. \
                --format json prints one JSON document instead: {"topic", "records": [...], "unresolved": [{"key", "offsets"}]}.
                """
        )

        @OptionGroup var kafka: KafkaOptions

        @Option(name: .long, help: "The subscriber group whose dead-letter topic (<group>.dead-letter) to list.")
        var group: String?

        @Option(name: .long, help: "A dead-letter topic to list, e.g. fanout.dead-letter (the Router's).")
        var topic: String?

        @OptionGroup var format: ListFormatOption

        func run() async throws {
            try await reportingErrors {
                let lines = try await DeadLetterCommands.list(
                    group: group, topic: topic, json: try format.isJSON(), settings: try kafka.resolve(), logger: commandLogger()
                )
                lines.forEach { print($0) }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask a subscriber group to run an aggregate's dead letters again, in order, through its handlers.",
            discussion: """
                Writes a retry request (keyed by the aggregate) to the group's dead-letter topic. The running group \
                (or the next one to start) runs the aggregate's failed and parked events in their order, then writes a \
                'resolved' marker and unparks the aggregate, or a 'retry-failed' marker with the new error. Check the \
                outcome with `fanout dead-letters list --group G`.

                A dry run unless --execute: prints the aggregate's unresolved dead letters and the topic's end offset \
                before -> after, and writes nothing. Refuses a key with no unresolved dead letters, and a group without \
                a dead-letter topic (it never started, or a typo) unless --create, which creates <group>.dead-letter \
                and leaves the request for the group's first start.
                """
        )

        @OptionGroup var kafka: KafkaOptions

        @Option(name: .long, help: "The subscriber group.")
        var group: String

        @Option(name: .long, help: "The aggregate id (record key) whose dead letters to retry.")
        var key: String

        @Flag(name: .long, help: "Write the retry request (without it, only show what it would do).")
        var execute = false

        @Flag(name: .long, help: "Accept a group whose dead-letter topic does not exist yet, and create it.")
        var create = false

        func run() async throws {
            try await reportingErrors {
                let lines = try await DeadLetterCommands.requestRetry(
                    group: group, key: key, execute: execute, create: create, settings: try kafka.resolve(), logger: commandLogger()
                )
                lines.forEach { print($0) }
            }
        }
    }
}
