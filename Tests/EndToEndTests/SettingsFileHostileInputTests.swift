import FanoutApp
import Foundation
import Settings
import TestSupport
import Testing

/// Found by the config fuzz target (Fuzz/Regressions/config): a key with a line break in the
/// configuration file made an error of several lines; it is escaped now.
@Suite struct SettingsFileHostileInputTests {
    @Test func aConfigurationErrorIsOneLineWhateverTheFileHolds() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestServices.uniqueName("config")).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"\r\nbrokers": "b", "kafka": {"properties": ["a\u0000=b"]}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try SettingsLoader.load(flags: [:], environment: [:], configFile: path)
            Issue.record("the file was accepted")
        } catch {
            let text = "\(error)"
            let isOneLine = !text.contains { $0.isNewline }
            #expect(isOneLine, "\(text.debugDescription)")
            #expect(text.contains(#""\r\nbrokers" is not a Fanout setting"#), "\(text)")
        }
    }

    /// The config fuzz target skips empty input (Foundation leaks a buffer reading an empty file, which libFuzzer's
    /// leak check would report against us), so an empty file is checked here instead.
    @Test func anEmptyConfigurationFileIsRefusedInOneLineNamingTheFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestServices.uniqueName("config")).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        do {
            _ = try SettingsLoader.load(flags: [:], environment: [:], configFile: path)
            Issue.record("the empty file was accepted")
        } catch {
            let text = "\(error)"
            #expect(!text.contains { $0.isNewline }, "\(text.debugDescription)")
            #expect(text.contains(path), "\(text)")
        }
    }
}
