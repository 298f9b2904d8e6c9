import CQRSCore

// The example domain of `scripts/demo`: orders and their payments.

// MARK: Commands

public struct PlaceOrder: CommandPayload, Hashable {
    public static let commandName = "PlaceOrder"
    public var orderId: String
    public var customerId: String
    public var total: Double
    public var items: [String]

    public init(orderId: String, customerId: String, total: Double, items: [String]) {
        self.orderId = orderId
        self.customerId = customerId
        self.total = total
        self.items = items
    }
}

public struct ShipOrder: CommandPayload, Hashable {
    public static let commandName = "ShipOrder"
    public var orderId: String
    public var carrier: String

    public init(orderId: String, carrier: String) {
        self.orderId = orderId
        self.carrier = carrier
    }
}

public struct CancelOrder: CommandPayload, Hashable {
    public static let commandName = "CancelOrder"
    public var orderId: String
    public var reason: String

    public init(orderId: String, reason: String) {
        self.orderId = orderId
        self.reason = reason
    }
}

// MARK: Events

public struct OrderPlaced: EventPayload, Hashable {
    public static let eventName = "OrderPlaced"
    public var customerId: String
    public var total: Double
    public var items: [String]

    public init(customerId: String, total: Double, items: [String]) {
        self.customerId = customerId
        self.total = total
        self.items = items
    }
}

public struct OrderShipped: EventPayload, Hashable {
    public static let eventName = "OrderShipped"
    public var carrier: String

    public init(carrier: String) {
        self.carrier = carrier
    }
}

public struct OrderCancelled: EventPayload, Hashable {
    public static let eventName = "OrderCancelled"
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }
}

// MARK: Aggregate

public struct Order: Aggregate {
    public static let aggregateType = "Order"

    public enum Status: String, Sendable { case new, placed, shipped, cancelled }

    public let id: String
    public private(set) var status = Status.new
    public private(set) var total = 0.0

    public init(id: String) {
        self.id = id
    }

    public mutating func apply(_ event: GenericDomainEventMessage) throws {
        switch event.eventName {
        case OrderPlaced.eventName:
            status = .placed
            total = try event.payload(as: OrderPlaced.self).total
        case OrderShipped.eventName: status = .shipped
        case OrderCancelled.eventName: status = .cancelled
        default: break
        }
    }
}

/// A command the aggregate's state does not allow (shipping a cancelled order, …).
public struct DomainRuleError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

// MARK: Controllers

public struct PlaceOrderController: TypedCommandController {
    public let orders: Repository<Order>

    public init(orders: Repository<Order>) {
        self.orders = orders
    }

    static let rules = Validation<PlaceOrder> {
        ValidationRule.required(\.orderId, "orderId")
        ValidationRule.required(\.customerId, "customerId")
        ValidationRule.length(\.customerId, "customerId", 0...64)
        ValidationRule.range(\.total, "total", 0.01...1_000_000)
        ValidationRule.count(\.items, "items", 1...100)
        ValidationRule.each(\.items, "items") {
            ValidationRule.custom("") { $0.isEmpty ? "must not be empty" : nil }
        }
    }

    public func validate(_ command: PlaceOrder) -> [Violation] {
        Self.rules.violations(of: command)
    }

    public func execute(_ command: PlaceOrder, message: GenericCommandMessage) async throws -> [GenericDomainEventMessage] {
        var order = try await orders.load(command.orderId)
        guard order.state.status == .new else { throw DomainRuleError(description: "order \(command.orderId) was already placed") }
        try order.record(OrderPlaced(customerId: command.customerId, total: command.total, items: command.items), causedBy: message)
        return try await orders.save(&order)
    }
}

public struct ShipOrderController: TypedCommandController {
    public let orders: Repository<Order>

    public init(orders: Repository<Order>) {
        self.orders = orders
    }

    public func validate(_ command: ShipOrder) -> [Violation] {
        command.carrier.isEmpty ? [Violation("carrier", "is required")] : []
    }

    public func execute(_ command: ShipOrder, message: GenericCommandMessage) async throws -> [GenericDomainEventMessage] {
        var order = try await orders.load(command.orderId)
        guard order.state.status == .placed else {
            throw DomainRuleError(description: "order \(command.orderId) cannot be shipped: it is \(order.state.status.rawValue)")
        }
        try order.record(OrderShipped(carrier: command.carrier), causedBy: message)
        return try await orders.save(&order)
    }
}

public struct CancelOrderController: TypedCommandController {
    public let orders: Repository<Order>

    public init(orders: Repository<Order>) {
        self.orders = orders
    }

    public func execute(_ command: CancelOrder, message: GenericCommandMessage) async throws -> [GenericDomainEventMessage] {
        var order = try await orders.load(command.orderId)
        guard order.state.status == .placed else {
            throw DomainRuleError(description: "order \(command.orderId) cannot be cancelled: it is \(order.state.status.rawValue)")
        }
        try order.record(OrderCancelled(reason: command.reason), causedBy: message)
        return try await orders.save(&order)
    }
}
