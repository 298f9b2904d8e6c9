import ArgumentParser
import Configuration
import FanoutApp
import Foundation
import Logging
import Settings

/// A logger for the short-lived commands: warnings and errors only, to standard error.
func commandLogger() -> Logger {
    var logger = Logger(label: "fanout") { label in StreamLogHandler.standardError(label: label) }
    logger.logLevel = .warning
    return logger
}

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the Kafka topics of a routes file.",
        subcommands: [Ensure.self]
    )

    struct Ensure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the topics of routes.json and of Fanout itself, and report every existing topic that differs from the file.",
            discussion: """
                One line per topic: `created`, `missing` (with --dry-run), `ok`, `fixed` (with --fix) or `drift` with \
                each difference (partitions, and every config the file sets, e.g. retention.ms). Also checks the \
                checkpoint topic fanout.checkpoints.<application> (one partition, cleanup.policy=compact).

                Exit status: 0 when every topic matches, 2 when some drift remains, 1 on an error.

                Adding partitions changes which partition a key goes to: an aggregate's new events land on another \
                partition than its earlier ones, so a consumer reading the topic sees them out of order. --fix \
                therefore refuses to add partitions unless --allow-repartition is given too.

                Configs are reported, never altered: change them with your Kafka tooling (librdkafka 2.0.2 has only \
                the non-incremental AlterConfigs, which would reset every other config of the topic).
                """
        )

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var application: ApplicationOption

        @Option(name: .long, help: .setting(.routes, valueName: "file"))
        var routes: String?

        @Flag(name: .long, help: "Add partitions to topics that have fewer than the file asks for (needs --allow-repartition).")
        var fix = false

        @Flag(
            name: .customLong("allow-repartition"),
            help: "Let --fix add partitions: keys then map to other partitions, so per-aggregate order breaks for records already in the topic.")
        var allowRepartition = false

        @Flag(name: .customLong("dry-run"), help: "Create and change nothing; report what would be done.")
        var dryRun = false

        func run() async throws {
            let report = try await reportingErrors {
                var flags = application.flags
                flags[.routes] = routes.map(ConfigContent.string)
                let settings = try kafka.resolve(adding: flags, settings: [.routes, .application])
                return try await TopicsEnsure.run(settings: settings, fix: fix, allowRepartition: allowRepartition, dryRun: dryRun, logger: commandLogger())
            }
            report.lines.forEach { print($0) }
            if report.driftCount > 0 { throw ExitCode(2) }
        }
    }
}

struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the records of a topic, decoded as Fanout records (event, aggregate, route, source, value).",
        discussion: """
            Reads without a consumer group's commits (a throwaway group id): other consumers are not affected. \
            --from end (the default) waits for new records; --from beginning starts at the oldest; an ISO-8601 time \
            starts at the first record written at or after it. Stops after --count records, or after --idle seconds \
            without a record, or on SIGINT.

            Example: fanout tail orders.events --from beginning --count 10 --brokers 127.0.0.1:9092
            """
    )

    @OptionGroup var kafka: KafkaOptions

    @Argument(help: "The topic to read.")
    var topic: String

    @Option(name: .long, help: "beginning, end, or an ISO-8601 time such as 2026-11-01T00:00:00Z.")
    var from: String = "end"

    @Option(name: .long, help: "Stop after this many records.")
    var count: Int?

    @Option(name: .long, help: "Stop after this many seconds without a record.")
    var idle: Double?

    @Option(name: .long, help: "text (one readable line a record) or json (one JSON object a line, which `fanout routes explain` reads).")
    var format: String = "text"

    func run() async throws {
        try await reportingErrors {
            try await TailCommand.run(
                topic: topic, from: from, count: count, idle: idle, format: format, settings: try kafka.resolve(), logger: commandLogger()
            )
        }
    }
}

struct Checkpoints: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or reset the shard checkpoints of one application (topic fanout.checkpoints.<application>).",
        subcommands: [List.self, Reset.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the checkpoint every shard resumes from (the rule `fanout run` uses): stream, shard, sequence number, open or finished, epoch, when written.",
            discussion: """
                --format json prints one JSON document: {"topic", "checkpoints": [{"streamArn", "shardId", "sequenceNumber", \
                "finished", "epoch", "writtenAt"}], "ignored": [the records the rule ignores, with why]}.
                """
        )

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var application: ApplicationOption
        @OptionGroup var format: ListFormatOption

        func run() async throws {
            try await reportingErrors {
                let settings = try kafka.resolve(adding: application.flags, settings: [.application])
                if try format.isJSON() {
                    print(try await CheckpointCommands.json(settings, logger: commandLogger()))
                    return
                }
                let (lines, warnings) = try await CheckpointCommands.list(settings, logger: commandLogger())
                warnings.forEach { printError("fanout: warning: \($0)") }
                lines.forEach { print($0) }
            }
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reset one shard's checkpoint, so that the next start reads it again from its start position (or from --to).",
            discussion: """
                Stop every `fanout run` of the application first: a running one would overwrite the checkpoint with its \
                next page. Asks for the shard id to be typed back unless --yes is given; refuses without --yes when \
                standard input is not a terminal. The reset is a new checkpoint record (sequenceNumber null, or --to), so \
                the topic keeps the history until compaction. --to latest skips what the shard holds now: it reads the \
                shard from the checkpoint to its end (AWS_REGION, AWS_ENDPOINT_URL and credentials as for `fanout run`) \
                and resumes after the newest record.
                """
        )

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var application: ApplicationOption

        @Option(name: .long, help: "The shard to reset.")
        var shard: String

        @Option(name: .customLong("stream-arn"), help: "The stream of the shard; needed only when the topic holds more than one stream.")
        var streamARN: String?

        @Option(name: .long, help: "Resume after this sequence number instead of at the start position; latest: after the shard's newest record now (reads the shard; AWS settings from the environment).")
        var to: String?

        @Flag(name: .long, help: "Do not ask for confirmation.")
        var yes = false

        func run() async throws {
            try await reportingErrors {
                try await CheckpointCommands.reset(
                    settings: try kafka.resolve(adding: application.flags, settings: [.application]),
                    shard: shard, streamARN: streamARN, to: to, yes: yes, logger: commandLogger(), output: { print($0) }
                )
            }
        }
    }
}
