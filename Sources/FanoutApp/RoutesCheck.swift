import Router

/// `fanout routes check`: every problem of a routes file, or a summary of a good one.
public enum RoutesCheck {
    /// The lines to print, and whether the file is valid.
    public static func run(path: String) -> (lines: [String], isValid: Bool) {
        do {
            let file = try RoutesFile.load(path: path)
            let patterns = file.routes.reduce(0) { $0 + $1.events.count }
            var lines = [
                // Topics counted as /status counts them: every topic Fanout writes to, the dead-letter topic included.
                "\(path): valid (version \(file.version)): \(Preflight.plural(file.routes.count, "route")), \(Preflight.plural(file.allTopics.count, "topic")), \(Preflight.plural(patterns, "event-name pattern")); sha256 \(file.contentHash)"
            ]
            for route in file.routes {
                lines.append("  route \(route.name): \(route.events.map(\.text).joined(separator: ", ")) -> \(route.topics.joined(separator: ", "))\(route.key == .aggregateID ? "" : " (key: \(route.key))")")
            }
            for topic in file.allTopics {
                let configs = topic.settings.configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                lines.append("  topic \(topic.name): \(Preflight.plural(Int(topic.settings.partitions), "partition")), replication \(topic.settings.replicationFactor)\(configs.isEmpty ? "" : ", \(configs)")")
            }
            lines.append("  unrouted events: \(file.unroutedTopic.map { "counted and sent to \($0)" } ?? "counted"); dead letters: \(file.deadLetterTopic)")
            return (lines, true)
        } catch {
            return (error.issues.map(\.description), false)
        }
    }
}
