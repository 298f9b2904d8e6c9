import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `ChildProcess`, the one way tests start processes. (It lives in TestSupport, which has no test
/// target of its own; its first users, the scripted servers, are in this one.)
@Suite(.timeLimit(.minutes(1))) struct ChildProcessTests {
    @Test func runCapturesEachOutputAndTheExitStatus() async throws {
        let (result, timedOut) = try await ChildProcess.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(!timedOut)
        #expect(result.termination == .exited(3))
        #expect(result.status == 3)
        #expect(result.standardOutput == "out\n")
        #expect(result.standardError == "err\n")
    }

    @Test func runPassesItsInputAndReadsAnOutputLargerThanAPipe() async throws {
        let input = Data((0..<300_000).map { UInt8(ascii: "a") + UInt8($0 % 26) })
        let (result, _) = try await ChildProcess.run("/bin/cat", input: input)
        #expect(result.termination == .exited(0))
        #expect(result.standardOutput.utf8.elementsEqual(input))
    }

    @Test func aChildThatExitsWithoutReadingItsInputIsNoFailure() async throws {
        let (result, _) = try await ChildProcess.run("/bin/sh", ["-c", "exec 0<&-; exit 4"], input: Data(count: 1_000_000))
        #expect(result.termination == .exited(4))
    }

    /// (Killed, not ended by itself: `sleep 30` would have exited 0. No bound on the time taken: on a
    /// loaded machine the cooperative pool's polling can lag by seconds.)
    @Test func runKillsAChildPastItsTimeout() async throws {
        let (result, timedOut) = try await ChildProcess.run("/bin/sleep", ["30"], timeout: .milliseconds(300))
        #expect(timedOut)
        #expect(result.termination == .signalled(SIGKILL))
        #expect(result.status == 128 + SIGKILL)
    }

    @Test func aSignalEndsItAndSignallingItAfterwardsDoesNothing() async throws {
        let child = try ChildProcess("/bin/sleep", ["30"])
        #expect(child.isRunning)
        child.kill()
        #expect(await child.exited() == .signalled(SIGKILL))
        #expect(!child.isRunning)
        child.terminate()  // reaped: its process ID is no longer its own, so nothing is sent
        #expect(child.termination == .signalled(SIGKILL))
    }

    /// A test's thread may block SIGTERM (libdispatch's worker threads block nearly every signal);
    /// the child must not inherit that, or `terminate()` would leave it running.
    @Test func theChildStartsWithSIGTERMDeliverableWhateverTheSpawningThreadBlocks() async throws {
        let child = try await startOffPool {
            var blocked = sigset_t()
            sigemptyset(&blocked)
            sigaddset(&blocked, SIGTERM)
            pthread_sigmask(SIG_BLOCK, &blocked, nil)
            return try ChildProcess("/bin/sleep", ["30"])
        }
        defer { child.kill() }
        child.terminate()
        #expect(await child.exited(timeout: .seconds(10)) == .signalled(SIGTERM))
    }

    @Test func theChildInheritsNoOtherDescriptorOfTheTestProcess() async throws {
        // Foundation's pipes are not close-on-exec: a child that kept one open would hold another test's pipe.
        let pipe = Pipe()
        let fd = pipe.fileHandleForReading.fileDescriptor
        let (result, _) = try await ChildProcess.run("/bin/sh", ["-c", "if [ -e /proc/$$/fd/\(fd) ]; then echo open; else echo closed; fi"])
        #expect(result.standardOutput == "closed\n")
        #expect(fcntl(fd, F_GETFD) >= 0, "the test process's own descriptor stays open")
    }

    @Test func firstLineIsWhatAServerPrintsWhenReady() async throws {
        let child = try ChildProcess("/bin/sh", ["-c", "printf '1234\\nmore\\n'; exec sleep 30"], standardOutput: .capture)
        defer { child.kill() }
        #expect(await child.firstLine(timeout: .seconds(10)) == "1234")
        #expect(child.waitForFirstLine(timeout: .seconds(10)) == "1234")
        #expect(await child.stop(grace: .seconds(5)) == .signalled(SIGTERM))
    }

    @Test func firstLineIsNilWhenTheOutputEndsWithoutOne() async throws {
        let child = try ChildProcess("/bin/sh", ["-c", "printf 'no newline'"], standardOutput: .capture)
        #expect(await child.firstLine(timeout: .seconds(10)) == nil)
        #expect(await child.exited() == .exited(0))
    }

    @Test func bothOutputsCanAppendToOneFile() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("child") + ".log")
        defer { try? FileManager.default.removeItem(at: log) }
        try Data("before\n".utf8).write(to: log)
        let child = try ChildProcess("/bin/sh", ["-c", "echo out; echo err >&2; echo out2"], standardOutput: .file(log), standardError: .file(log))
        #expect(await child.exited() == .exited(0))
        #expect(try String(contentsOf: log, encoding: .utf8) == "before\nout\nerr\nout2\n")
    }

    @Test func closingItsInputEndsAServerThatWatchesIt() async throws {
        let child = try ChildProcess("/bin/cat", standardInput: .pipe, standardOutput: .capture)
        try child.writeInput(Data("hello\n".utf8))
        #expect(await child.firstLine(timeout: .seconds(10)) == "hello")
        child.closeInput()
        #expect(await child.exited(timeout: .seconds(10)) == .exited(0))
        #expect(await child.outputFinished(timeout: .seconds(10)))
    }

    @Test func aMissingExecutableIsAnError() {
        #expect(throws: ChildProcess.Failure.self) { try ChildProcess("/nonexistent/fanout-test-binary") }
    }

    /// The churn that corrupted libdispatch's event loop with Foundation's `Process` and
    /// `readabilityHandler`: many children at once, some killed while they write, outputs captured.
    @Test func manyConcurrentChildrenEachGetTheirOwnOutput() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    if index % 4 == 0 {
                        let child = try ChildProcess(
                            "/bin/sh", ["-c", "echo \(index); exec sleep 30"], standardInput: .pipe, standardOutput: .capture,
                            standardError: .capture)
                        #expect(await child.firstLine(timeout: .seconds(20)) == "\(index)")
                        child.kill()
                        #expect(await child.exited() == .signalled(SIGKILL))
                        #expect(await child.outputFinished(timeout: .seconds(10)))
                    } else {
                        let (result, _) = try await ChildProcess.run("/bin/sh", ["-c", "echo \(index); echo e\(index) >&2"])
                        #expect(result.standardOutput == "\(index)\n")
                        #expect(result.standardError == "e\(index)\n")
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
