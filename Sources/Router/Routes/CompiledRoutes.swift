import CQRSCore
import JSON
import Synchronization

/// One destination of a routed event: a topic, the routes that chose it, and the key to use.
public struct RouteTarget: Sendable, Hashable {
    public var topic: String
    /// Names of the matching routes that send to this topic, in file order.
    public var routeNames: [String]
    /// The key source of the first of those routes.
    public var key: KeySource
    /// `routeNames` joined with ",": the `fanout-route` header value, as UTF-8 bytes built once and shared by
    /// every record sent to this target (not copied for each).
    public let routeHeaderBytes: [UInt8]
    /// The `fanout-route` header value as text.
    public var routeHeader: String { String(decoding: routeHeaderBytes, as: UTF8.self) }

    init(topic: String, routeNames: [String], key: KeySource) {
        self.topic = topic
        self.routeNames = routeNames
        self.key = key
        self.routeHeaderBytes = Array(routeNames.joined(separator: ",").utf8)
    }
}

/// How one route judged one event, for `fanout routes explain`.
public struct RouteVerdict: Sendable, Hashable {
    public var route: String
    public var matched: Bool
    /// Why it did not match: the first condition that failed.
    public var reason: String?
    public var topics: [String]
}

/// Routes compiled into an immutable lookup table.
///
/// Every event name that appears literally in some route is resolved at
/// compile time to the routes whose name patterns match it (exact and
/// wildcard together). When none of those routes has a `where` pattern, its
/// de-duplicated target list is built once too, so routing such a name is one
/// hash lookup returning a shared array: its cost does not grow with the number
/// of routes, and it allocates nothing. Other names are matched against the
/// wildcard index once and then cached the same way; content patterns are
/// evaluated only for routes whose name already matched.
public struct CompiledRoutes: Sendable {
    public let file: RoutesFile
    private let exact: [String: Candidates]
    private let wildcards: WildcardIndex
    /// Names that only wildcard patterns match, resolved on first sight, so that later events of the same
    /// name are one lookup too. Bounded: past `maximumCachedNames` names are resolved each time.
    private let resolvedNames = ResolvedNames()
    /// Whether any content pattern looks at the event's `timestamp` (formatting it costs; most patterns don't).
    private let patternsReadTimestamp: Bool

    struct Candidates: Sendable {
        /// Routes whose name patterns match, in file order.
        var routes: [Int]
        /// The targets, when no candidate route has a content pattern.
        var fixedTargets: [RouteTarget]?
    }

    private static let noTargets: [RouteTarget] = []

    public init(_ file: RoutesFile) {
        self.file = file
        var wildcards: [(EventNamePattern, Int)] = []
        var exactNames: [String] = []
        for (index, route) in file.routes.enumerated() {
            for pattern in route.events {
                if pattern.isExact {
                    exactNames.append(pattern.text)
                } else {
                    wildcards.append((pattern, index))
                }
            }
        }
        let index = WildcardIndex(wildcards)
        self.wildcards = index
        var exactRoutes: [String: [Int]] = [:]
        for (position, route) in file.routes.enumerated() {
            for pattern in route.events where pattern.isExact {
                if exactRoutes[pattern.text]?.last != position { exactRoutes[pattern.text, default: []].append(position) }
            }
        }
        var exact: [String: Candidates] = [:]
        for name in exactNames where exact[name] == nil {
            let routes = Set(exactRoutes[name, default: []]).union(index.routes(matching: name)).sorted()
            exact[name] = Self.candidates(routes, in: file.routes)
        }
        self.exact = exact
        self.patternsReadTimestamp = file.routes.contains { $0.condition?.readsField(GenericDomainEventMessage.Field.timestamp) ?? false }
    }

    private static func candidates(_ routes: [Int], in all: [Route]) -> Candidates {
        let fixed = routes.allSatisfy { all[$0].condition == nil } ? targets(routes: routes.map { all[$0] }) : nil
        return Candidates(routes: routes, fixedTargets: fixed)
    }

    private func candidates(for eventName: String) -> Candidates {
        if let candidates = exact[eventName] { return candidates }
        if let candidates = resolvedNames.lookup(eventName) { return candidates }
        let candidates = Self.candidates(wildcards.routes(matching: eventName), in: file.routes)
        resolvedNames.store(candidates, for: eventName)
        return candidates
    }

