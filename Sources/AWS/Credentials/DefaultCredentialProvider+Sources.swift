import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A source that is configured but cannot give credentials; its message never holds a secret.
struct CredentialSourceFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension DefaultCredentialProvider {
    // MARK: Environment

    nonisolated func loadEnvironment() throws -> Outcome {
        let keyID = value("AWS_ACCESS_KEY_ID")
        let secret = value("AWS_SECRET_ACCESS_KEY")
        switch (keyID, secret) {
        case (nil, nil):
            return .notConfigured("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY unset")
        case (let keyID?, let secret?):
            return .credentials(
                ExpiringCredentials(
                    credentials: AWSCredentials(
                        accessKeyID: keyID, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")
                    ),
                    expiration: nil
                )
            )
        case (nil, _):
            throw CredentialSourceFailure("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
        case (let keyID?, nil):
            throw CredentialSourceFailure("AWS_ACCESS_KEY_ID (\(keyID)) is set but AWS_SECRET_ACCESS_KEY is not")
        }
    }

    // MARK: Web identity

    nonisolated func loadWebIdentity() async throws -> Outcome {
        guard let tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE") else {
            return .notConfigured("AWS_WEB_IDENTITY_TOKEN_FILE unset")
        }
        guard let roleARN = value("AWS_ROLE_ARN") else {
            throw CredentialSourceFailure("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")
        }
        let token: String
        do {
            token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw CredentialSourceFailure("cannot read AWS_WEB_IDENTITY_TOKEN_FILE \(tokenFile)")
        }
        guard !token.isEmpty else { throw CredentialSourceFailure("AWS_WEB_IDENTITY_TOKEN_FILE \(tokenFile) is empty") }
        let credentials = try await sts.assumeRoleWithWebIdentity(
            roleARN: roleARN,
            sessionName: value("AWS_ROLE_SESSION_NAME") ?? defaultSessionName,
            webIdentityToken: token
        )
        return .credentials(credentials)
    }

    // MARK: Shared files

    nonisolated func loadSharedFiles() async throws -> Outcome {
        let files = SharedConfigFiles(environment: environment)
        let explicit = value("AWS_PROFILE") ?? value("AWS_DEFAULT_PROFILE")
        let name = explicit ?? "default"
        guard files.profiles[name] != nil else {
            let paths = [files.credentialsPath, files.configPath].compactMap { $0 }
            let where_ = paths.isEmpty ? "no HOME, AWS_SHARED_CREDENTIALS_FILE or AWS_CONFIG_FILE" : paths.joined(separator: ", ")
            if explicit != nil {
                throw CredentialSourceFailure("profile \"\(name)\" (AWS_PROFILE) is not in \(where_)")
            }
            return .notConfigured("no profile \"default\" in \(where_)")
        }
        guard let credentials = try await credentials(ofProfile: name, files: files, visited: []) else {
            return .notConfigured("profile \"\(name)\" has neither aws_access_key_id nor role_arn")
        }
        return .credentials(credentials)
    }

    /// Static keys, or an assumed role whose source profile is resolved first.
    nonisolated func credentials(ofProfile name: String, files: SharedConfigFiles, visited: [String]) async throws
        -> ExpiringCredentials?
    {
        guard let profile = files.profiles[name] else {
            throw CredentialSourceFailure("source_profile \"\(name)\" (of \"\(visited.last ?? "")\") does not exist")
        }
        if let roleARN = profile["role_arn"], !roleARN.isEmpty {
            guard let sourceName = profile["source_profile"], !sourceName.isEmpty else {
                if let credentialSource = profile["credential_source"] {
                    throw CredentialSourceFailure(
                        "profile \"\(name)\": credential_source = \(credentialSource) is not supported; use source_profile"
                    )
                }
                throw CredentialSourceFailure("profile \"\(name)\" has role_arn but no source_profile")
            }
            if visited.contains(name) {
                throw CredentialSourceFailure("source_profile cycle: \((visited + [name]).joined(separator: " → "))")
            }
            // A profile that is its own source uses its static keys as the source.
            let source: ExpiringCredentials?
            if sourceName == name {
                source = Self.staticCredentials(profile)
            } else {
                source = try await credentials(ofProfile: sourceName, files: files, visited: visited + [name])
            }
            guard let source else {
                throw CredentialSourceFailure("source_profile \"\(sourceName)\" of \"\(name)\" has no credentials")
            }
            do {
                return try await sts.assumeRole(
                    roleARN: roleARN,
                    sessionName: profile["role_session_name"] ?? defaultSessionName,
                    externalID: profile["external_id"],
                    durationSeconds: profile["duration_seconds"].flatMap { Int($0) },
                    credentials: source.credentials
                )
            } catch let error as AWSError {
                throw CredentialSourceFailure("profile \"\(name)\": \(error)")
            }
        }
        return Self.staticCredentials(profile)
    }

