import Contracts
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Watches the routes file and swaps in each new valid version.
///
/// The file is polled (modification time, size, inode and the resolved target
/// of any symlink, so a Kubernetes ConfigMap swap through `..data` is seen), and
/// `reloadNow()` checks at once (so does SIGHUP, with `reloadsOnHangup`). A new file is
/// parsed and validated here, off the routing path; its topics are created; only
/// then is the compiled table swapped in. A file that fails is logged once per
/// content, shown in `LiveRoutes.status` and counted, and the last good routes
/// stay in force until a good file arrives.
public final class RoutesReloader: Service, Sendable {
    public let path: String
    /// SIGHUP reloads at once (the sidecar's reloader; not the tests', which share one process).
    public let reloadsOnHangup: Bool
    public let live: LiveRoutes
    public let pollInterval: Duration
    private let prepare: (@Sendable (RoutesFile) async throws -> Void)?
    private let logger: Logger
    private let state: Mutex<State>
    private let reloads = Counter(label: "fanout_routes_reloads_total")
    private let failures = Counter(label: "fanout_routes_reload_failures_total")
    private let failing = Gauge(label: "fanout_routes_reload_failing")

    struct State {
        var fingerprint: FileFingerprint?
        var lastFailedContent: String?
        var infoGauge: Gauge?
    }

    /// - Parameters:
    ///   - prepare: runs on a new valid file before it goes live (the sidecar creates the topics it declares:
    ///     Delivery's `TopicProvisioner`); when it throws, the file is refused. nil skips that (tests, `routes check`).
    public init(
        path: String, live: LiveRoutes, pollInterval: Duration = .seconds(2), reloadsOnHangup: Bool = false, logger: Logger,
        prepare: (@Sendable (RoutesFile) async throws -> Void)? = nil
    ) {
        self.path = path
        self.reloadsOnHangup = reloadsOnHangup
        self.live = live
        self.prepare = prepare
        self.pollInterval = pollInterval
        self.logger = logger
        self.state = Mutex(State(fingerprint: FileFingerprint(path: path)))
        publishInfo(live.status)
    }

    /// The reloader as a lifecycle service: polls the file every `pollInterval` and, when `reloadsOnHangup`,
    /// reloads at once on SIGHUP (it owns that signal), until graceful shutdown or cancellation.
    public func run() async {
        await cancelWhenGracefulShutdown { [self] in
            await withTaskGroup(of: Void.self) { group in
                if reloadsOnHangup {
                    group.addTask {
                        for await _ in await UnixSignalsSequence(trapping: .sighup) {
                            await self.reloadNow()
                        }
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            try await Task.sleep(for: self.pollInterval)
                        } catch {
                            return
                        }
                        await self.checkForChanges()
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Reloads if the file changed since the last look.
    public func checkForChanges() async {
        let fingerprint = FileFingerprint(path: path)
        let changed = state.withLock { state in
            defer { state.fingerprint = fingerprint }
            return state.fingerprint != fingerprint
        }
        if changed { await reloadNow() }
    }

    /// Reads, validates and (if it differs from the live routes) swaps in the file now.
    /// Returns whether the file's routes are live afterwards.
    @discardableResult
    public func reloadNow() async -> Bool {
        state.withLock { $0.fingerprint = FileFingerprint(path: path) }
        let bytes: [UInt8]
        do {
            bytes = try RoutesFile.read(path: path)
        } catch {
            return refuse(error.issues[0].description, content: "unreadable: \(error.issues[0].message)")
        }
        let file: RoutesFile
        do {
            file = try RoutesFile.parse(bytes, file: path)
        } catch {
            let summary = error.issues.first!.description + (error.issues.count > 1 ? " (and \(error.issues.count - 1) more)" : "")
            return refuse(summary, content: String(decoding: bytes, as: UTF8.self))
        }
        if file.contentHash == live.status.hash {
            clearFailure()
            return true
        }
        let compiled = CompiledRoutes(file)
        if let prepare {
            do {
                try await prepare(file)
            } catch {
                return refuse("\(path): cannot create its topics: \(error)", content: file.contentHash)
            }
        }
        live.replace(with: compiled)
        clearFailure()
        reloads.increment()
        let status = live.status
        publishInfo(status)
        logger.info("routes reloaded", metadata: [
            LogKey.routesFile: "\(path)", LogKey.routesHash: "\(status.hash)", LogKey.routesVersion: "\(status.version)",
            LogKey.routesCount: "\(status.routeCount)",
        ])
        return true
    }

    private func refuse(_ message: String, content: String) -> Bool {
        let isNew = state.withLock { state in
            defer { state.lastFailedContent = content }
            return state.lastFailedContent != content
        }
        if isNew {
            live.recordFailure(message)
            failures.increment()
            failing.record(1)
            logger.error("routes file refused; the previous routes stay live", metadata: [
                LogKey.error: "\(message)", LogKey.routesLiveHash: "\(live.status.hash)",
            ])
        }
        return false
    }

    private func clearFailure() {
        state.withLock { $0.lastFailedContent = nil }
        failing.record(0)
    }

    /// `fanout_routes_info{hash, version} 1` for the live file; the previous file's series is removed, so the
    /// metric has one series however often the file is reloaded.
    private func publishInfo(_ status: RoutesStatus) {
        let gauge = Gauge(label: "fanout_routes_info", dimensions: [("hash", String(status.hash.prefix(12))), ("version", String(status.version))])
        let previous = state.withLock { state in
            defer { state.infoGauge = gauge }
            return state.infoGauge
        }
        if let previous, previous !== gauge { previous.destroy() }
        gauge.record(1)
    }
}

/// What identifies a version of a file on disk without reading it.
struct FileFingerprint: Hashable, Sendable {
    var resolvedPath: String
    var modified: Double
    var size: Int64
    var inode: UInt64

    init?(path: String) {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: resolved) else { return nil }
        resolvedPath = resolved
        modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
        inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
    }
}
