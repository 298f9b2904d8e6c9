import CRdKafka
import Contracts
import Foundation
import Logging
import Synchronization

/// The librdkafka runtime this process links against.
public enum Librdkafka {
    /// `rd_kafka_version_str()`, e.g. `2.0.2`. Fanout needs at least 2.0.2
    /// (2.2 or later for brokers that send tagged fields in ApiVersions v3).
    public static var version: String {
        String(cString: rd_kafka_version_str())
    }
}

/// Builds `rd_kafka_conf_t` objects and client handles; the only place a conf is created.
enum RDKafkaConfig {
    /// A new `rd_kafka_conf_t` holding `properties`; throws a ``KafkaError`` naming the
    /// first property librdkafka rejects. The caller owns the returned conf.
    static func make(_ properties: [String: String]) throws -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError.config("rd_kafka_conf_new failed")
        }
        // Sorted, so the property an error names does not depend on dictionary order.
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            var errstr = [CChar](repeating: 0, count: 512)
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                let text = decode(errstr)
                if result == RD_KAFKA_CONF_UNKNOWN {
                    throw KafkaError.config("unknown configuration property '\(key)': \(text)")
                }
                throw KafkaError.config("invalid value '\(value)' for configuration property '\(key)': \(text)")
            }
        }
        return conf
    }

    /// A new client handle. Takes ownership of `conf` (destroying it when `rd_kafka_new` fails).
    static func makeHandle(type: rd_kafka_type_t, conf: OpaquePointer) throws -> OpaquePointer {
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError.config("could not create the client: \(decode(errstr))")
        }
        return rk
    }

    /// A NUL-terminated C buffer as a String.
    static func decode(_ buffer: [CChar]) -> String {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Owns an `rd_kafka_t`: callers borrow it through ``withHandle(_:)``; ``destroy(_:)``
/// waits for every borrower before calling `rd_kafka_destroy`.
final class RDKafkaHandle: @unchecked Sendable {
    // `pointer` is immutable; its use is guarded by `state`.
    let pointer: OpaquePointer
    private let state = Mutex<(isClosed: Bool, borrowers: Int)>((false, 0))

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
        KafkaClients.opened()
    }

    var isClosed: Bool {
        state.withLock { $0.isClosed }
    }

    /// Runs `body` with the handle, or throws `_DESTROY` when the handle is closed.
    func withHandle<T>(what: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        let open = state.withLock { state -> Bool in
            guard !state.isClosed else { return false }
            state.borrowers += 1
            return true
        }
        guard open else { throw KafkaError.destroyed(what) }
        defer { state.withLock { $0.borrowers -= 1 } }
        return try body(pointer)
    }

    /// Marks the handle closed, waits for borrowers to finish, runs `beforeDestroy`
    /// and destroys the handle. Blocking: call it only from a thread this module owns.
    func destroy(_ beforeDestroy: (OpaquePointer) -> Void = { _ in }) {
        state.withLock { $0.isClosed = true }
        while state.withLock({ $0.borrowers }) > 0 {
            usleep(1_000)
        }
        beforeDestroy(pointer)
        rd_kafka_destroy(pointer)
        KafkaClients.destroyed()
    }
}

/// The librdkafka clients this process has open (producers, consumers, admin clients, mock clusters).
///
/// A client is destroyed on its own poll thread after `close()`/`shutdown()` or its owner's deinit; a
/// process that exits while one is still being destroyed can crash inside librdkafka or OpenSSL (their
/// threads outlive the atexit handlers). An executable waits here before it exits.
public enum KafkaClients {
    private static let open = Mutex(0)

    /// How many clients are open now.
    public static var openCount: Int { open.withLock { $0 } }

    static func opened() { open.withLock { $0 += 1 } }
    static func destroyed() { open.withLock { $0 -= 1 } }

    /// Waits until every client is destroyed, or `timeout` passed; returns whether none is left.
    @discardableResult
    public static func waitUntilAllDestroyed(timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while openCount > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }
}

enum RDKafkaLog {
    /// Forwards one `RD_KAFKA_EVENT_LOG` event to `logger`.
    static func forward(_ event: OpaquePointer, to logger: Logger) {
        var facility: UnsafePointer<CChar>?
        var text: UnsafePointer<CChar>?
        var level: Int32 = 0
        guard rd_kafka_event_log(event, &facility, &text, &level) == 0 else { return }
        let message = text.map { String(cString: $0) } ?? ""
        let fac = facility.map { String(cString: $0) } ?? ""
        logger.log(
            level: loggerLevel(syslog: level),
            "\(message)",
            metadata: [LogKey.facility: "\(fac)"],
            source: "librdkafka"
        )
    }

    /// Forwards one `RD_KAFKA_EVENT_ERROR` event (a client-level error) to `logger`.
    static func forwardError(_ event: OpaquePointer, to logger: Logger) {
        let err = rd_kafka_event_error(event)
        let text = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? ""
        let isFatal = rd_kafka_event_error_is_fatal(event) != 0
        logger.log(
            level: isFatal ? .error : .warning,
            "librdkafka error: \(text)",
            metadata: [LogKey.kafkaError: "\(KafkaError.Code(err).name)"],
            source: "librdkafka"
        )
    }

    static func loggerLevel(syslog level: Int32) -> Logger.Level {
        switch level {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    }
}

/// Runs a blocking librdkafka call on a new thread of its own, never on Swift's cooperative pool.
func runOffPool<T: Sendable>(
    _ name: String,
    _ body: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.name = name
        thread.start()
    }
}

/// Starts a dedicated thread running `body` (a poll loop).
func startThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.name = name
    thread.start()
}

/// Milliseconds for librdkafka from a Duration, clamped to Int32.
func milliseconds(_ duration: Duration) -> Int32 {
    let (seconds, attoseconds) = duration.components
    let ms = seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    return Int32(clamping: max(0, ms))
}
