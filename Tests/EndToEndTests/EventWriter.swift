import AWS
import AsyncHTTPClient
import CQRSCore
import Foundation
import Logging
import TestSupport

/// What the sidecar crash and restart tests run against: `Tick` events routed to `ticks.<suffix>` (3 partitions),
/// from the events table `<suffix>` on the moto at `endpoint`.
struct TickSetup {
    let topic: String
    let routesPath: String
    let store: DynamoDBEventStore

    init(suffix: String, endpoint: String, logger: Logger) async throws {
        topic = "ticks.\(suffix)"
        routesPath = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(suffix).json").path
        try #"{"version": 1, "topics": {"\#(topic)": {"partitions": 3}}, "routes": [{"name": "ticks", "events": ["Tick"], "to": ["\#(topic)"]}]}"#
            .write(toFile: routesPath, atomically: true, encoding: .utf8)
        let aws = AWSConfiguration(
            region: "us-east-1", credentialProvider: StaticCredentialProvider(accessKeyID: "test", secretAccessKey: "test"),
            endpoint: URL(string: endpoint)!
        )
        store = DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: HTTPClient.forTests, logger: logger), tableName: suffix)
        try await store.createTableIfMissing()
    }
}

extension DynamoDBEventStore {
    /// Appends one event as a test's writer does, writing it again when the call failed (moto is slow on a loaded
    /// machine), up to 5 times. A conflict on a retry means the first write was applied (its answer came too late,
    /// and moto ignores the retry's ClientRequestToken: INFRA.md); the caller is the aggregate's only writer, so the
    /// event is stored.
    func appendRetrying(_ event: GenericDomainEventMessage) async throws {
        for attempt in 1... {
            do {
                try await append([event])
                return
            } catch is ConcurrencyConflictError where attempt > 1 {
                return
            } catch where attempt < 5 && !(error is ConcurrencyConflictError) {
                try await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
    }
}
