import AsyncHTTPClient
import Foundation
import Logging
import Testing
import TestSupport

@testable import AWS

/// The default credential chain: moto's STS for web identity and assumed roles,
/// a local stand-in for the container endpoint and IMDS.
@Suite struct CredentialProviderTests {
    /// An environment that configures nothing (no HOME, IMDS off) plus `extra`.
    static func environment(_ extra: [String: String]) -> [String: String] {
        ["AWS_EC2_METADATA_DISABLED": "true"].merging(extra) { $1 }
    }

    static func provider(
        _ environment: [String: String],
        sts: URL? = nil,
        refreshWindow: Duration = .seconds(300),
        logger: Logger = Logger(label: "credentials-test")
    ) throws -> DefaultCredentialProvider {
        let endpoint = try sts ?? #require(URL(string: try TestServices.awsEndpoint()))
        return DefaultCredentialProvider(
            environment: environment, region: "us-east-1", stsEndpoint: endpoint,
            refreshWindow: refreshWindow, logger: logger
        )
    }

    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fanout-creds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func noSourceGivesAnErrorListingEverySourceTried() async throws {
        let home = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: home) }
        let provider = try Self.provider(Self.environment(["HOME": home.path]))
        let error = await #expect(throws: AWSCredentialsError.self) { _ = try await provider.credentials() }
        let text = "\(error.map { "\($0)" } ?? "")"
        #expect(error?.failedSource == nil)
        #expect(error?.tried.map(\.source) == DefaultCredentialProvider.Source.allCases.map(\.rawValue))
        for mention in ["AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE", "\(home.path)/.aws/credentials",
                        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EC2_METADATA_DISABLED"] {
            #expect(text.contains(mention), "\(mention) missing from: \(text)")
        }
    }

    @Test func unreachableInstanceMetadataFallsThroughFast() async throws {
        // An endpoint that never answers: only the 1 s bound ends the wait.
        let server = try await startOffPool { try CredentialServer(hang: true) }
        defer { server.stop() }
        let provider = try Self.provider(["AWS_EC2_METADATA_SERVICE_ENDPOINT": server.url.absoluteString])
        // The 1 s deadline is what ended the wait (its text below); the elapsed time is only a hang guard, as
        // wide as a loaded machine needs (two busy cores have stretched this call to 15 s).
        let started = ContinuousClock.now
        let error = await #expect(throws: AWSCredentialsError.self) { _ = try await provider.credentials() }
        #expect(ContinuousClock.now - started < .seconds(45))
        #expect(error?.failedSource == DefaultCredentialProvider.Source.instanceMetadata.rawValue)
        #expect("\(error.map { "\($0)" } ?? "")".contains("(not an EC2 instance?): no answer within 1.0 seconds"))
    }

    @Test func environmentWinsAndKeepsTheSessionToken() async throws {
        let provider = try Self.provider(Self.environment([
            "AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "SKENV", "AWS_SESSION_TOKEN": "TKENV",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/never",
        ]))
        #expect(try await provider.credentials() == AWSCredentials(accessKeyID: "AKENV", secretAccessKey: "SKENV", sessionToken: "TKENV"))
        #expect(await provider.currentSource == .environment)
    }

    @Test func webIdentityThroughSTS() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let tokenFile = directory.appendingPathComponent("token")
        try "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        let provider = try Self.provider(Self.environment([
            "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path,
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/fanout",
            "AWS_ROLE_SESSION_NAME": "fanout-test",
        ]))
        let credentials = try await provider.credentials()
        #expect(credentials.accessKeyID.hasPrefix("ASIA"))
        #expect(credentials.sessionToken?.isEmpty == false)
        #expect(await provider.currentSource == .webIdentity)
        // Cached: the same credentials again, no second STS call.
        #expect(try await provider.credentials() == credentials)

        // The credentials sign real calls.
        let endpoint = try #require(URL(string: try TestServices.awsEndpoint()))
        let dynamoDB = DynamoDB(
            configuration: AWSConfiguration(region: "us-east-1", credentialProvider: provider, endpoint: endpoint),
            httpClient: .shared, logger: Logger(label: "t")
        )
        await #expect { _ = try await dynamoDB.describeTable(TestServices.uniqueName("absent")) } throws: {
            ($0 as? AWSError)?.type == AWSError.resourceNotFound
        }

        let missing = try Self.provider(Self.environment(["AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path]))
        await #expect { _ = try await missing.credentials() } throws: { "\($0)".contains("AWS_ROLE_ARN") }
    }

    @Test func profilesWithStaticKeysAndAssumedRoles() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let credentialsFile = directory.appendingPathComponent("credentials")
        let configFile = directory.appendingPathComponent("config")
        try """
            [default]
            aws_access_key_id = AKDEFAULT
            aws_secret_access_key = SKDEFAULT

            [base]
            aws_access_key_id=AKBASE
            aws_secret_access_key=SKBASE
            aws_session_token=TKBASE
            """.write(to: credentialsFile, atomically: true, encoding: .utf8)
        try """
            # comment
            [default]
            region = eu-central-1
            [profile app]
            role_arn = arn:aws:iam::123456789012:role/app
            source_profile = base
            role_session_name = fanout-app
            region = eu-west-3
            s3 =
              max_concurrent_requests = 2
            [profile chained]
            role_arn = arn:aws:iam::123456789012:role/second
            source_profile = app
            [profile loop]
            role_arn = arn:aws:iam::123456789012:role/loop
            source_profile = loop2
            [profile loop2]
            role_arn = arn:aws:iam::123456789012:role/loop2
            source_profile = loop
            """.write(to: configFile, atomically: true, encoding: .utf8)
        let files = ["AWS_SHARED_CREDENTIALS_FILE": credentialsFile.path, "AWS_CONFIG_FILE": configFile.path]

        let plain = try Self.provider(Self.environment(files))
        #expect(try await plain.credentials() == AWSCredentials(accessKeyID: "AKDEFAULT", secretAccessKey: "SKDEFAULT"))
        #expect(await plain.currentSource == .sharedFiles)

        let base = try Self.provider(Self.environment(files.merging(["AWS_PROFILE": "base"]) { $1 }))
        #expect(try await base.credentials().sessionToken == "TKBASE")

        for profile in ["app", "chained"] {
            let assumed = try Self.provider(Self.environment(files.merging(["AWS_PROFILE": profile]) { $1 }))
            let credentials = try await assumed.credentials()
            #expect(credentials.accessKeyID.hasPrefix("ASIA"), "profile \(profile)")
            #expect(credentials.sessionToken?.isEmpty == false)
        }

        let loop = try Self.provider(Self.environment(files.merging(["AWS_PROFILE": "loop"]) { $1 }))
        await #expect { _ = try await loop.credentials() } throws: { "\($0)".contains("cycle") }
        let absent = try Self.provider(Self.environment(files.merging(["AWS_PROFILE": "nope"]) { $1 }))
        await #expect { _ = try await absent.credentials() } throws: { "\($0)".contains("\"nope\"") }

        // The region comes from the profile when the environment names none.
        let configured = try AWSConfiguration.fromEnvironment(files.merging(["AWS_PROFILE": "app"]) { $1 })
        #expect(configured.region == "eu-west-3")
        #expect(try AWSConfiguration.fromEnvironment(files).region == "eu-central-1")
        #expect(try AWSConfiguration.fromEnvironment(files.merging(["AWS_REGION": "us-west-2"]) { $1 }).region == "us-west-2")
    }

    @Test func containerEndpointWithAuthorizationToken() async throws {
        let server = try await startOffPool { try CredentialServer() }
        defer { server.stop() }
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let tokenFile = directory.appendingPathComponent("auth")
        try CredentialServer.authorization.write(to: tokenFile, atomically: true, encoding: .utf8)

        let fromFile = try Self.provider(Self.environment([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "\(server.url)/container",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile.path,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "ignored when the file is set",
        ]))
        let credentials = try await fromFile.credentials()
        #expect(credentials.accessKeyID == "AKID1")
        #expect(credentials.secretAccessKey == "SECRET-1-xyz")
        #expect(credentials.sessionToken == "TOKEN-1-xyz")
        #expect(await fromFile.currentSource == .container)

        let fromVariable = try Self.provider(Self.environment([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "\(server.url)/container",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": CredentialServer.authorization,
        ]))
        #expect(try await fromVariable.credentials().accessKeyID == "AKID2")

        let wrong = try Self.provider(Self.environment([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "\(server.url)/container",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer wrong",
        ]))
        await #expect { _ = try await wrong.credentials() } throws: { error in
            "\(error)".contains("HTTP 401") && !"\(error)".contains("Bearer wrong")
        }
    }

    @Test func instanceMetadataV2() async throws {
        let server = try await startOffPool { try CredentialServer() }
        defer { server.stop() }
        let provider = try Self.provider(["AWS_EC2_METADATA_SERVICE_ENDPOINT": "\(server.url)/"])
        let credentials = try await provider.credentials()
        #expect(credentials == AWSCredentials(accessKeyID: "AKID1", secretAccessKey: "SECRET-1-xyz", sessionToken: "TOKEN-1-xyz"))
        #expect(await provider.currentSource == .instanceMetadata)
    }

    @Test func expiringCredentialsAreRefreshedOnceForConcurrentCallers() async throws {
        // Each credential expires 310 s after issue; with a 300 s refresh window it is due for refresh
        // 10 s after issue (margins wide enough for a loaded 2-core machine).
        let server = try await startOffPool { try CredentialServer(ttl: 310) }
        defer { server.stop() }
        let provider = try Self.provider(
            ["AWS_EC2_METADATA_SERVICE_ENDPOINT": server.url.absoluteString], refreshWindow: .seconds(300)
        )
        async let first = provider.credentials()
        async let second = provider.credentials()
        #expect(try await [first.accessKeyID, second.accessKeyID] == ["AKID1", "AKID1"])
        #expect(try await provider.credentials().accessKeyID == "AKID1")
        #expect(try await server.issued() == 1)

        try await Task.sleep(for: .milliseconds(10_500))
        let keys = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try await provider.credentials().accessKeyID } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(keys == Array(repeating: "AKID2", count: 8))
        #expect(try await server.issued() == 2)
    }

    @Test func aFailedRefreshKeepsServingValidCredentials() async throws {
        let server = try await startOffPool { try CredentialServer(ttl: 302) }
        let provider = try Self.provider(
            ["AWS_EC2_METADATA_SERVICE_ENDPOINT": server.url.absoluteString], refreshWindow: .seconds(300)
        )
        #expect(try await provider.credentials().accessKeyID == "AKID1")
        server.stop()
        try await Task.sleep(for: .milliseconds(2500))
        // Due for refresh, the endpoint is gone, but the credentials are valid for ~5 more minutes.
        #expect(try await provider.credentials().accessKeyID == "AKID1")
    }

    @Test func secretsNeverReachLogsOrErrors() async throws {
        let server = try await startOffPool { try CredentialServer(ttl: 302) }
        defer { server.stop() }
        let handler = RecordingLogHandler()
        let logger = Logger(label: "credentials-test") { _ in handler }
        var errors: [String] = []

        let failing = try Self.provider(Self.environment([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "\(server.url)/container",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer NOT-THE-TOKEN",
        ]), logger: logger)
        do { _ = try await failing.credentials() } catch { errors.append("\(error)") }

        let partial = try Self.provider(Self.environment(["AWS_ACCESS_KEY_ID": "AKPARTIAL"]), logger: logger)
        do { _ = try await partial.credentials() } catch { errors.append("\(error)") }

        let succeeding = try Self.provider(
            ["AWS_EC2_METADATA_SERVICE_ENDPOINT": server.url.absoluteString], refreshWindow: .seconds(300), logger: logger
        )
        _ = try await succeeding.credentials()
        try await Task.sleep(for: .milliseconds(2500))
        _ = try await succeeding.credentials()  // a refresh, logged

        #expect(errors.count == 2)
        #expect(handler.text.contains("AKID2"))  // the refresh was logged, by key id
        let everything = handler.text + "\n" + errors.joined(separator: "\n")
        for secret in ["SECRET-", "TOKEN-1", "TOKEN-2", "NOT-THE-TOKEN"] {
            #expect(!everything.contains(secret), "\(secret) leaked")
        }
    }

    /// STS AssumeRole through a profile on a verifying server: a wrong source
    /// secret is refused naming the key id, the right one is accepted; neither
    /// run puts a secret in the logs or errors. (Called by
    /// SignatureVerificationTests, which owns the server.)
    static func checkSignedAssumeRole(on verifying: VerifyingMotoServer) async throws {
        let handler = RecordingLogHandler()
        let logger = Logger(label: "credentials-test") { _ in handler }
        var errors: [String] = []
        // A wrong source secret for an assumed role: STS's refusal names the key, never the secret.
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let credentialsFile = directory.appendingPathComponent("credentials")
        try """
            [source]
            aws_access_key_id = \(verifying.credentials.accessKeyID)
            aws_secret_access_key = WRONG-SOURCE-SECRET
            [app]
            role_arn = arn:aws:iam::123456789012:role/app
            source_profile = source
            """.write(to: credentialsFile, atomically: true, encoding: .utf8)
        let assumed = try Self.provider(
            Self.environment(["AWS_SHARED_CREDENTIALS_FILE": credentialsFile.path, "AWS_PROFILE": "app"]),
            sts: verifying.endpoint, logger: logger
        )
        do { _ = try await assumed.credentials() } catch { errors.append("\(error)") }

        // The same role with the right source secret: the verifying server accepts the signed AssumeRole.
        try """
            [source]
            aws_access_key_id = \(verifying.credentials.accessKeyID)
            aws_secret_access_key = \(verifying.credentials.secretAccessKey)
            [app]
            role_arn = arn:aws:iam::123456789012:role/app
            source_profile = source
            """.write(to: credentialsFile, atomically: true, encoding: .utf8)
        let accepted = try Self.provider(
            Self.environment(["AWS_SHARED_CREDENTIALS_FILE": credentialsFile.path, "AWS_PROFILE": "app"]),
            sts: verifying.endpoint, logger: logger
        )
        let roleCredentials = try await accepted.credentials()
        #expect(roleCredentials.sessionToken?.isEmpty == false)
        #expect(roleCredentials.accessKeyID != verifying.credentials.accessKeyID)

        #expect(errors.count == 1)
        #expect(errors.first?.contains(verifying.credentials.accessKeyID) == true)
        #expect(errors.first?.contains("SignatureDoesNotMatch") == true)
        let everything = handler.text + "\n" + errors.joined(separator: "\n")
        for secret in ["WRONG-SOURCE-SECRET", verifying.credentials.secretAccessKey, roleCredentials.secretAccessKey,
                       roleCredentials.sessionToken ?? "-"] {
            #expect(!everything.contains(secret), "a secret leaked")
        }
    }
}
