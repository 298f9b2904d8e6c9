#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads and writes the process's standard streams with POSIX calls, retrying a call a signal interrupted
/// (`EINTR`). Foundation's non-throwing `FileHandle.write(_:)`, `readDataToEndOfFile()` and `availableData` stop
/// the process (`try!`) when a call fails or is interrupted, for example while a signal is being handled.
public enum StandardStreams {
    /// Writes all of `text` to standard error; false when the stream is gone (a closed pipe, say), which a
    /// log line cannot report anywhere else.
    @discardableResult
    public static func writeError(_ text: String) -> Bool { write(text, to: STDERR_FILENO) }

    /// Writes all of `text` to standard output; false when the stream is gone.
    @discardableResult
    public static func writeOutput(_ text: String) -> Bool { write(text, to: STDOUT_FILENO) }

    /// Writes every byte of `text` to `descriptor`, retrying after `EINTR` and after short writes.
    public static func write(_ text: String, to descriptor: Int32) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written >= 0 {
                    offset += written
                } else if errno != EINTR {
                    return false
                }
            }
            return true
        }
    }

    /// An error reading a standard stream.
    public struct ReadError: Error, CustomStringConvertible {
        public var errno: Int32
        public var description: String { "cannot read standard input: \(String(cString: strerror(errno)))" }
    }

    /// Every byte of standard input up to its end, retrying after `EINTR`.
    public static func readInput() throws -> [UInt8] {
        try readAll(from: STDIN_FILENO)
    }

    /// Every byte `descriptor` gives up to its end, retrying after `EINTR`.
    public static func readAll(from descriptor: Int32) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                result += buffer[..<count]
            } else if count == 0 {
                return result
            } else if errno != EINTR {
                throw ReadError(errno: errno)
            }
        }
    }
}
