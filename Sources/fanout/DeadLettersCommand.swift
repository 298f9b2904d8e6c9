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
                retry-failed, router), key, origin topic[partition]@offset, event name, attempts, reason.
                """
        )

        @OptionGroup var kafka: KafkaOptions

        @Option(name: .long, help: "The subscriber group whose dead-letter topic (<group>.dead-letter) to list.")
        var group: String?

        @Option(name: .long, help: "A dead-letter topic to list, e.g. fanout.dead-letter (the Router's).")
        var topic: String?

        func run() async throws {
            try await reportingErrors {
                let lines = try await DeadLetterCommands.list(group: group, topic: topic, settings: try kafka.resolve(), logger: commandLogger())
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
                """
        )

        @OptionGroup var kafka: KafkaOptions

        @Option(name: .long, help: "The subscriber group.")
        var group: String

        @Option(name: .long, help: "The aggregate id (record key) whose dead letters to retry.")
        var key: String

        func run() async throws {
            try await reportingErrors {
                print(try await DeadLetterCommands.requestRetry(group: group, key: key, settings: try kafka.resolve(), logger: commandLogger()))
            }
        }
    }
}
