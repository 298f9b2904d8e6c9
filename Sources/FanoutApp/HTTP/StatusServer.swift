import AWS
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import Settings


/// Creates the Prometheus registry and makes it the process's metrics backend.
///
/// Only the executable calls this, once, before anything creates a metric; libraries
/// and tests never bootstrap (swift-metrics allows one bootstrap per process).
public func bootstrapMetrics() -> PrometheusCollectorRegistry {
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    // AWS calls take milliseconds to seconds: finer buckets below a second than the defaults, so that a GetRecords
    // p99 can be read to within a bucket of 25-50 ms.
    factory.durationHistogramBuckets[AWSJSONClient.requestDurationLabel] = [
        5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 2500, 5000, 10000,
    ].map { .milliseconds($0) }
    MetricsSystem.bootstrap(factory)
    return registry
}

/// The operator endpoint: `GET /healthz`, `/readyz`, `/status` and `/metrics`; anything else is 404.
///
/// The result is a swift-service-lifecycle `Service`: put it in the sidecar's `ServiceGroup`
/// (it stops serving on graceful shutdown), or test it with HummingbirdTesting.
///
/// - Parameters:
///   - port: The TCP port; 0 picks a free one (see `onServerRunning`).
///   - host: The address to bind (`fanout run --http-host`; 0.0.0.0 by default).
///   - status: A snapshot for `GET /status`.
///   - readiness: The checks for `GET /readyz`; 200 when ready, 503 otherwise.
///   - metrics: The registry `GET /metrics` exposes (usually the one from `bootstrapMetrics()`).
///   - logger: Where the server logs.
///   - onServerRunning: Called once the socket is bound, with the bound port.
public func makeStatusApplication(
    port: Int = defaultStatusPort,
    host: String = "0.0.0.0",
    status: @escaping @Sendable () -> SidecarStatus,
    readiness: @escaping @Sendable () async -> Readiness,
    metrics: PrometheusCollectorRegistry,
    logger: Logger,
    onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router()
    router.get("/healthz") { _, _ in
        "ok"
    }
    router.get("/readyz") { _, _ -> Response in
        let readiness = await readiness()
        return try StatusEncoding.jsonResponse(readiness, status: readiness.isReady ? .ok : .serviceUnavailable)
    }
    router.get("/status") { _, _ -> Response in
        try StatusEncoding.jsonResponse(status())
    }
    router.get("/metrics") { _, _ -> Response in
        Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: MetricsHelp.adding(to: metrics.emitToBuffer())))
        )
    }
    return Application(
        router: router,
        configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "fanout"),
        // Hummingbird logs "Server started and listening on host:port" itself.
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? port)
        },
        logger: logger
    )
}

/// How the status endpoint writes JSON: sorted keys (stable output) and ISO-8601 dates.
enum StatusEncoding {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        var data = try encoder().encode(value)
        data.append(UInt8(ascii: "\n"))
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
