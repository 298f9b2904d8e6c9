/// One broken rule of a command's payload, at a field path (`items[2].quantity`).
public struct Violation: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// A command's payload broke one or more rules; all of them are listed.
public struct ValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var commandName: String
    public var violations: [Violation]

    public init(commandName: String, violations: [Violation]) {
        self.commandName = commandName
        self.violations = violations
    }

    public var description: String {
        "\(commandName) is invalid: " + violations.map(\.description).joined(separator: "; ")
    }
}

/// No registered controller can handle the command.
public struct NoControllerError: Error, Sendable, CustomStringConvertible {
    public var commandName: String
    public var knownCommands: [String]
    public var description: String {
        "no controller handles command \"\(commandName)\"" + (knownCommands.isEmpty ? "" : " (controllers handle: \(knownCommands.joined(separator: ", ")))")
    }
}

/// Handles commands: validates, then runs `preExecute`, `execute` and `postExecute`.
public protocol CommandController: Sendable {
    /// The command names this controller handles (for `canHandle` and error messages).
    var commandNames: [String] { get }
    func canHandle(_ command: GenericCommandMessage) -> Bool
    /// Every rule the payload breaks; empty when it is valid.
    func validate(_ command: GenericCommandMessage) -> [Violation]
    func preExecute(_ command: GenericCommandMessage) async throws
    /// Does the work and returns the events that were stored.
    func execute(_ command: GenericCommandMessage) async throws -> [GenericDomainEventMessage]
    func postExecute(_ command: GenericCommandMessage, events: [GenericDomainEventMessage]) async throws
}

extension CommandController {
    public func canHandle(_ command: GenericCommandMessage) -> Bool { commandNames.contains(command.commandName) }
    public func validate(_ command: GenericCommandMessage) -> [Violation] { [] }
    public func preExecute(_ command: GenericCommandMessage) async throws {}
    public func postExecute(_ command: GenericCommandMessage, events: [GenericDomainEventMessage]) async throws {}
}

/// The front controller: routes each command to the first controller that can handle it.
public struct Dispatcher: Sendable {
    public let controllers: [any CommandController]

    public init(controllers: [any CommandController]) {
        self.controllers = controllers
    }

    /// Runs the command through its controller and returns the events it stored.
    /// Throws `NoControllerError`, `ValidationError`, or what the controller throws.
    @discardableResult
    public func dispatch(_ command: GenericCommandMessage) async throws -> [GenericDomainEventMessage] {
        guard let controller = controllers.first(where: { $0.canHandle(command) }) else {
            throw NoControllerError(commandName: command.commandName, knownCommands: controllers.flatMap(\.commandNames))
        }
        let violations = controller.validate(command)
        if !violations.isEmpty { throw ValidationError(commandName: command.commandName, violations: violations) }
        try await controller.preExecute(command)
        let events = try await controller.execute(command)
        try await controller.postExecute(command, events: events)
        return events
    }
}

/// A controller for one typed command: decodes the payload, validates it, and executes it.
public protocol TypedCommandController: CommandController {
    associatedtype Command: CommandPayload
    /// Every rule the command breaks; empty when valid.
    func validate(_ command: Command) -> [Violation]
    func execute(_ command: Command, message: GenericCommandMessage) async throws -> [GenericDomainEventMessage]
}

extension TypedCommandController {
    public var commandNames: [String] { [Command.commandName] }

    public func validate(_ command: Command) -> [Violation] { [] }

    public func validate(_ message: GenericCommandMessage) -> [Violation] {
        do {
            return validate(try message.payload(as: Command.self))
        } catch {
            return [Violation("payload", "does not decode as \(Command.self): \(DecodingErrorDescription(error))")]
        }
    }

    public func execute(_ message: GenericCommandMessage) async throws -> [GenericDomainEventMessage] {
        try await execute(try message.payload(as: Command.self), message: message)
    }
}

/// A one-line account of a `DecodingError`, naming the field path.
struct DecodingErrorDescription: CustomStringConvertible {
    let error: any Error
    init(_ error: any Error) { self.error = error }

    var description: String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? "payload" : "payload" + path
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context)).\(key.stringValue) is missing"
        case .typeMismatch(let type, let context):
            return "\(path(context)) is not \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context)) is null, expected \(type)"
        case .dataCorrupted(let context):
            return "\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
