import CQRSCore
import Foundation
import JSON
import Router
import Testing

@Suite struct RoutesFileTests {
    static func load(_ text: String) throws(RoutesFileError) -> RoutesFile {
        try RoutesFile.parse(Array(text.utf8), file: "routes.json")
    }

    static let valid = """
        {
          "version": 1,
          "defaults": { "partitions": 4, "retentionMs": 1000 },
          "topics": {
            "orders.events": { "partitions": 12, "cleanupPolicy": "compact", "configs": { "min.insync.replicas": 1 } },
            "billing.events": {},
            "audit.all": { "retentionMs": 2592000000 }
          },
          "routes": [
            { "name": "orders", "events": ["Order*"], "to": ["orders.events"] },
            { "name": "billing", "events": ["OrderPlaced", "PaymentReceived"], "to": ["billing.events"], "key": "payload.customerId" },
            { "name": "audit", "events": ["*"], "to": ["audit.all"] }
          ],
          "unrouted": { "topic": "unrouted.events" },
          "deadLetterTopic": "dlq"
        }
        """

    @Test func loadsAValidFileWithDefaultsApplied() throws {
        let file = try Self.load(Self.valid)
        #expect(file.routes.map(\.name) == ["orders", "billing", "audit"])
        #expect(file.topics.map(\.name) == ["orders.events", "billing.events", "audit.all"])
        let orders = file.topics[0].settings
        #expect(orders.partitions == 12)
        #expect(orders.configs == ["retention.ms": "1000", "cleanup.policy": "compact", "min.insync.replicas": "1"])
        #expect(file.topics[1].settings.partitions == 4)
        #expect(file.topics[2].settings.retentionMs == 2_592_000_000)
        #expect(file.routes[1].key == .payload(["customerId"]))
        #expect(file.unroutedTopic == "unrouted.events")
        #expect(file.allTopics.map(\.name) == ["orders.events", "billing.events", "audit.all", "dlq", "unrouted.events"])
        #expect(file.contentHash.count == 64)
    }

    @Test func defaultRetentionIsSevenDays() throws {
        let file = try Self.load(#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["E"], "to": ["t"]}]}"#)
        #expect(file.topics[0].settings.retentionMs == 604_800_000)
        #expect(file.deadLetterTopic == "fanout.dead-letter")
        #expect(file.unrouted == .count)
    }

    @Test func theRootRoutesFileIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("routes.json").path
        let file = try RoutesFile.load(path: path)
        #expect(!file.routes.isEmpty)
    }