    /// The targets of an event; empty when no route matches.
    public func targets(for event: GenericDomainEventMessage) -> [RouteTarget] {
        let candidates = candidates(for: event.eventName)
        if let fixed = candidates.fixedTargets { return fixed }
        let json = JSONValue.object(event.matchingObject(includingTimestamp: patternsReadTimestamp))
        let matched = candidates.routes.filter { file.routes[$0].condition?.matches(json) ?? true }
        return matched.isEmpty ? Self.noTargets : Self.targets(routes: matched.map { file.routes[$0] })
    }

    /// The targets of every event of this name, when they do not depend on its content (no route whose
    /// name pattern matches it has a `where` pattern); nil when they do. Empty when no route matches.
    public func fixedTargets(forEventName eventName: String) -> [RouteTarget]? {
        candidates(for: eventName).fixedTargets
    }

    /// Every route's verdict on the event, in file order.
    public func explain(_ event: GenericDomainEventMessage) -> [RouteVerdict] {
        let json = JSONValue.object(event.jsonObject)
        return file.routes.map { route in
            guard route.events.contains(where: { $0.matches(event.eventName) }) else {
                return RouteVerdict(
                    route: route.name, matched: false,
                    reason: "event name \"\(event.eventName)\" matches none of \(route.events.map(\.text).joined(separator: ", "))",
                    topics: route.topics
                )
            }
            if let failure = route.condition?.firstFailure(json) {
                return RouteVerdict(route: route.name, matched: false, reason: "where: \(failure)", topics: route.topics)
            }
            return RouteVerdict(route: route.name, matched: true, reason: nil, topics: route.topics)
        }
    }

    /// The union of the routes' topics, each once, in order of first appearance.
    private static func targets(routes: [Route]) -> [RouteTarget] {
        var order: [String] = []
        var byTopic: [String: (names: [String], key: KeySource)] = [:]
        for route in routes {
            for topic in route.topics {
                if byTopic[topic] == nil {
                    order.append(topic)
                    byTopic[topic] = ([route.name], route.key)
                } else if byTopic[topic]!.names.last != route.name {
                    byTopic[topic]!.names.append(route.name)
                }
            }
        }
        return order.map { RouteTarget(topic: $0, routeNames: byTopic[$0]!.names, key: byTopic[$0]!.key) }
    }
}

/// The cache behind `CompiledRoutes.candidates(for:)` for names no exact pattern names.
private final class ResolvedNames: Sendable {
    static let maximumCachedNames = 10_000
    private let names = Mutex<[String: CompiledRoutes.Candidates]>([:])

    func lookup(_ name: String) -> CompiledRoutes.Candidates? {
        names.withLock { $0[name] }
    }

    func store(_ candidates: CompiledRoutes.Candidates, for name: String) {
        names.withLock { names in
            if names.count < Self.maximumCachedNames { names[name] = candidates }
        }
    }
}

/// Wildcard event-name patterns indexed by their literal prefix (the text before the first `*`), so that
/// finding the patterns a name matches costs one lookup per prefix of the name, not one test per pattern.
/// Patterns that start with `*` are always tested.
struct WildcardIndex: Sendable {
    private var byPrefix: [Substring: [(pattern: EventNamePattern, route: Int)]] = [:]
    private var unprefixed: [(pattern: EventNamePattern, route: Int)] = []
    private var prefixLengths: [Int] = []

    init(_ patterns: [(EventNamePattern, Int)]) {
        var lengths = Set<Int>()
        for (pattern, route) in patterns {
            let prefix = pattern.text.prefix { $0 != "*" }
            if prefix.isEmpty {
                unprefixed.append((pattern, route))
            } else {
                byPrefix[prefix, default: []].append((pattern, route))
                lengths.insert(prefix.count)
            }
        }
        prefixLengths = lengths.sorted()
    }

    var isEmpty: Bool { byPrefix.isEmpty && unprefixed.isEmpty }

    /// The routes with a wildcard pattern that matches `name`, in file order, each once.
    func routes(matching name: String) -> [Int] {
        if isEmpty { return [] }
        var routes: [Int] = []
        for (pattern, route) in unprefixed where pattern.matches(name) { routes.append(route) }
        let count = name.count
        for length in prefixLengths {
            if length > count { break }
            guard let candidates = byPrefix[name.prefix(length)] else { continue }
            for (pattern, route) in candidates where pattern.matches(name) { routes.append(route) }
        }
        if routes.count > 1 { routes = Array(Set(routes)).sorted() }
        return routes
    }
}
