import JSON
/// Maps event names to their payload types, so a handler receives typed events.
public struct EventTypeRegistry: Sendable {
    private var decoders: [String: @Sendable (JSONValue) throws -> any EventPayload] = [:]

    public init() {}

    public init(_ types: [any EventPayload.Type]) {
        for type in types { register(type) }
    }

    /// Registers `type` under `type.eventName`; a later registration of the same name replaces it.
    public mutating func register(_ type: any EventPayload.Type) {
        func open<E: EventPayload>(_ type: E.Type) {
            decoders[E.eventName] = { try $0.decode(as: E.self) }
        }
        open(type)
    }

    public var eventNames: [String] { decoders.keys.sorted() }

    /// The message's payload as its registered type; nil when no type is registered for its name.
    /// Throws when the payload does not decode as the registered type.
    public func payload(of message: GenericDomainEventMessage) throws -> (any EventPayload)? {
        guard let decode = decoders[message.eventName] else { return nil }
        return try decode(message.payload)
    }
}
