#if canImport(Glibc)
import Glibc
#endif

/// Process-wide settings of the C allocator, applied once at start-up before the work begins.
public enum Allocator {
    /// glibc's `M_MMAP_THRESHOLD` that Fanout fixes: 128 KiB, glibc's initial value.
    ///
    /// glibc raises the threshold to the size of every mmapped block it frees (up to 32 MiB), and
    /// the trim threshold to twice that. After the first GetRecords body (about 1.5 MB) is freed, the
    /// pages, record arrays and bodies that follow come from the per-thread arenas instead, where they
    /// leave holes that the arenas keep; fixed, blocks of 128 KiB and more are mapped and unmapped
    /// one by one. In the mock-cluster pipeline benchmark this lowers the peak RSS by about 5 MB at
    /// the same throughput (docs/operations.md, "Memory").
    public static let mmapThreshold = 128 * 1024

    /// Fixes ``mmapThreshold`` unless the environment sets it already (`MALLOC_MMAP_THRESHOLD_`, or
    /// `glibc.malloc.mmap_threshold` in `GLIBC_TUNABLES`): an operator's choice wins. Does nothing
    /// where the C library is not glibc.
    public static func configure(environment: [String: String]) {
        #if canImport(Glibc)
        guard !environmentSetsMMapThreshold(environment) else { return }
        // <malloc.h> is not part of the Glibc module: look mallopt up instead.
        guard let symbol = dlsym(nil, "mallopt") else { return }  // nil: RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        _ = mallopt(mmapThresholdParameter, Int32(mmapThreshold))
        #endif
    }

    /// Whether `environment` sets glibc's mmap threshold itself.
    public static func environmentSetsMMapThreshold(_ environment: [String: String]) -> Bool {
        environment["MALLOC_MMAP_THRESHOLD_"] != nil || environment["GLIBC_TUNABLES"]?.contains("glibc.malloc.mmap_threshold=") == true
    }

    /// `M_MMAP_THRESHOLD` in glibc's <malloc.h>.
    private static let mmapThresholdParameter: Int32 = -3
}
