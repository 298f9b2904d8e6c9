import CQRSCore
import JSON
import Router

/// `fanout routes explain`: which routes an event matches, where it would go, and why the others did not take it.
public enum RoutesExplain {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The lines to print for `input`: one event (a GenericDomainEventMessage as JSON: at least eventName and
    /// aggregateId) as one JSON document, or one event a line (JSON Lines). A line may also be a record as
    /// `fanout tail --format json` prints it (`{"topic", "partition", "offset", …, "value": EVENT}`): its value is
    /// explained. With more than one event each one's lines follow a line naming it (the record's position, or
    /// the line number). Nothing is printed when any event cannot be read: the error names its line.
    public static func run(path: String, eventJSON input: [UInt8]) throws -> [String] {
        let file: RoutesFile
        do {
            file = try RoutesFile.load(path: path)
        } catch {
            throw Failure(description: error.description)
        }
        let routes = CompiledRoutes(file)
        // One document (an event written over several lines included), else one document a line.
        var documents: [(line: Int, value: JSONValue)] = []
        do {
            let whole = try JSONParser.parse(input)
            return try explain(event(whole, line: nil), file: file, routes: routes)
        } catch let error as JSONSyntaxError {
            let blank: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r")]
            let lines = input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
                .filter { $0.element.contains { !blank.contains($0) } }
            guard lines.count > 1 else {
                throw Failure(description: lines.isEmpty
                    ? "event: no input (give the event as JSON, or pipe `fanout tail --format json` into it)"
                    : "event: $: not JSON: \(error)")
            }
            documents = try lines.map { index, line in
                do {
                    return (index + 1, try JSONParser.parse(line))
                } catch {
                    throw Failure(description: "event on line \(index + 1): $: not JSON: \(error)")
                }
            }
        }
        var lines: [String] = []
        for (line, value) in documents {
            let (label, event) = try event(value, line: line)
            lines.append("\(label ?? "line \(line)"):")
            lines += try explain((label, event), file: file, routes: routes).map { "  " + $0 }
        }
        return lines
    }

    /// The event of a document: the document itself, or the `value` of a record `fanout tail --format json` printed
    /// (then labelled `topic/partition@offset`).
    private static func event(_ document: JSONValue, line: Int?) throws -> (label: String?, event: GenericDomainEventMessage) {
        let place = line.map { " on line \($0)" } ?? ""
        var value = document
        var label: String?
        if case .object(let object) = document, let topic = object["topic"]?.stringValue, object["offset"] != nil, let recordValue = object["value"] {
            label = "\(topic)/\(object["partition"].map(JSONWriter.string) ?? "?")@\(object["offset"].map(JSONWriter.string) ?? "?")"
            value = recordValue
        }
        guard case .object(let object) = value else {
            throw Failure(description: "event\(place)\(label.map { " (\($0))" } ?? ""): $: expected a JSON object, found \(value.typeName)")
        }
        do {
            return (label, try GenericDomainEventMessage(decoding: object))
        } catch {
            throw Failure(description: "event\(place)\(label.map { " (\($0))" } ?? ""): \(error)")
        }
    }

    private static func explain(_ labelled: (label: String?, event: GenericDomainEventMessage), file: RoutesFile, routes: CompiledRoutes) throws -> [String] {
        let event = labelled.event
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
