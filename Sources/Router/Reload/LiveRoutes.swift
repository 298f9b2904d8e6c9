import Foundation
import Synchronization

/// What an operator needs to confirm which routes are live, and why a newer file is not.
public struct RoutesStatus: Sendable, Hashable {
    public var path: String
    /// SHA-256 of the live file's bytes.
    public var hash: String
    public var version: Int
    public var routeCount: Int
    public var topicCount: Int
    public var loadedAt: Date
    /// Successful reloads since start (the first load not counted).
    public var reloads: Int
    /// Files refused since start.
    public var reloadFailures: Int
    /// Why the newest file on disk is not live; nil once a good file is live again.
    public var lastError: String?
    public var lastErrorAt: Date?
}

/// The routes in force, swapped atomically as a whole.
///
/// Readers take one snapshot per page of stream records and route every record
/// of the page with it, so a swap happens between two events (in fact between
/// two pages), never in the middle of one, and no event sees a half-loaded table.
public final class LiveRoutes: Sendable {
    private let state: Mutex<(routes: CompiledRoutes, status: RoutesStatus)>

    public init(_ routes: CompiledRoutes, path: String, loadedAt: Date = Date()) {
        let file = routes.file
        state = Mutex((routes, RoutesStatus(
            path: path, hash: file.contentHash, version: file.version, routeCount: file.routes.count,
            topicCount: file.allTopics.count, loadedAt: loadedAt, reloads: 0, reloadFailures: 0, lastError: nil, lastErrorAt: nil
        )))
    }

    /// The routes to use now.
    public var current: CompiledRoutes { state.withLock { $0.routes } }

    public var status: RoutesStatus { state.withLock { $0.status } }

    /// Makes `routes` live and clears any reload error.
    func replace(with routes: CompiledRoutes, at date: Date = Date()) {
        state.withLock { state in
            state.routes = routes
            state.status.hash = routes.file.contentHash
            state.status.version = routes.file.version
            state.status.routeCount = routes.file.routes.count
            state.status.topicCount = routes.file.allTopics.count
            state.status.loadedAt = date
            state.status.reloads += 1
            state.status.lastError = nil
            state.status.lastErrorAt = nil
        }
    }

    /// Swaps in routes as a reload does; for the benchmarks.
    package func replaceForBenchmark(with routes: CompiledRoutes) {
        replace(with: routes)
    }

    /// Records that a newer file was refused; the live routes stay as they are.
    func recordFailure(_ message: String, at date: Date = Date()) {
        state.withLock { state in
            state.status.reloadFailures += 1
            state.status.lastError = message
            state.status.lastErrorAt = date
        }
    }
}
