import CQRSCore
import Foundation
import JSON

/// The events of the pipeline benchmark: four names over 10,000 aggregates, ~1 KB each,
/// routed by `routesJSON` with a fan-out of exactly 1.5 Kafka records per event.
enum PipelineEvents {
    static let names = ["OrderPlaced", "OrderShipped", "PaymentReceived", "CustomerRegistered"]
    static let aggregates = 10_000

    /// Four routes: OrderPlaced → 2 topics, OrderShipped → 1, PaymentReceived → 2, CustomerRegistered → 1.
    static let routesJSON = #"""
        {
          "version": 1,
          "defaults": { "partitions": 6, "replicationFactor": 1 },
          "topics": { "orders.events": {}, "billing.events": {}, "payments.events": {}, "customers.events": {} },
          "routes": [
            { "name": "orders",    "events": ["Order*"],                         "to": ["orders.events"] },
            { "name": "billing",   "events": ["OrderPlaced", "PaymentReceived"], "to": ["billing.events"] },
            { "name": "payments",  "events": ["Payment*"],                       "to": ["payments.events"] },
            { "name": "customers", "events": ["Customer*"],                      "to": ["customers.events"] }
          ]
        }
        """#
    static let topics = ["orders.events", "billing.events", "payments.events", "customers.events"]

    /// `routesJSON` with `suffix` added to every topic's name (a run's own topics, so that it never reads
    /// records an earlier run left on the same broker).
    static func routesJSON(topicSuffix suffix: String) -> String {
        topics.reduce(routesJSON) { text, topic in text.replacingOccurrences(of: "\"\(topic)\"", with: "\"\(topic)\(suffix)\"") }
    }
    static let fanOut = 1.5

    struct Event {
        var name: String
        var type: String
        var aggregateID: String
        var sequence: Int
        var messageID: String
    }

    static func event(_ index: Int) -> Event {
        let name = names[index % names.count]
        return Event(
            name: name,
            type: name.hasPrefix("Order") ? "Order" : name.hasPrefix("Payment") ? "Payment" : "Customer",
            aggregateID: "agg-\(index % aggregates)",
            sequence: index / aggregates + 1,
            messageID: "00000000-0000-4000-8000-\(String(format: "%012d", index))"
        )
    }

    /// Kafka records event `index` becomes (topics).
    static func targets(_ index: Int) -> [String] {
        switch names[index % names.count] {
        case "OrderPlaced": ["orders.events", "billing.events"]
        case "OrderShipped": ["orders.events"]
        case "PaymentReceived": ["billing.events", "payments.events"]
        default: ["customers.events"]
        }
    }

    /// A payload of about 1 KB.
    static func payload(_ index: Int) -> JSONValue {
        [
            "total": .number(Double(index % 2000)), "currency": index % 3 == 0 ? "USD" : "EUR",
            "customer": ["id": .string("customer-\(index)"), "tier": index % 5 == 0 ? "Gold" : "Silver", "email": "someone@example.com"],
            "items": .array((0..<6).map { ["sku": .string("sku-\($0)-\(index)"), "qty": .number($0 + 1), "price": 19.99, "title": "A product with a long enough title"] }),
            "note": .string(String(repeating: "x", count: 200)), "source": "10.1.2.3",
        ]
    }

    /// The Kafka record value Fanout writes for event `index` (GenericDomainEventMessage as plain JSON).
    static func plainJSON(_ index: Int) -> String {
        let event = event(index)
        let message = GenericDomainEventMessage(
            eventName: event.name, aggregateID: event.aggregateID, aggregateType: event.type, sequenceNumber: Int64(event.sequence),
            payload: payload(index % 64), metadata: MessageMetadata(correlationID: "c-\(index)"), messageID: event.messageID,
            timestamp: Date(timeIntervalSince1970: 1_795_780_800)
        )
        return String(decoding: message.jsonBytes(), as: UTF8.self)
    }
}
