import AWS
import AsyncHTTPClient
import CQRSCore
import Contracts
import Delivery
import FanoutApp
import Foundation
import JSON
import Kafka
import Logging
import Router
import Settings
import StreamReader
import Subscribers
import TestSupport
import Testing

/// The sidecar on a Kinesis source (DynamoDB's Kinesis streaming destination): DynamoDB changes
/// in Kinesis records (moto) → `Sidecar` → Kafka topics (noida-db).
@Suite(.serialized, .timeLimit(.minutes(2))) struct KinesisPipelineTests {
    static let logger = Logger(label: "e2e-kinesis")

    /// The JSON DynamoDB's Kinesis destination writes for a change of an events-table item.
    static func change(_ event: GenericDomainEventMessage, eventName: String = "INSERT") -> [UInt8] {
        struct Change: Encodable {
            struct Body: Encodable {
                var ApproximateCreationDateTime: Int64
                var Keys: DynamoDBItem
                var NewImage: DynamoDBItem
                var SizeBytes: Int
            }
            var awsRegion = "us-east-1"
            var eventID: String
            var eventName: String
            var recordFormat = "application/json"
            var tableName = "events"
            var dynamodb: Body
            var eventSource = "aws:dynamodb"
        }
        let item = event.item
        let keys: DynamoDBItem = ["aggregateId": item["aggregateId"]!, "sequenceNumber": item["sequenceNumber"]!]
        let change = Change(
            eventID: event.messageID, eventName: eventName,
            dynamodb: .init(ApproximateCreationDateTime: Int64(Date().timeIntervalSince1970 * 1000), Keys: keys, NewImage: item, SizeBytes: 100)
        )
        return Array(try! JSONEncoder().encode(change))
    }

    static func writeRoutes(orders: String, billing: String, deadLetter: String) throws -> String {
        let text = """
            {
              "version": 1,
              "defaults": { "partitions": 2 },
              "topics": { "\(orders)": {}, "\(billing)": {} },
              "routes": [
                { "name": "orders", "events": ["Order*"], "to": ["\(orders)"] },
                { "name": "billing", "events": ["OrderPlaced", "Payment*"], "to": ["\(billing)"] }
              ],
              "deadLetterTopic": "\(deadLetter)"
            }
            """
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(TestServices.uniqueName("kinesis")).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func changesInAKinesisStreamAreRoutedAndAForeignRecordIsDeadLettered() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try PipelineTests.awsConfiguration()
        let suffix = TestServices.uniqueName("kin")
        let orders = "orders.\(suffix)", billing = "billing.\(suffix)", deadLetter = "dead-letter.\(suffix)"
        let routesPath = try Self.writeRoutes(orders: orders, billing: billing, deadLetter: deadLetter)
        let httpClient = HTTPClient.forTests
        let kinesis = Kinesis(configuration: aws, httpClient: httpClient, logger: Self.logger)
        let stream = TestServices.uniqueName("changes")
        try await kinesis.createStream(name: stream, shardCount: 2)
        let streamARN = try await kinesis.waitUntilActive(name: stream, timeout: .seconds(20))

        // Given by ARN, as operators often do.
        let sidecar = try await Sidecar.make(
            configuration: SidecarConfiguration(brokers: brokers, routesPath: routesPath, kinesisStream: streamARN, application: suffix, aws: aws),
            logger: Self.logger
        )
        #expect(sidecar.streamARN == streamARN)
        let running = Task { try await sidecar.run() }

        let placed = GenericDomainEventMessage(eventName: "OrderPlaced", aggregateID: "o-1", aggregateType: "Order", sequenceNumber: 1, payload: ["total": .number("5")])
        let paid = GenericDomainEventMessage(eventName: "PaymentReceived", aggregateID: "p-1", aggregateType: "Payment", sequenceNumber: 1, payload: ["amount": .number("5")])
        let shipped = GenericDomainEventMessage(eventName: "OrderShipped", aggregateID: "o-1", aggregateType: "Order", sequenceNumber: 2, payload: [:])
        for event in [placed, paid, shipped] {
            _ = try await kinesis.putRecord(streamName: stream, partitionKey: event.aggregateID, data: Self.change(event))
        }
        // A MODIFY of an event item is ignored (events are immutable); a record that is not a change is dead-lettered.
        _ = try await kinesis.putRecord(streamName: stream, partitionKey: "o-1", data: Self.change(placed, eventName: "MODIFY"))
        let foreign = Array("{not a change".utf8)
        _ = try await kinesis.putRecord(streamName: stream, partitionKey: "junk", data: foreign)

        let result = try await PipelineTests.collect([orders, billing], brokers: brokers, expected: 4)
        var deadLetters: [KafkaConsumerMessage] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while deadLetters.isEmpty, ContinuousClock.now < deadline {
            deadLetters = try await KafkaTopicReader.readToEnd(topic: deadLetter, configuration: KafkaConfiguration(bootstrapServers: brokers), logger: Self.logger)
            if deadLetters.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
        }
        sidecar.requestStop()
        try await running.value

        func labels(_ topic: String) -> [String] {
            result[topic, default: []].map { "\($0.event.aggregateID)#\($0.event.sequenceNumber) \($0.event.eventName)" }.sorted()
        }
        #expect(labels(orders) == ["o-1#1 OrderPlaced", "o-1#2 OrderShipped"])
        #expect(labels(billing) == ["o-1#1 OrderPlaced", "p-1#1 PaymentReceived"])
        for item in result.values.joined() {
            #expect(item.context.header("fanout-source")?.hasPrefix(streamARN + "/shardId-") == true)
            let sent = try #require([placed, paid, shipped].first { $0.messageID == item.event.messageID }, "not an event of this test: \(item.event)")
            #expect(PipelineTests.differences(item.event, sent) == [])
        }
        #expect(deadLetters.count == 1)
        let letter = try #require(deadLetters.first)
        #expect(letter.value == foreign)
        #expect(letter.key == Array("junk".utf8))
        #expect(letter.headers.first { $0.key == "fanout-error" }.map { String(decoding: $0.value, as: UTF8.self) }
            == "Kinesis record is not a DynamoDB change record: its data is not JSON")
        let counts = sidecar.pipeline.currentCounts
        #expect(counts.recordsRead == 5)
        #expect(counts.deadLettered == 1)
        #expect(counts.ignored == 1)
        try? await kinesis.deleteStream(name: stream)
    }

    @Test func aMissingOrMisnamedKinesisStreamAndAtTimestampOnDynamoDBAreRefusedInOneLine() async throws {
        let brokers = try TestServices.kafkaBrokers()
        let aws = try PipelineTests.awsConfiguration()
        let suffix = TestServices.uniqueName("kin-bad")
        let routesPath = try Self.writeRoutes(orders: "orders.\(suffix)", billing: "billing.\(suffix)", deadLetter: "dead-letter.\(suffix)")
        func failure(_ configuration: SidecarConfiguration) async -> String {
            do {
                let sidecar = try await Sidecar.make(configuration: configuration, logger: Self.logger)
                sidecar.requestStop()
                try await sidecar.run()
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let endpoint = try TestServices.awsEndpoint()
        #expect(await failure(SidecarConfiguration(brokers: brokers, routesPath: routesPath, kinesisStream: "no-such-stream", aws: aws))
            == "Kinesis stream \"no-such-stream\" does not exist in us-east-1 at \(endpoint)")
        #expect(await failure(SidecarConfiguration(brokers: brokers, routesPath: routesPath, kinesisStream: "arn:aws:dynamodb:us-east-1:1:table/t", aws: aws))
            == "--kinesis-stream: \"arn:aws:dynamodb:us-east-1:1:table/t\" is neither a stream name nor a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)")
        #expect(await failure(SidecarConfiguration(brokers: brokers, routesPath: routesPath, tableName: "t", startPosition: .atTimestamp, startTimestamp: Date(), aws: aws))
            == "--start-position AT_TIMESTAMP: DynamoDB Streams has no AT_TIMESTAMP iterator (only Kinesis streams have); use TRIM_HORIZON or LATEST")
        #expect(await failure(SidecarConfiguration(brokers: brokers, routesPath: routesPath, tableName: "t", kinesisStream: "s", aws: aws))
            == "--kinesis-stream s: set one source, a Kinesis stream or a DynamoDB table/stream ARN, not both")
    }
}
