import ArgumentParser
import FanoutApp
import Foundation
import Kafka

@main
struct Fanout: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "Routes DynamoDB Streams events to Kafka topics by the rules in routes.json.",
        version: version,
        subcommands: [Run.self, Routes.self, Topics.self, Tail.self, Checkpoints.self, DeadLetters.self, Replay.self, ConfigCommand.self, Version.self]
    )

    /// ArgumentParser's main, except that the process exits only once every Kafka client is destroyed:
    /// exiting while librdkafka is still tearing one down (a refused TLS handshake, say) can crash it; and that
    /// every error is one `fanout: error:` line with exit status 1 (docs/configuration.md#errors-and-exit-status).
    static func main() async {
        Allocator.configure(environment: ProcessInfo.processInfo.environment)
        var failure: (any Error)?
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            failure = error
        }
        await KafkaClients.waitUntilAllDestroyed(timeout: .seconds(5))
        if let failure { exit(reporting: failure) }
    }

    /// Help, `--version` and the exit codes commands chose (their lines already printed) go through ArgumentParser;
    /// anything else, a usage mistake included, is one `fanout: error:` line and exit status 1.
    static func exit(reporting error: any Error) -> Never {
        if error is ExitCode || exitCode(for: error) == .success { exit(withError: error) }
        let message = message(for: error).split(separator: "\n").map(String.init).joined(separator: " ")
        // The subcommand the arguments name, for where to read its help.
        var path: [String] = []
        var commands = configuration.subcommands
        for argument in CommandLine.arguments.dropFirst() {
            guard let command = commands.first(where: { $0._commandName == argument }) else { break }
            path.append(argument)
            commands = command.configuration.subcommands
        }
        printError("fanout: error: \(message) (see `\((["fanout"] + path).joined(separator: " ")) --help`)")
        Foundation.exit(ExitCode.failure.rawValue)
    }
}

struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with routes files.",
        subcommands: [Check.self, Explain.self]
    )

    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which routes an event matches, the topics it would go to, and for every other route the first condition that failed.",
            discussion: """
                The event is a GenericDomainEventMessage as JSON (as in Fanout's Kafka records): at least eventName and \
                aggregateId, with payload and metadata as plain JSON. Give it as an argument, on standard input, or in \
                a file (--events). Standard input and the file may also hold one event a line, each one either an \
                event or a record as `fanout tail --format json` prints it (its value is explained), so a topic's \
                records can be piped in; each event's lines then follow a line naming it.

                Example: fanout routes explain routes.json '{"eventName": "OrderPlaced", "aggregateId": "o-1", "payload": {"total": 5}}'
                Example: fanout tail orders.events --from beginning --idle 2 --format json | fanout routes explain routes.json
                """
        )

        @Argument(help: "The routes file.")
        var file: String

        @Argument(help: "The event as JSON; read from --events or standard input when omitted.")
        var event: String?

        @Option(name: .long, help: ArgumentHelp("Read the events from this file (one event a line, or one JSON document).", valueName: "file"))
        var events: String?

        func run() throws {
            let bytes: [UInt8]
            if let event {
                guard events == nil else {
                    printError("fanout: error: give the event as an argument or --events \(events!), not both")
                    throw ExitCode.failure
                }
                bytes = Array(event.utf8)
            } else if let events {
                guard let data = FileManager.default.contents(atPath: events) else {
                    printError("fanout: error: --events: cannot read \(events)")
                    throw ExitCode.failure
                }
                bytes = Array(data)
            } else {
                bytes = try StandardStreams.readInput()
            }
            do {
                for line in try RoutesExplain.run(path: file, eventJSON: bytes) { print(line) }
            } catch {
                printError("fanout: error: \(error)")
                throw ExitCode.failure
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a routes file: print every problem (file:line:column: JSON path: problem) and exit 1, or print a summary and exit 0."
        )

        @Argument(help: "The routes file to check.")
        var file: String = "routes.json"

        func run() throws {
            let (lines, isValid) = RoutesCheck.run(path: file)
            if isValid {
                lines.forEach { print($0) }
            } else {
                lines.forEach(printError)
                throw ExitCode.failure
            }
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the versions of fanout and of the librdkafka it runs on.")

    func run() {
        print("fanout \(Fanout.version)")
        print("librdkafka \(Librdkafka.version)")
    }
}
