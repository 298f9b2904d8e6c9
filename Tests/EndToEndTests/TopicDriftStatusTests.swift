import AWS
import AsyncHTTPClient
import Contracts
import Router
import CQRSCore
import FanoutApp
import Foundation
import Kafka
import Logging
import Settings
import TestSupport
import Testing

/// Topic drift (an existing topic with another partition count than the routes file's) is shown in `/status`
/// (`routes.topicDrift`), found at start-up and again at each reload.
@Suite(.timeLimit(.minutes(2))) struct TopicDriftStatusTests {
    @Test func driftIsInTheStatusAfterStartUpAndClearsWhenAReloadedFileMatches() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try PipelineTests.awsConfiguration()
        let table = TestServices.uniqueName("drift-status")
        let topic = TestServices.uniqueName("drift-status")
        let logger = Logger(label: "drift-status-test")
        try await DynamoDBEventStore(dynamoDB: DynamoDB(configuration: aws, httpClient: HTTPClient.forTests, logger: logger), tableName: table)
            .createTableIfMissing()
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: brokers), logger: logger)
        defer { admin.close() }
        try await admin.createTopics([KafkaTopicSpecification(name: topic, partitions: 2)])
        let routesPath = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(topic).json").path
        func writeRoutes(partitions: Int) throws {
            try #"{"version": 1, "deadLetterTopic": "\#(topic).dead", "topics": {"\#(topic)": {"partitions": \#(partitions)}}, "routes": [{"name": "a", "events": ["A"], "to": ["\#(topic)"]}]}"#
                .write(toFile: routesPath, atomically: true, encoding: .utf8)
        }
        try writeRoutes(partitions: 4)
        let sidecar = try await Sidecar.make(
            configuration: SidecarConfiguration(brokers: brokers, routesPath: routesPath, tableName: table, application: table, aws: aws),
            logger: logger
        )
        #expect(sidecar.status.routes.topicDrift == ["\(topic) has 2 partitions, the routes file asks for 4"])

        try writeRoutes(partitions: 2)
        #expect(await sidecar.reloader.reloadNow())
        #expect(sidecar.status.routes.topicDrift.isEmpty, "\(sidecar.status.routes.topicDrift)")
        sidecar.requestStop()
        try await sidecar.run()
    }
}
