import Contracts
import Foundation
import Logging
import Settings

/// `fanout run`: the sidecar, with the settings resolved from flags, environment, configuration file and defaults.
public enum RunCommand {
    /// Validates the settings, bootstraps logging and metrics, and runs the sidecar until SIGTERM or SIGINT.
    /// Throws a one-line error for invalid settings (before anything is started) and for a failed start-up.
    public static func run(settings: ResolvedSettings, environment: [String: String], version: String) async throws {
        let (level, format, port, configuration) = try checked(settings, environment: environment)
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
        let metrics = bootstrapMetrics()
        let sidecar = try await Sidecar.make(configuration: configuration, reloadOnHangup: true, logger: logger)
        try await sidecar.runUntilSignalled(statusPort: port, metrics: metrics)
    }

    /// `fanout config`: every setting `run` would use and where it came from (secrets redacted), after the checks
    /// `run` makes; throws the first invalid setting as one line.
    public static func describe(settings: ResolvedSettings, environment: [String: String]) throws -> [String] {
        _ = try checked(settings, environment: environment)
        return settings.describe()
    }

    /// Every setting `run` reads, checked: the first invalid one throws as one line.
    private static func checked(
        _ settings: ResolvedSettings, environment: [String: String]
    ) throws -> (level: Logger.Level, format: String, port: Int, configuration: SidecarConfiguration) {
        (try settings.logLevel(), try settings.logFormat(), try settings.httpPort(), try settings.sidecarConfiguration(environment: environment))
    }
}
