import Foundation
import FuzzTargets
import Testing

/// Every committed seed (Fuzz/Corpus/<target>/) and every input that once was a finding
/// (Fuzz/Regressions/<target>/) runs through its fuzz target in the normal test suite: a
/// regression crashes this test process.
@Suite struct FuzzCorpusTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func inputs(_ kind: String, _ target: String) throws -> [URL] {
        let directory = fuzzDirectory.appendingPathComponent(kind).appendingPathComponent(target)
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func seedCorpusRunsWithoutFinding(target name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let seeds = try Self.inputs("Corpus", name)
        #expect(seeds.count >= 3, "Fuzz/Corpus/\(name) needs seeds from the tests' real examples")
        for file in seeds { target.run(Array(try Data(contentsOf: file))) }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func formerFindingsStayFixed(target name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        for file in try Self.inputs("Regressions", name) { target.run(Array(try Data(contentsOf: file))) }
    }

    @Test func everyTargetHasACorpusDirectoryAndNoOtherDirectoryExists() throws {
        let corpus = try FileManager.default.contentsOfDirectory(atPath: Self.fuzzDirectory.appendingPathComponent("Corpus").path)
        #expect(Set(corpus) == Set(FuzzTargets.all.map(\.name)))
    }
}
