import CQRSCore
import Router

/// `fanout routes explain`: which routes an event matches, where it would go, and why the others did not take it.
public enum RoutesExplain {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The lines to print for `eventJSON` (a GenericDomainEventMessage as JSON: at least eventName and aggregateId).
    public static func run(path: String, eventJSON: [UInt8]) throws -> [String] {
        let file: RoutesFile
        do {
            file = try RoutesFile.load(path: path)
        } catch {
            throw Failure(description: error.description)
        }
        let event: GenericDomainEventMessage
        do {
            event = try GenericDomainEventMessage(jsonBytes: eventJSON)
        } catch {
            throw Failure(description: "event: \(error)")
        }
        let routes = CompiledRoutes(file)
        let targets = routes.targets(for: event)
        var lines: [String] = []
        if targets.isEmpty {
            lines.append("\(event.eventName): no route matches; it would be \(file.unroutedTopic.map { "counted as unrouted and sent to \($0)" } ?? "counted as unrouted")")
        } else {
            lines.append("\(event.eventName) -> \(targets.map(\.topic).joined(separator: ", "))")
            for target in targets {
                let key = String(decoding: FanOutPlanner.key(for: event, from: target.key), as: UTF8.self)
                lines.append("  \(target.topic): routes \(target.routeNames.joined(separator: ", ")); key \"\(key)\" (\(target.key))")
            }
        }
        for verdict in routes.explain(event) {
            if verdict.matched {
                lines.append("  match     \(verdict.route) -> \(verdict.topics.joined(separator: ", "))")
            } else {
                lines.append("  no match  \(verdict.route): \(verdict.reason ?? "")")
            }
        }
        return lines
    }
}
