import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A process a test starts: a server, or the `fanout` binary run as a user runs it.
///
/// Every test starts its children through this type, and it involves neither libdispatch nor
/// Foundation's `Process`:
/// - a captured output is a `pipe2(O_CLOEXEC)` drained by a thread of its own with blocking
///   `read(2)` (retried on `EINTR`), never a `readabilityHandler` or a dispatch source: tearing
///   those down while children come and go corrupts libdispatch's epoll event loop on Linux;
/// - each descriptor has one owner and is closed once: a reader thread closes its read end at end
///   of file, `closeInput()` (or deinit) the write end of standard input, `init` the child's ends
///   right after the spawn;
/// - every descriptor it opens is close-on-exec, and the child closes every descriptor from 3 up
///   before `exec`, so no child keeps another test's pipe open;
/// - a thread of its own waits for the exit without reaping, then reaps under the lock that
///   `signal(_:)` takes: a signal never reaches a recycled process ID;
/// - the child starts with no signal blocked and SIGTERM, SIGINT and SIGHUP at their defaults,
///   whatever thread started it (a test's thread may block or ignore them).
public final class ChildProcess: @unchecked Sendable {
    public enum Input: Sendable {
        /// `/dev/null`.
        case null
        /// A pipe: `writeInput(_:)`, then `closeInput()` (deinit closes it too).
        case pipe
    }

