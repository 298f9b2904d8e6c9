import Foundation
import JSON

/// Metadata carried by every message: correlation, causation and tracing.
///
/// Stored as the `metadata` map of the events table item and as the
/// `metadata` object of the Kafka record value. Keys other than the three
/// well-known ones are kept as they are.
public struct MessageMetadata: Sendable, Hashable {
    public var values: JSONObject

    public init(_ values: JSONObject = JSONObject()) {
        self.values = values
    }

    public init(correlationID: String? = nil, causationID: String? = nil, traceparent: String? = nil) {
        var values = JSONObject()
        if let correlationID { values["correlationId"] = .string(correlationID) }
        if let causationID { values["causationId"] = .string(causationID) }
        if let traceparent { values["traceparent"] = .string(traceparent) }
        self.values = values
    }

    public var correlationID: String? {
        get { values["correlationId"]?.stringValue }
        set { values["correlationId"] = newValue.map(JSONValue.string) }
    }

    public var causationID: String? {
        get { values["causationId"]?.stringValue }
        set { values["causationId"] = newValue.map(JSONValue.string) }
    }

    /// W3C trace context of the request that caused the message.
    public var traceparent: String? {
        get { values["traceparent"]?.stringValue }
        set { values["traceparent"] = newValue.map(JSONValue.string) }
    }
}

/// A command: a request to change one aggregate, addressed by name.
public struct GenericCommandMessage: Sendable, Hashable {
    public var messageID: String
    public var commandName: String
    public var payload: JSONValue
    public var metadata: MessageMetadata
    public var timestamp: Date

    public init(
        commandName: String,
        payload: JSONValue,
        metadata: MessageMetadata = MessageMetadata(),
        messageID: String = UUID().uuidString.lowercased(),
        timestamp: Date = Date()
    ) {
        self.messageID = messageID
        self.commandName = commandName
        self.payload = payload
        self.metadata = metadata
        self.timestamp = timestamp
        if self.metadata.correlationID == nil { self.metadata.correlationID = messageID }
    }

    /// A command whose payload is a `Command` value; its name is `Command.commandName`.
    public init<Command: CommandPayload>(_ command: Command, metadata: MessageMetadata = MessageMetadata()) throws {
        self.init(commandName: Command.commandName, payload: try JSONValue(encoding: command), metadata: metadata)
    }

    /// The payload decoded as `T`.
    public func payload<T: Decodable>(as type: T.Type) throws -> T {
        try payload.decode(as: T.self)
    }
}

/// A domain event: something that happened to an aggregate, at a position in its history.
public struct GenericDomainEventMessage: Sendable, Hashable {
    public var messageID: String
    public var eventName: String
    public var aggregateID: String
    public var aggregateType: String
    /// Position of the event in its aggregate's history, from 1.
    public var sequenceNumber: Int64
    public var timestamp: Date
    public var payload: JSONValue
    public var metadata: MessageMetadata

    public init(
        eventName: String,
        aggregateID: String,
        aggregateType: String,
        sequenceNumber: Int64,
        payload: JSONValue,
        metadata: MessageMetadata = MessageMetadata(),
        messageID: String = UUID().uuidString.lowercased(),
        timestamp: Date = Date()
    ) {
        self.messageID = messageID
        self.eventName = eventName
        self.aggregateID = aggregateID
        self.aggregateType = aggregateType
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.payload = payload
        self.metadata = metadata
    }

    /// The payload decoded as `T`.
    public func payload<T: Decodable>(as type: T.Type) throws -> T {
        try payload.decode(as: T.self)
    }
}

/// A command payload type: Codable, with the name commands of this type carry.
public protocol CommandPayload: Codable, Sendable {
    static var commandName: String { get }
}

/// An event payload type: Codable, with the name events of this type carry.
public protocol EventPayload: Codable, Sendable {
    static var eventName: String { get }
}
