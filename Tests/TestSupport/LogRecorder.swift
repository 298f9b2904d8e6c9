import Logging
import Synchronization

/// Log lines kept in memory, in order, to assert what an operator would see.
public struct LogRecorder: LogHandler {
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: Logger.Metadata
    }

    public final class Store: Sendable {
        let entries = Mutex<[Entry]>([])
        public var all: [Entry] { entries.withLock { $0 } }
        public func count(_ level: Logger.Level, containing text: String) -> Int {
            all.filter { $0.level == level && $0.message.contains(text) }.count
        }
        /// Where the first line with exactly this message is, in the order lines were logged.
        public func index(of message: String) -> Int? { all.firstIndex { $0.message == message } }
    }

    let store: Store
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .debug

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let entry = Entry(level: event.level, message: "\(event.message)", metadata: merged)
        store.entries.withLock { $0.append(entry) }
    }

    /// A logger whose lines (from `level` up) are kept in the returned store.
    public static func makeLogger(label: String = "test", level: Logger.Level = .debug) -> (Logger, Store) {
        let store = Store()
        return (Logger(label: label) { _ in
            var handler = LogRecorder(store: store)
            handler.logLevel = level
            return handler
        }, store)
    }
}
