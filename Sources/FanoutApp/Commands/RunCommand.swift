import Contracts
import Foundation
import Logging
import Settings

/// `fanout run`: the sidecar, with the settings resolved from flags, environment, configuration file and defaults.
public enum RunCommand {
    /// Validates the settings, bootstraps logging and metrics, makes the pre-flight checks (routes file, HTTP port,
    /// the stream and its view type) and runs the sidecar until SIGTERM or SIGINT.
    /// Throws a one-line error for invalid settings and failed checks (before anything is started) and for a failed start-up.
    public static func run(settings: ResolvedSettings, environment: [String: String], version: String) async throws {
        let (level, format, port, configuration) = try checked(settings, environment: environment)
        let host = try settings.httpHost()
        switch format {
        case "json":
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        default:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "fanout")
        logger.info("settings", metadata: [LogKey.version: "\(version)", LogKey.settings: "\(settings.redactedSummary)"])
        _ = try Preflight.checkRoutes(path: configuration.routesPath)
        _ = try Preflight.checkPort(port, host: host, setting: portSetting(settings))
        _ = try await Preflight.checkSource(configuration, logger: logger)
        let metrics = bootstrapMetrics()
        let sidecar = try await Sidecar.make(configuration: configuration, reloadOnHangup: true, logger: logger)
        try await sidecar.runUntilSignalled(statusPort: port, statusHost: host, metrics: metrics)
    }

    /// `fanout config`: every setting `run` would use and where it came from (secrets redacted), after the checks
    /// `run` makes offline; throws the first invalid setting as one line.
    public static func describe(settings: ResolvedSettings, environment: [String: String]) throws -> [String] {
        _ = try checked(settings, environment: environment)
        return settings.describe()
    }

    /// `fanout config --check`: the settings' checks, then every pre-flight check `run` makes and that Kafka answers;
    /// one line per check passed. Throws the first failure as one line.
    public static func check(settings: ResolvedSettings, environment: [String: String], logger: Logger) async throws -> [String] {
        let (_, _, port, configuration) = try checked(settings, environment: environment)
        var lines = ["settings: valid"]
        lines.append(try Preflight.checkRoutes(path: configuration.routesPath))
        lines.append(try Preflight.checkPort(port, host: try settings.httpHost(), setting: portSetting(settings)))
        lines.append(try await Preflight.checkSource(configuration, logger: logger))
        lines.append(try await Preflight.checkKafka(configuration, logger: logger))
        return lines
    }

    /// Where the HTTP port was set, for an error about it.
    static func portSetting(_ settings: ResolvedSettings) -> String {
        let source = settings.source(.httpPort)
        return source == .defaultValue ? "\(Setting.httpPort.flagName) (default \(defaultStatusPort))" : "\(source)"
    }

    /// Every setting `run` reads, checked: the first invalid one throws as one line.
    private static func checked(
        _ settings: ResolvedSettings, environment: [String: String]
    ) throws -> (level: Logger.Level, format: String, port: Int, configuration: SidecarConfiguration) {
        _ = try settings.httpHost()
        return (try settings.logLevel(), try settings.logFormat(), try settings.httpPort(), try settings.sidecarConfiguration(environment: environment))
    }
}
