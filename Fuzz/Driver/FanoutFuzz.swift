import Foundation
import FuzzTargets

#if LIBFUZZER
// Built by scripts/fuzz with -sanitize=fuzzer,address: libFuzzer supplies main and calls this
// for every input; FANOUT_FUZZ_TARGET names the target.
let selected: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["FANOUT_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.named(name) else {
        fatalError("FANOUT_FUZZ_TARGET=\(name.debugDescription) is not a fuzz target; one of \(FuzzTargets.all.map(\.name).joined(separator: ", "))")
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    selected.run(bytes)
    return 0
}

// SwiftPM links an executable's entry point as `<module>_main` (main is aliased to it), so libFuzzer's
// own main is not used: this entry point hands the arguments to libFuzzer's driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@_cdecl("FanoutFuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzTestOneInput)
}
#else
/// Without libFuzzer: `fanout-fuzz TARGET FILE|DIRECTORY...` runs the target once on each input
/// (to reproduce a finding, or replay a corpus), and `fanout-fuzz list` names the targets.
@main
struct FanoutFuzz {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first, name != "list" else {
            for target in FuzzTargets.all { print("\(target.name)\t\(target.summary)") }
            return
        }
        guard let target = FuzzTargets.named(name) else {
            FileHandle.standardError.write(Data("fanout-fuzz: error: \(name) is not a fuzz target (fanout-fuzz list)\n".utf8))
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("fanout-fuzz: error: \(path): no such file\n".utf8))
                exit(2)
            }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" }
                : [path]
            for file in files {
                target.run(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
                count += 1
            }
        }
        print("\(target.name): \(count) inputs, no finding")
    }
}
#endif
