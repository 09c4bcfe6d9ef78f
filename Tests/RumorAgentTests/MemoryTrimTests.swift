import Testing

@testable import RumorAgent

/// Which mappings the agent drops pages of: only code read from a file.
struct MemoryTrimTests {
    @Test func onlyCodeMappedFromAFileIsDropped() {
        let maps = """
            55ef3c042000-55ef3c8a1000 r--p 00000000 08:01 1234 /usr/bin/rumor-agent
            55ef3c8a1000-55ef3d4c0000 r-xp 0085f000 08:01 1234 /usr/bin/rumor-agent
            55ef3d4c0000-55ef3d5a0000 rw-p 0147e000 08:01 1234 /usr/bin/rumor-agent
            7f0000000000-7f0000021000 rw-p 00000000 00:00 0
            7f1000000000-7f1000400000 r-xp 00000000 00:00 0
            7f2000000000-7f2000200000 r-xp 00010000 08:01 99 /opt/swift/usr/lib/swift/linux/libswiftCore.so
            7f3000000000-7f3000001000 r-xp 00000000 00:00 0                          [vdso]
            7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
            garbage line
            """
        #expect(MemoryTrim.codeMappings(in: Substring(maps)) == [0x55ef_3c8a_1000..<0x55ef_3d4c_0000, 0x7f20_0000_0000..<0x7f20_0020_0000])
    }
}