    public enum Output: Sendable, Equatable {
        /// `/dev/null`.
        case null
        /// The test process's own descriptor.
        case inherit
        /// Collected in memory: `standardOutput`, `standardError`, `firstLine(timeout:)`.
        case capture
        /// Appended to a file (created if missing); standard output and standard error may share one.
        case file(URL)
    }

    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        /// The signal that ended it; nil when it exited.
        public var signal: Int32? {
            if case .signalled(let signal) = self { signal } else { nil }
        }

        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signalled(let signal): "signal \(signal)"
            }
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        /// The `errno` of the call that failed, if one did.
        public var errorNumber: Int32?
        public init(_ description: String, errorNumber: Int32? = nil) {
            self.description = description
            self.errorNumber = errorNumber
        }
    }

    public let processIdentifier: pid_t
    /// The command line, for failure messages.
    public let command: String
    /// What the threads share with this object (they never keep it alive: its deinit closes stdin).
    private let shared = Shared()

    /// Starts `executable` (an absolute path) with `arguments`.
    /// - Parameter environment: the child's whole environment; nil for the test process's.
    public init(
        _ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil, currentDirectory: URL? = nil,
        standardInput: Input = .null, standardOutput: Output = .null, standardError: Output = .null
    ) throws {
        let command = ([executable] + arguments).joined(separator: " ")
        self.command = command
        // Descriptors this init opened and has not handed over: closed when it returns or throws.
        var opened: [Int32] = []
        defer { for fd in opened { _ = Glibc.close(fd) } }
        func makePipe() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard GNU.pipe2(&fds, O_CLOEXEC) == 0 else { throw Failure("pipe2: \(Self.errorText())") }
            opened += fds
            return (fds[0], fds[1])
        }
        func openFile(_ url: URL) throws -> Int32 {
            let fd = Self.retryingEINTR { Glibc.open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) }
            guard fd >= 0 else { throw Failure("cannot open \(url.path): \(Self.errorText())") }
            opened.append(fd)
            return fd
        }

        func check(_ result: Int32) throws {
            guard result == 0 else { throw Failure("cannot prepare to start \(command): \(Self.errorText(result))") }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var inputWriteEnd: Int32?
        switch standardInput {
        case .null: try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0))
        case .pipe:
            let pipe = try makePipe()
            inputWriteEnd = pipe.write
            try check(posix_spawn_file_actions_adddup2(&actions, pipe.read, 0))
        }
        var readers: [(stream: Int, fd: Int32)] = []
        var files: [URL: Int32] = [:]
        for (stream, output) in [standardOutput, standardError].enumerated() {
            let target = Int32(stream + 1)
            switch output {
            case .null: try check(posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0))
            case .inherit: break
            case .capture:
                let pipe = try makePipe()
                readers.append((stream, pipe.read))
                try check(posix_spawn_file_actions_adddup2(&actions, pipe.write, target))
            case .file(let url):
                let fd = try files[url] ?? openFile(url)
                files[url] = fd
                try check(posix_spawn_file_actions_adddup2(&actions, fd, target))
            }
        }
        // Whatever else the test process has open (Foundation's pipes are not close-on-exec) stays out.
        try check(GNU.addCloseFrom(&actions, 3))
        if let currentDirectory {
            try check(GNU.addChdir(&actions, currentDirectory.path))
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        try check(posix_spawnattr_setsigmask(&attributes, &noSignals))
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&defaults, number) }
        try check(posix_spawnattr_setsigdefault(&attributes, &defaults))
        try check(posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let environmentLines = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in environmentLines ?? [] { free(pointer) } }
        var pid = pid_t()
        let status = environmentLines.map { posix_spawn(&pid, executable, &actions, &attributes, argv, $0) }
            ?? posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard status == 0 else { throw Failure("cannot start \(command): \(String(cString: strerror(status)))") }
        processIdentifier = pid
        let spawned = pid

        // The child has its copies. This object keeps the write end of its standard input, the
        // reader threads the read ends of its outputs; the deferred close takes the rest.
        let shared = shared
        if let inputWriteEnd {
            shared.inputDescriptor = inputWriteEnd
            opened.removeAll { $0 == inputWriteEnd }
        }
        for reader in readers {
            shared.open[reader.stream] = true
            opened.removeAll { $0 == reader.fd }
            let thread = Thread { shared.drain(reader.fd, stream: reader.stream) }
            thread.name = "fanout.tests.child-output"
            thread.start()
        }
        let waiter = Thread { shared.waitForExit(spawned) }
        waiter.name = "fanout.tests.child-wait"
        waiter.start()
    }

    deinit {
        shared.closeInput()
    }

    static func errorText(_ number: Int32 = errno) -> String { String(cString: strerror(number)) }

    static func retryingEINTR<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    /// The state the threads and the test share, behind one condition (broadcast on every change).
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        var termination: Termination?
        var inputDescriptor: Int32 = -1
        var captured = [Data(), Data()]
        var open = [false, false]

        func locked<T>(_ body: () throws -> T) rethrows -> T {
            condition.lock()
            defer { condition.unlock() }
            return try body()
        }

        /// Reads `fd` to its end into `captured[stream]`, then closes it: this thread is its only owner.
        func drain(_ fd: Int32, stream: Int) {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = ChildProcess.retryingEINTR { buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
                let failure = count < 0 ? ChildProcess.errorText() : nil
                locked {
                    if count > 0 { captured[stream].append(contentsOf: buffer[..<count]) }
                    if let failure { captured[stream].append(contentsOf: Array("\n[ChildProcess: read failed: \(failure)]\n".utf8)) }
                    if count <= 0 { open[stream] = false }
                    condition.broadcast()
                }
                if count <= 0 { break }
            }
            _ = Glibc.close(fd)  // not retried: Linux releases the descriptor even when close reports EINTR
        }

        /// Waits for the exit without reaping (the process ID stays taken, so `signal` cannot reach
        /// another process), then reaps under the lock.
        func waitForExit(_ pid: pid_t) {
            var info = siginfo_t()
            _ = ChildProcess.retryingEINTR { waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) }
            locked {
                var status: Int32 = 0
                let reaped = ChildProcess.retryingEINTR { waitpid(pid, &status, 0) }
                // WIFSIGNALED / WTERMSIG / WEXITSTATUS are C macros: the low 7 bits are the signal (0: it exited).
                if reaped != pid {
                    termination = .exited(-1)
                } else if status & 0x7f != 0 {
                    termination = .signalled(status & 0x7f)
                } else {
                    termination = .exited((status >> 8) & 0xff)
                }
                condition.broadcast()
            }
        }

        func closeInput() {
            locked {
                if inputDescriptor >= 0 {
                    _ = Glibc.close(inputDescriptor)
                    inputDescriptor = -1
                }
            }
        }

        func firstLine() -> String? {
            captured[0].firstIndex(of: 0x0A).map { String(decoding: captured[0][..<$0], as: UTF8.self) }
        }

        /// Blocks until `done` holds (under the lock) or `timeout` passes; returns whether it held.
        func block(timeout: Duration, until done: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(timeout.seconds)
            condition.lock()
            defer { condition.unlock() }
            while !done() {
                if !condition.wait(until: deadline) { return done() }
            }
            return true
        }
    }

    // MARK: State

    public var isRunning: Bool { termination == nil }

    /// How it ended; nil while it runs. `.exited(-1)`: its status could not be read.
    public var termination: Termination? { shared.locked { shared.termination } }

    /// What it wrote to a `.capture` standard output so far (all of it once `outputFinished`).
    public var standardOutput: String { shared.locked { String(decoding: shared.captured[0], as: UTF8.self) } }
    /// What it wrote to a `.capture` standard error so far.
    public var standardError: String { shared.locked { String(decoding: shared.captured[1], as: UTF8.self) } }

    /// Both captured outputs reached their end (the child, and any child of it, closed them).
    public var outputFinished: Bool { shared.locked { !shared.open[0] && !shared.open[1] } }

    // MARK: Signals and input

    /// Sends `signal` unless the process has been reaped (its ID may then belong to another process).
    public func signal(_ number: Int32) {
        shared.locked {
            if shared.termination == nil { _ = Glibc.kill(processIdentifier, number) }
        }
    }

    public func terminate() { signal(SIGTERM) }
    public func kill() { signal(SIGKILL) }

    /// Writes all of `data` to a `.pipe` standard input (blocking while the pipe is full). A child
    /// that exited without reading it all is an error here, never a SIGPIPE for the test process.
    public func writeInput(_ data: Data) throws {
        let fd = shared.locked { shared.inputDescriptor }
        guard fd >= 0 else { throw Failure("\(command): its standard input is not an open pipe") }
        // SIGPIPE blocked on this thread while it writes; one raised by EPIPE is taken off again.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        defer {
            var zero = timespec()
            while sigtimedwait(&pipeSignal, nil, &zero) == SIGPIPE {}
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let written = Self.retryingEINTR { write(fd, base + offset, bytes.count - offset) }
                guard written > 0 else {
                    let number = errno
                    throw Failure("\(command): writing its standard input: \(Self.errorText(number))", errorNumber: number)
                }
                offset += written
            }
        }
    }

    /// Closes a `.pipe` standard input (a server watching it then exits). Idempotent; deinit does it too.
    public func closeInput() { shared.closeInput() }

    // MARK: Blocking waits (for a thread of its own, never the cooperative pool)

    /// The first line of a `.capture` standard output, without its newline: what a server prints
    /// when it is ready. Blocks until the line is complete, the output ends or `timeout` passes (nil).
    public func waitForFirstLine(timeout: Duration) -> String? {
        var line: String?
        _ = shared.block(timeout: timeout) {
            line = shared.firstLine()
            return line != nil || !shared.open[0]
        }
        return line
    }

    /// Blocks until it exits; nil if `timeout` passes first.
    @discardableResult
    public func waitForExit(timeout: Duration) -> Termination? {
        var result: Termination?
        _ = shared.block(timeout: timeout) {
            result = shared.termination
            return result != nil
        }
        return result
    }

    // MARK: Async waits (polling: they never hold a cooperative thread)

    /// Waits until it exits. A cancelled task (a test past its time limit) kills it rather than wait on.
    @discardableResult
    public func exited() async -> Termination {
        while true {
            if let termination { return termination }
            if Task.isCancelled { kill() }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until it exits; nil if `timeout` passes first.
    public func exited(timeout: Duration) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        while termination == nil, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return termination
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`; returns how it ended.
    @discardableResult
    public func stop(grace: Duration = .seconds(2)) async -> Termination {
        terminate()
        if let termination = await exited(timeout: grace) { return termination }
        kill()
        return await exited()
    }

    /// Waits until both captured outputs reached their end; false if `timeout` passes first.
    public func outputFinished(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !outputFinished, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return outputFinished
    }

    /// `waitForFirstLine(timeout:)` without holding a cooperative thread.
    public func firstLine(timeout: Duration) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (line, open) = shared.locked { (shared.firstLine(), shared.open[0]) }
            if line != nil || !open { return line }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return shared.locked { shared.firstLine() }
    }
}

/// glibc functions that Swift's Glibc module does not declare (they need _GNU_SOURCE), looked up once.
private enum GNU {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32

    nonisolated(unsafe) static let pipe2: Pipe2 = symbol("pipe2")
    /// glibc 2.34 and later.
    nonisolated(unsafe) static let addCloseFrom: AddCloseFrom = symbol("posix_spawn_file_actions_addclosefrom_np")
    /// glibc 2.29 and later.
    nonisolated(unsafe) static let addChdir: AddChdir = symbol("posix_spawn_file_actions_addchdir_np")

    static func symbol<Function>(_ name: String) -> Function {
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else {
            preconditionFailure("this glibc has no \(name) (ChildProcess needs glibc 2.34 or later)")
        }
        return unsafeBitCast(address, to: Function.self)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension ChildProcess {
    /// What a finished run printed and how it ended.
    public struct Result: Sendable {
        public var termination: Termination
        public var standardOutput: String
        public var standardError: String
        /// Seconds from start to exit.
        public var seconds: Double
        /// The exit status; 128 + the signal number when a signal ended it (as a shell reports it).
        public var status: Int32 {
            switch termination {
            case .exited(let code): code
            case .signalled(let signal): 128 + signal
            }
        }
    }

    /// Runs a command to its end, its outputs captured: writes `input` (if any) and closes standard
    /// input, waits up to `timeout` (then SIGKILL, and the returned `timedOut` is true), then waits
    /// for both outputs to end.
    public static func run(
        _ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil, currentDirectory: URL? = nil,
        input: Data? = nil, timeout: Duration = .seconds(60)
    ) async throws -> (result: Result, timedOut: Bool) {
        let start = ContinuousClock.now
        let child = try ChildProcess(
            executable, arguments, environment: environment, currentDirectory: currentDirectory,
            standardInput: .pipe, standardOutput: .capture, standardError: .capture)
        defer { child.kill() }
        if let input {
            // Off the cooperative pool: a large input blocks until the child reads it.
            do {
                try await startOffPool { try child.writeInput(input) }
            } catch let failure as Failure where failure.errorNumber == EPIPE {
                // It closed its input (or exited) without reading all of it: what it did is in the result.
            }
        }
        child.closeInput()
        var timedOut = false
        let termination: Termination
        if let ended = await child.exited(timeout: timeout) {
            termination = ended
        } else {
            timedOut = true
            child.kill()
            termination = await child.exited()
        }
        let elapsed = ContinuousClock.now - start
        guard await child.outputFinished(timeout: .seconds(10)) else {
            throw Failure("\(child.command) ended (\(termination)) but its output stayed open 10 s longer (a child of it holds it?)")
        }
        let result = Result(
            termination: termination, standardOutput: child.standardOutput, standardError: child.standardError, seconds: elapsed.seconds)
        return (result, timedOut)
    }
}