    @Test(arguments: [
        // (file text, expected "line:column: path: message" fragment)
        (#"{"version": 2, "topics": {}, "routes": []}"#, "routes.json:1:13: $.version: unsupported version 2"),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [], "extra": 1}"#, "$.extra: unknown field \"extra\""),
        (#"{"version": 1, "topics": {"t": {"partitions": "6"}}, "routes": []}"#, "$.topics.t.partitions: expected an integer, found string"),
        (#"{"version": 1, "topics": {"t": {"partitions": 0}}, "routes": []}"#, "$.topics.t.partitions: 0 is out of range"),
        (#"{"version": 1, "topics": {"bad topic": {}}, "routes": []}"#, "is not a valid topic name"),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["A**"], "to": ["t"]}]}"#, "$.routes[0].events[0]: \"A**\" has consecutive wildcards"),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": [""], "to": ["t"]}]}"#, "$.routes[0].events[0]: an event-name pattern must not be empty"),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["A"], "to": ["u"]}]}"#, "1:86: $.routes[0].to[0]: topic \"u\" is not declared in $.topics"),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["A"], "to": ["t"]}, {"name": "r", "events": ["B"], "to": ["t"]}]}"#, "$.routes[1].name: duplicate route name \"r\""),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": [], "to": ["t"]}]}"#, "$.routes[0].events: must not be empty"),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [{"events": ["A"], "to": ["t"]}]}"#, "$.routes[0]: missing required field \"name\""),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["A"], "to": ["t"], "key": "nope"}]}"#, "$.routes[0].key: \"nope\" is not a key source"),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [], "unrouted": "drop"}"#, "$.unrouted: expected \"count\" or {\"topic\": \"name\"}"),
        (#"{"topics": {}, "routes": []}"#, "$: missing required field \"version\""),
        ("{\n  \"version\": 1,\n  \"topics\": {\n    \"t\": {}\n  \n  \"routes\": []\n}", "routes.json:6:3: $.topics: unexpected '\"', expected ',' or '}'"),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["A"], "to": ["t"], "where": {"payload": {"total": 5}}}]}"#, "1:123: $.routes[0].where.payload.total: a field's pattern must be an array"),
        (#"{"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["A"], "to": ["t"], "where": {"payload": {"total": [{"numeric": [">", "x"]}]}}}]}"#, "$.routes[0].where.payload.total[0].numeric[1]: a numeric bound must be a number"),
    ])
    func refusesABadFileNamingWhereAndWhy(text: String, expected: String) {
        do {
            _ = try Self.load(text)
            Issue.record("expected \(text) to be refused")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
            #expect(error.issues.allSatisfy { $0.description.hasPrefix("routes.json") })
        }
    }

    @Test func reportsEveryProblemAtOnce() {
        let text = #"{"version": 1, "topics": {"t": {"partitions": -1}}, "routes": [{"name": "r", "events": ["**"], "to": ["x"]}]}"#
        do {
            _ = try Self.load(text)
            Issue.record("expected a refusal")
        } catch {
            #expect(error.issues.count == 3, "\(error.description)")
        }
    }

    @Test func refusesAFileThatIsNotUTF8() {
        var bytes = Array(#"{"version": 1, "topics": {"t"#.utf8)
        bytes.append(0xFF)
        do {
            _ = try RoutesFile.parse(bytes, file: "r.json")
            Issue.record("expected a refusal")
        } catch {
            #expect(error.description == "r.json: $: the file is not valid UTF-8 (first bad byte at offset 28)")
        }
    }

    @Test func aMissingFileIsOneClearLine() {
        do {
            _ = try RoutesFile.load(path: "/nonexistent/routes.json")
            Issue.record("expected a refusal")
        } catch {
            #expect(error.description.hasPrefix("/nonexistent/routes.json: $: cannot read the file"))
            #expect(!error.description.contains("\n"))
        }
    }
}

func event(_ name: String, payload: JSONValue = [:]) -> GenericDomainEventMessage {
    GenericDomainEventMessage(eventName: name, aggregateID: "a-1", aggregateType: "T", sequenceNumber: 1, payload: payload)
}

@Suite struct MatchingTests {
    @Test(arguments: [
        ("OrderPlaced", "OrderPlaced", true), ("OrderPlaced", "OrderPlace", false),
        ("Order*", "OrderPlaced", true), ("Order*", "Order", true), ("Order*", "PaymentReceived", false),
        ("*Placed", "OrderPlaced", true), ("*Placed", "OrderPlacedX", false),
        ("Order*Item*", "OrderLineItemAdded", true), ("Order*Item*", "OrderLineAdded", false),
        ("*", "", true), ("*", "Anything", true), ("A*A", "A", false), ("A*A", "AA", true), ("*a*b*", "xaybz", true), ("*a*b*", "xbya", false),
    ])
    func eventNamePatterns(pattern: String, name: String, matches: Bool) throws {
        #expect(try EventNamePattern(pattern).matches(name) == matches)
    }

    @Test func anEventGoesOnceToEachTopicOfTheUnionOfItsRoutes() throws {
        let file = try RoutesFileTests.load(RoutesFileTests.valid)
        let routes = CompiledRoutes(file)
        let placed = routes.targets(for: event("OrderPlaced"))
        #expect(placed.map(\.topic) == ["orders.events", "billing.events", "audit.all"])
        #expect(placed.map(\.routeNames) == [["orders"], ["billing"], ["audit"]])
        #expect(placed[1].key == .payload(["customerId"]))
        #expect(routes.targets(for: event("OrderShipped")).map(\.topic) == ["orders.events", "audit.all"])
        #expect(routes.targets(for: event("Unknown")).map(\.topic) == ["audit.all"])
    }

    @Test func routesSharingATopicAreNamedTogether() throws {
        let file = try RoutesFileTests.load(#"""
            {"version": 1, "topics": {"t": {}, "u": {}},
             "routes": [{"name": "a", "events": ["X*"], "to": ["t"]}, {"name": "b", "events": ["XY", "X*"], "to": ["t", "u"]}]}
            """#)
        let routes = CompiledRoutes(file)
        let targets = routes.targets(for: event("XY"))
        #expect(targets.map(\.topic) == ["t", "u"])
        #expect(targets[0].routeHeader == "a,b")
        #expect(targets[1].routeHeader == "b")
        #expect(routes.targets(for: event("XZ")).map(\.routeHeader) == ["a,b", "b"])
        #expect(routes.targets(for: event("Q")).isEmpty)
    }

    /// Found by the routes fuzz target (Fuzz/Regressions/routes): a member name or value with an escaped
    /// line break made an issue of several lines; it is escaped now.
    @Test func anIssueIsOneLineWhateverTheFileStringsHold() {
        for text in [#"{"ver\nsion": 1}"#, #"{"version": 1, "topics": {"a\r\u2028b": {}}, "routes": []}"#, "{\"a\nb\" 1}"] {
            do {
                _ = try RoutesFile.parse(Array(text.utf8), file: "routes.json")
                Issue.record("\(text) was accepted")
            } catch {
                for issue in error.issues {
                    let isOneLine = !issue.description.contains { $0.isNewline }
                    #expect(isOneLine, "\(issue.description.debugDescription)")
                }
            }
        }
        do {
            _ = try RoutesFile.parse(Array(#"{"ver\nsion": 1}"#.utf8), file: "routes.json")
        } catch {
            #expect(error.issues.contains { $0.description.contains(#"unknown field "ver\nsion""#) }, "\(error)")
        }
    }
}
