import CQRSCore
import Foundation
import JSON
import Logging
import Synchronization

/// Logs as JSON lines on standard error (`--log-format json`): one object a line with `timestamp`,
/// `level`, `label`, `message`, `source`, and the metadata as string members.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    public init(label: String, level: Logger.Level, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.logLevel = level
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let lock = Mutex(())

    /// Writes a line to standard error, whole.
    public static let standardError: @Sendable (String) -> Void = { line in
        lock.withLock { _ in _ = StandardStreams.writeError(line + "\n") }
    }

    public func log(event: LogEvent) {
        var object = JSONObject()
        object["timestamp"] = .string(GenericDomainEventMessage.formatTimestamp(Date()))
        object["level"] = .string(event.level.rawValue)
        object["label"] = .string(label)
        object["message"] = .string(event.message.description)
        object["source"] = .string(event.source)
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        for key in merged.keys.sorted() where object[key] == nil {
            object[key] = .string("\(merged[key]!)")
        }
        write(JSONWriter.string(.object(object)))
    }
}
