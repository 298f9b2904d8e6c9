import Foundation
import Router
import TestSupport
import Testing

/// The committed JSON Schema accepts every example routes file that Fanout accepts, and refuses bad ones.
/// The schema is checked with python's `jsonschema` (installed by scripts/install-deps).
@Suite struct RoutesSchemaTests {
    static let root = TestServices.packageRoot

    static var examples: [String] {
        let directory = root.appendingPathComponent("examples/routes")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return [root.appendingPathComponent("routes.json").path]
            + names.filter { $0.hasSuffix(".json") }.sorted().map { directory.appendingPathComponent($0).path }
    }

    /// Runs the schema over a file; returns python's verdict: nil when valid, else the error.
    static func schemaErrors(_ path: String) async throws -> String? {
        let script = """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))), key=str)
            print("\\n".join(e.message for e in errors))
            sys.exit(1 if errors else 0)
            """
        let (result, _) = try await ChildProcess.run(
            "/usr/bin/env", ["python3", "-c", script, root.appendingPathComponent("schemas/routes.schema.json").path, path])
        let text = result.standardOutput + result.standardError
        if text.contains("ModuleNotFoundError") {
            Issue.record("python's jsonschema is missing: run scripts/install-deps")
        }
        return result.status == 0 ? nil : text
    }

    @Test func thereAreExamples() {
        #expect(Self.examples.count >= 3)
    }

    @Test(arguments: examples)
    func everyExampleIsValidForFanoutAndForTheSchema(path: String) async throws {
        _ = try RoutesFile.load(path: path)
        #expect(try await Self.schemaErrors(path) == nil)
    }

    @Test(arguments: [
        #"{"version": 2, "topics": {}, "routes": []}"#,
        #"{"version": 1, "topics": {"t": {"partitions": 0}}, "routes": []}"#,
        #"{"version": 1, "topics": {}, "routes": [{"name": "r", "events": ["A**"], "to": ["t"]}]}"#,
        #"{"version": 1, "topics": {}, "routes": [{"name": "r", "events": ["A"], "to": ["t"], "colour": "red"}]}"#,
        #"{"version": 1, "topics": {}, "routes": [{"name": "r", "events": ["A"], "to": ["t"], "where": {"payload": {"total": 5}}}]}"#,
        #"{"version": 1, "topics": {}, "routes": [{"name": "r", "events": ["A"], "to": ["t"], "where": {"payload": {"total": [{"regex": "x"}]}}}]}"#,
        #"{"version": 1, "topics": {}, "routes": [], "unrouted": "drop"}"#,
    ])
    func theSchemaRefusesBadFiles(text: String) async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestServices.uniqueName("schema")).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await Self.schemaErrors(path) != nil)
        #expect(throws: RoutesFileError.self) { try RoutesFile.load(path: path) }
    }
}