    static func staticCredentials(_ profile: [String: String]) -> ExpiringCredentials? {
        guard let keyID = profile["aws_access_key_id"], !keyID.isEmpty,
            let secret = profile["aws_secret_access_key"], !secret.isEmpty
        else { return nil }
        let token = profile["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
        return ExpiringCredentials(
            credentials: AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token),
            expiration: nil
        )
    }

    // MARK: Container endpoint

    static let containerHost = "http://169.254.170.2"

    nonisolated func loadContainer() async throws -> Outcome {
        let url: String
        if let relative = value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            url = Self.containerHost + (relative.hasPrefix("/") ? relative : "/" + relative)
        } else if let full = value("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            url = full
        } else {
            return .notConfigured("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI unset")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        if let tokenFile = value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw CredentialSourceFailure("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(tokenFile)")
            }
            request.headers.add(name: "Authorization", value: token.trimmingCharacters(in: .whitespacesAndNewlines))
        } else if let token = value("AWS_CONTAINER_AUTHORIZATION_TOKEN") {
            request.headers.add(name: "Authorization", value: token)
        }
        var lastFailure = ""
        for attempt in 1...2 {
            do {
                let response = try await CredentialHTTP.execute(request, httpClient: httpClient, timeout: containerTimeout)
                guard response.status == 200 else {
                    lastFailure = "\(url) answered HTTP \(response.status)"
                    if response.status < 500 { break }
                    continue
                }
                guard let credentials = CredentialHTTP.decodeCredentialJSON(response.body) else {
                    throw CredentialSourceFailure(
                        "\(url) answered without AccessKeyId and SecretAccessKey in its JSON"
                    )
                }
                return .credentials(credentials)
            } catch let failure as CredentialHTTP.Failure {
                lastFailure = "\(url): \(failure)"
                if attempt == 2 { break }
            }
        }
        throw CredentialSourceFailure(lastFailure)
    }

    // MARK: EC2 instance metadata (IMDSv2)

    static let instanceMetadataEndpoint = "http://169.254.169.254"

    nonisolated func loadInstanceMetadata() async throws -> Outcome {
        if value("AWS_EC2_METADATA_DISABLED")?.lowercased() == "true" {
            return .notConfigured("AWS_EC2_METADATA_DISABLED=true")
        }
        var base = value("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? Self.instanceMetadataEndpoint
        while base.hasSuffix("/") { base.removeLast() }

        func fetch(_ method: HTTPMethod, _ path: String, headers: [(String, String)]) async throws -> [UInt8] {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let response: CredentialHTTP.Response
            do {
                response = try await CredentialHTTP.execute(request, httpClient: httpClient, timeout: instanceMetadataTimeout)
            } catch let failure as CredentialHTTP.Failure {
                throw CredentialSourceFailure("\(base) (not an EC2 instance?): \(failure)")
            }
            guard response.status == 200 else {
                throw CredentialSourceFailure("\(method) \(base)\(path) answered HTTP \(response.status)")
            }
            return response.body
        }

        let token = String(
            decoding: try await fetch(.PUT, "/latest/api/token", headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")]),
            as: UTF8.self
        )
        let tokenHeader = [("X-aws-ec2-metadata-token", token)]
        let roles = String(
            decoding: try await fetch(.GET, "/latest/meta-data/iam/security-credentials/", headers: tokenHeader),
            as: UTF8.self
        )
        guard let role = roles.split(whereSeparator: \.isNewline).first.map({ $0.trimmingCharacters(in: .whitespaces) }),
            !role.isEmpty
        else {
            throw CredentialSourceFailure("the instance has no IAM role (instance profile)")
        }
        let body = try await fetch(.GET, "/latest/meta-data/iam/security-credentials/\(role)", headers: tokenHeader)
        guard let credentials = CredentialHTTP.decodeCredentialJSON(body) else {
            throw CredentialSourceFailure("the credentials of role \(role) have no AccessKeyId and SecretAccessKey")
        }
        return .credentials(credentials)
    }
}
