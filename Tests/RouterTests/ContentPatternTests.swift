import CQRSCore
import JSON
import Router
import Testing

/// `where` patterns behave as AWS documents EventBridge event patterns.
@Suite struct ContentPatternTests {
    static let event: JSONValue = try! JSONParser.parse(#"""
        {
          "eventName": "OrderPlaced", "aggregateId": "order-1", "aggregateType": "Order",
          "payload": {
            "total": 1250.5, "currency": "EUR", "customer": { "tier": "Gold", "email": "a@Example.com" },
            "items": [ { "sku": "book-1", "qty": 2 }, { "sku": "lamp-9", "qty": 1 } ],
            "tags": ["new", "promo"], "coupon": null, "source": "10.1.2.3", "source6": "2001:db8::1", "note": ""
          },
          "metadata": { "correlationId": "c-1", "region": "eu-west-1" }
        }
        """#)

    static func compile(_ pattern: String) throws -> ContentPattern {
        let text = """
            {"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["*"], "to": ["t"], "where": \(pattern)}]}
            """
        return try #require(try RoutesFile.parse(Array(text.utf8), file: "p.json").routes[0].condition)
    }

    @Test(arguments: [
        // exact values
        (#"{"payload": {"currency": ["EUR"]}}"#, true),
        (#"{"payload": {"currency": ["USD", "EUR"]}}"#, true),
        (#"{"payload": {"currency": ["eur"]}}"#, false),
        (#"{"payload": {"total": [1250.5]}}"#, true),
        (#"{"payload": {"total": [1250.50]}}"#, true),
        (#"{"payload": {"total": ["1250.5"]}}"#, false),
        (#"{"payload": {"coupon": [null]}}"#, true),
        (#"{"payload": {"note": [""]}}"#, true),
        (#"{"aggregateType": ["Order"], "eventName": ["OrderPlaced"]}"#, true),
        // nested objects and arrays in the event: any element may match
        (#"{"payload": {"customer": {"tier": ["Gold"]}}}"#, true),
        (#"{"payload": {"items": {"sku": ["lamp-9"]}}}"#, true),
        (#"{"payload": {"items": {"sku": ["desk-1"]}}}"#, false),
        (#"{"payload": {"tags": ["promo"]}}"#, true),
        // prefix, suffix, equals-ignore-case, wildcard
        (#"{"payload": {"customer": {"tier": [{"prefix": "Go"}]}}}"#, true),
        (#"{"payload": {"customer": {"tier": [{"prefix": "go"}]}}}"#, false),
        (#"{"payload": {"customer": {"tier": [{"prefix": {"equals-ignore-case": "gO"}}]}}}"#, true),
        (#"{"payload": {"customer": {"email": [{"suffix": "@example.com"}]}}}"#, false),
        (#"{"payload": {"customer": {"email": [{"suffix": {"equals-ignore-case": "@EXAMPLE.com"}}]}}}"#, true),
        (#"{"payload": {"currency": [{"equals-ignore-case": "eur"}]}}"#, true),
        (#"{"metadata": {"region": [{"wildcard": "eu-*-1"}]}}"#, true),
        (#"{"metadata": {"region": [{"wildcard": "us-*"}]}}"#, false),
        // anything-but
        (#"{"payload": {"currency": [{"anything-but": "USD"}]}}"#, true),
        (#"{"payload": {"currency": [{"anything-but": ["USD", "EUR"]}]}}"#, false),
        (#"{"payload": {"total": [{"anything-but": [1250.5]}]}}"#, false),
        (#"{"payload": {"currency": [{"anything-but": {"prefix": "EU"}}]}}"#, false),
        (#"{"payload": {"currency": [{"anything-but": {"suffix": "SD"}}]}}"#, true),
        (#"{"payload": {"currency": [{"anything-but": {"equals-ignore-case": ["eur"]}}]}}"#, false),
        (#"{"payload": {"currency": [{"anything-but": {"wildcard": "E*"}}]}}"#, false),
        (#"{"payload": {"missing": [{"anything-but": "x"}]}}"#, false),
        // numeric
        (#"{"payload": {"total": [{"numeric": [">", 1000]}]}}"#, true),
        (#"{"payload": {"total": [{"numeric": [">", 1000, "<=", 1250.5]}]}}"#, true),
        (#"{"payload": {"total": [{"numeric": [">=", 0, "<", 100]}]}}"#, false),
        (#"{"payload": {"total": [{"numeric": ["=", 1250.5]}]}}"#, true),
        (#"{"payload": {"currency": [{"numeric": [">", 0]}]}}"#, false),
        (#"{"payload": {"items": {"qty": [{"numeric": [">", 1]}]}}}"#, true),
        // exists
        (#"{"payload": {"coupon": [{"exists": true}]}}"#, true),
        (#"{"payload": {"missing": [{"exists": false}]}}"#, true),
        (#"{"payload": {"missing": [{"exists": true}]}}"#, false),
        (#"{"payload": {"currency": [{"exists": false}]}}"#, false),
        // cidr
        (#"{"payload": {"source": [{"cidr": "10.1.0.0/16"}]}}"#, true),
        (#"{"payload": {"source": [{"cidr": "10.2.0.0/16"}]}}"#, false),
        (#"{"payload": {"source6": [{"cidr": "2001:db8::/32"}]}}"#, true),
        // $or
        (#"{"$or": [{"payload": {"currency": ["USD"]}}, {"payload": {"total": [{"numeric": [">", 1000]}]}}]}"#, true),
        (#"{"$or": [{"payload": {"currency": ["USD"]}}, {"metadata": {"region": ["us-east-1"]}}]}"#, false),
        (#"{"payload": {"$or": [{"currency": ["USD"]}, {"customer": {"tier": ["Gold"]}}]}}"#, true),
        // all fields must match
        (#"{"payload": {"currency": ["EUR"], "total": [{"numeric": ["<", 10]}]}}"#, false),
    ])
    func matchesAsEventBridgeDoes(pattern: String, matches: Bool) throws {
        let compiled = try Self.compile(pattern)
        #expect(compiled.matches(Self.event) == matches, "\(pattern)")
        #expect((compiled.firstFailure(Self.event) == nil) == matches)
    }

    @Test func saysWhichConditionFailed() throws {
        let compiled = try Self.compile(#"{"payload": {"currency": ["EUR"], "total": [{"numeric": ["<", 10]}]}}"#)
        #expect(compiled.firstFailure(Self.event) == "payload.total is 1250.5, not {numeric: < 10.0}")
        let absent = try Self.compile(#"{"payload": {"missing": ["x"]}}"#)
        #expect(absent.firstFailure(Self.event) == "payload.missing is absent, not \"x\"")
    }

    @Test(arguments: [
        (#"{"payload": {"total": [{"numeric": [">", 5, ">", 6]}]}}"#, "one lower bound"),
        (#"{"payload": {"total": [{"numeric": [">", 5, "<", 5]}]}}"#, "the range is empty"),
        (#"{"payload": {"total": [{"numeric": ["~", 5]}]}}"#, "expected one of <, <=, =, >=, >"),
        (#"{"payload": {"total": [{"prefix": 5}]}}"#, "\"prefix\" takes a string"),
        (#"{"payload": {"total": [{"wildcard": "a**b"}]}}"#, "consecutive wildcards"),
        (#"{"payload": {"total": [{"wildcard": "*a*b*c*d*e*"}]}}"#, "at most 5 are allowed"),
        (#"{"payload": {"total": [{"cidr": "10.0.0.0/33"}]}}"#, "is not a CIDR block"),
        (#"{"payload": {"total": [{"exists": "yes"}]}}"#, "\"exists\" takes true or false"),
        (#"{"payload": {"total": [{"regex": "x"}]}}"#, "unknown matcher \"regex\""),
        (#"{"payload": {"total": []}}"#, "an empty array matches nothing"),
        (#"{"$or": [{"payload": {"a": ["x"]}}]}"#, "$or takes an array of at least two"),
        (#"{"payload": {"total": [{"anything-but": {"numeric": [">", 1]}}]}}"#, "does not take \"numeric\""),
        (#"["x"]"#, "expected an object of fields"),
        (#"{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": {"k": ["x"]}}}}}}}}}}}"#, "nests deeper than 10 levels"),
    ])
    func refusesBadPatternsWithTheReason(pattern: String, reason: String) {
        let text = """
            {"version": 1, "topics": {"t": {}}, "routes": [{"name": "r", "events": ["*"], "to": ["t"], "where": \(pattern)}]}
            """
        do {
            _ = try RoutesFile.parse(Array(text.utf8), file: "p.json")
            Issue.record("expected \(pattern) to be refused")
        } catch {
            #expect(error.description.contains(reason), "\(error.description)")
            #expect(error.description.contains("$.routes[0].where"))
        }
    }

    @Test func routesWithAPatternOnlyTakeTheEventsItSelects() throws {
        let file = try RoutesFile.parse(Array(#"""
            {"version": 1, "topics": {"orders": {}, "fraud": {}},
             "routes": [
               {"name": "orders", "events": ["Order*"], "to": ["orders"]},
               {"name": "big", "events": ["OrderPlaced"], "where": {"payload": {"total": [{"numeric": [">", 1000]}]}}, "to": ["fraud"]}
             ]}
            """#.utf8), file: "r.json")
        let routes = CompiledRoutes(file)
        let big = GenericDomainEventMessage(eventName: "OrderPlaced", aggregateID: "o", aggregateType: "Order", sequenceNumber: 1, payload: ["total": 5000])
        let small = GenericDomainEventMessage(eventName: "OrderPlaced", aggregateID: "o", aggregateType: "Order", sequenceNumber: 1, payload: ["total": 5])
        #expect(routes.targets(for: big).map(\.topic) == ["orders", "fraud"])
        #expect(routes.targets(for: small).map(\.topic) == ["orders"])
        let verdicts = routes.explain(small)
        #expect(verdicts.map(\.matched) == [true, false])
        #expect(verdicts[1].reason == "where: payload.total is 5, not {numeric: > 1000.0}")
        let other = GenericDomainEventMessage(eventName: "PaymentReceived", aggregateID: "p", aggregateType: "P", sequenceNumber: 1, payload: [:])
        #expect(routes.explain(other)[0].reason == "event name \"PaymentReceived\" matches none of Order*")
    }
}
