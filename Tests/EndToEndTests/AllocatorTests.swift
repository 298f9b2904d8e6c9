import FanoutApp
import Testing

@Suite struct AllocatorTests {
    @Test(arguments: [
        ([:], false),
        (["MALLOC_MMAP_THRESHOLD_": "65536"], true),
        (["GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"], true),
        (["GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"], true),
        (["GLIBC_TUNABLES": "glibc.malloc.arena_max=2"], false),
        (["MALLOC_ARENA_MAX": "2"], false),
    ] as [([String: String], Bool)])
    func anOperatorsMMapThresholdWinsOverFanoutsDefault(environment: [String: String], isOperatorsChoice: Bool) {
        #expect(Allocator.environmentSetsMMapThreshold(environment) == isOperatorsChoice)
    }
}
