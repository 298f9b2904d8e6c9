import CQRSCore

public struct ReceivePayment: CommandPayload, Hashable {
    public static let commandName = "ReceivePayment"
    public var paymentId: String
    public var orderId: String
    public var amount: Double

    public init(paymentId: String, orderId: String, amount: Double) {
        self.paymentId = paymentId
        self.orderId = orderId
        self.amount = amount
    }
}

public struct RefundPayment: CommandPayload, Hashable {
    public static let commandName = "RefundPayment"
    public var paymentId: String

    public init(paymentId: String) {
        self.paymentId = paymentId
    }
}

public struct PaymentReceived: EventPayload, Hashable {
    public static let eventName = "PaymentReceived"
    public var orderId: String
    public var amount: Double

    public init(orderId: String, amount: Double) {
        self.orderId = orderId
        self.amount = amount
    }
}

public struct PaymentRefunded: EventPayload, Hashable {
    public static let eventName = "PaymentRefunded"
    public var amount: Double

    public init(amount: Double) {
        self.amount = amount
    }
}

public struct Payment: Aggregate {
    public static let aggregateType = "Payment"
    public let id: String
    public private(set) var amount: Double?
    public private(set) var isRefunded = false

    public init(id: String) {
        self.id = id
    }

    public mutating func apply(_ event: GenericDomainEventMessage) throws {
        switch event.eventName {
        case PaymentReceived.eventName: amount = try event.payload(as: PaymentReceived.self).amount
        case PaymentRefunded.eventName: isRefunded = true
        default: break
        }
    }
}

public struct ReceivePaymentController: TypedCommandController {
    public let payments: Repository<Payment>

    public init(payments: Repository<Payment>) {
        self.payments = payments
    }

    public func validate(_ command: ReceivePayment) -> [Violation] {
        var violations: [Violation] = []
        if command.paymentId.isEmpty { violations.append(Violation("paymentId", "is required")) }
        if command.orderId.isEmpty { violations.append(Violation("orderId", "is required")) }
        if !(command.amount > 0) { violations.append(Violation("amount", "must be greater than 0, was \(command.amount)")) }
        return violations
    }

    public func execute(_ command: ReceivePayment, message: GenericCommandMessage) async throws -> [GenericDomainEventMessage] {
        var payment = try await payments.load(command.paymentId)
        guard payment.isNew else { throw DomainRuleError(description: "payment \(command.paymentId) was already received") }
        try payment.record(PaymentReceived(orderId: command.orderId, amount: command.amount), causedBy: message)
        return try await payments.save(&payment)
    }
}

public struct RefundPaymentController: TypedCommandController {
    public let payments: Repository<Payment>

    public init(payments: Repository<Payment>) {
        self.payments = payments
    }

    public func execute(_ command: RefundPayment, message: GenericCommandMessage) async throws -> [GenericDomainEventMessage] {
        var payment = try await payments.load(command.paymentId)
        guard let amount = payment.state.amount, !payment.state.isRefunded else {
            throw DomainRuleError(description: "payment \(command.paymentId) cannot be refunded")
        }
        try payment.record(PaymentRefunded(amount: amount), causedBy: message)
        return try await payments.save(&payment)
    }
}

/// The demo's dispatcher: every controller of the example domain over one event store.
public func makeExampleDispatcher(store: any EventStore) -> Dispatcher {
    let orders = Repository<Order>(store: store)
    let payments = Repository<Payment>(store: store)
    return Dispatcher(controllers: [
        PlaceOrderController(orders: orders),
        ShipOrderController(orders: orders),
        CancelOrderController(orders: orders),
        ReceivePaymentController(payments: payments),
        RefundPaymentController(payments: payments),
    ])
}
