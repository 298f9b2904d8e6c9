import AsyncHTTPClient
import Foundation
import Logging
import TestSupport
import Testing

@testable import AWS

extension VerifyingMotoServer {
    var endpoint: URL { URL(string: url)! }
    var credentials: AWSCredentials { AWSCredentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey) }
}

@Suite struct SignatureVerificationTests {
    func configuration(_ server: VerifyingMotoServer, _ credentials: AWSCredentials) -> AWSConfiguration {
        AWSConfiguration(
            region: "us-east-1",
            credentialProvider: StaticCredentialProvider(credentials),
            endpoint: server.endpoint,
            retryPolicy: .none
        )
    }

    @Test func motoVerifiesOurSignaturesAndRejectsWrongOnes() async throws {
        let server = try await startOffPool { try VerifyingMotoServer() }
        defer { server.stop() }
        let logger = Logger(label: "t")

        do {
            let credentials = server.credentials
            let dynamoDB = DynamoDB(configuration: configuration(server, credentials), httpClient: .shared, logger: logger)
            let table = "signed-key"
            _ = try await dynamoDB.createTable(
                CreateTableInput(
                    tableName: table, partitionKey: (name: "pk", type: .string),
                    streamSpecification: StreamSpecification(enabled: true, viewType: .newImage)
                )
            )
            try await dynamoDB.putItem(table: table, item: ["pk": .s("ünïcødé ✓")])
            #expect(try await dynamoDB.getItem(table: table, key: ["pk": .s("ünïcødé ✓")]) != nil)
            // Streams are signed with service name "dynamodb" too.
            let streams = DynamoDBStreams(configuration: configuration(server, credentials), httpClient: .shared, logger: logger)
            #expect(try await streams.listStreams(tableName: table).count == 1)
        }

        var wrong = server.credentials
        wrong.secretAccessKey = "not-the-secret"
        let rejected = DynamoDB(configuration: configuration(server, wrong), httpClient: .shared, logger: logger)
        let error = await #expect(throws: AWSError.self) {
            _ = try await rejected.describeTable("signed-key")
        }
        #expect(error?.type == "SignatureDoesNotMatch")
        #expect(error?.statusCode == 403)
        #expect(error?.isRetriable == false)
        #expect(!(error?.description.contains("not-the-secret") ?? true))
        #expect(error?.accessKeyID == server.credentials.accessKeyID)

        try await CredentialProviderTests.checkSignedAssumeRole(on: server)
    }
}
