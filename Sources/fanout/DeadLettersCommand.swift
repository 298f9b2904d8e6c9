import ArgumentParser
import CQRSCore
import FanoutApp
import Foundation
import Kafka
import Logging
import Subscribers

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
            do {
                let topic = try DeadLetters.topic(group: group, topic: topic)
                let configuration = try kafka.resolve().kafkaConfiguration()
                let logger = commandLogger()
                let admin = try KafkaAdmin(configuration: configuration, logger: logger)
                let topics = try await admin.listTopics()
                admin.close()
                guard topics[topic] != nil else {
                    throw ValidationError("topic '\(topic)' does not exist (a subscriber group creates <group>.dead-letter when it starts)")
                }
                let entries = try await DeadLetterTopic.read(topic: topic, configuration: configuration, logger: logger)
                for line in DeadLetterListing.lines(entries, topic: topic) { print(line) }
            } catch {
                printError("fanout: error: \(error)")
                throw ExitCode.failure
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
            do {
                let offset = try await DeadLetterTopic.requestRetry(group: group, key: key, configuration: try kafka.resolve().kafkaConfiguration(), logger: commandLogger())
                print("retry of \(key) requested at \(DeadLetterTopic.name(forGroup: group))@\(offset)")
            } catch {
                printError("fanout: error: \(error)")
                throw ExitCode.failure
            }
        }
    }

    static func topic(group: String?, topic: String?) throws -> String {
        switch (group, topic) {
        case (let group?, nil): return DeadLetterTopic.name(forGroup: group)
        case (nil, let topic?): return topic
        default: throw ValidationError("give either --group or --topic")
        }
    }
}

/// The text of `fanout dead-letters list`.
enum DeadLetterListing {
    static func lines(_ entries: [DeadLetterEntry], topic: String) -> [String] {
        var lines = ["\(topic): \(entries.count) record(s)"]
        var unresolved: [String: [Int64]] = [:]
        var order: [String] = []
        for entry in entries {
            var fields = ["\(entry.offset)", entry.kind?.rawValue ?? "unknown", "key=\(entry.key ?? "-")"]
            if let originTopic = entry.originTopic {
                fields.append("origin=\(originTopic)" + (entry.originPartition.map { "[\($0)]" } ?? "") + (entry.originOffset.map { "@\($0)" } ?? ""))
            }
            if let event = try? GenericDomainEventMessage(jsonBytes: entry.value) {
                fields.append("event=\(event.eventName)#\(event.sequenceNumber)")
            }
            if let attempts = entry.attempts, attempts > 0 { fields.append("attempts=\(attempts)") }
            if let behind = entry.parkedBehind { fields.append("parked-behind=\(behind)") }
            if entry.kind == .resolved || entry.kind == .retryFailed { fields.append("resolves=\(entry.resolves.map(String.init).joined(separator: ","))") }
            if let time = entry.time { fields.append("at=\(time)") }
            if let reason = entry.reason { fields.append("reason=\(reason)") }
            lines.append(fields.joined(separator: "  "))
            if let key = entry.key {
                if entry.isEvent {
                    if unresolved[key] == nil { order.append(key) }
                    unresolved[key, default: []].append(entry.offset)
                } else if entry.kind == .resolved || entry.kind == .retryFailed {
                    let done = Set(entry.resolves)
                    unresolved[key]?.removeAll { done.contains($0) }
                }
            }
        }
        let open = order.filter { unresolved[$0]?.isEmpty == false }
        if open.isEmpty {
            lines.append("unresolved: none")
        } else {
            for key in open {
                lines.append("unresolved: \(key): \(unresolved[key]!.map(String.init).joined(separator: ",")) (retry with: fanout dead-letters retry --group G --key \(key))")
            }
        }
        return lines
    }
}
