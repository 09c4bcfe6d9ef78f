#if canImport(Glibc)
import Glibc
#endif

/// Hands memory back to the system every 10 s (and once start-up is over):
/// - heap pages freed in bulk: glibc keeps them mapped otherwise, so a node that loaded a
///   million entries through temporaries, or moved their values to disk, would keep them in
///   its RSS for good (`malloc_trim`: a walk of the free lists, milliseconds);
/// - the pages of code (the binary's and the Swift and Foundation libraries'): start-up
///   touches most of them once (the kernel maps 64 KiB around each fault), and an idle agent
///   needs few of them again. Dropped from the process's mappings they stay in the page cache,
///   and what the agent runs again comes back as a minor fault. Code is never written, so
///   nothing is lost; under a debugger (whose breakpoints are written into code) it is skipped.
enum MemoryTrim {
    #if canImport(Glibc)
    /// glibc's `malloc_trim`, looked up at run time (its header is not in the Glibc module).
    private static let trim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()
    #endif

    /// A second after start-up (once the sockets and the API are up), then every 10 s.
    static func periodically() async {
        guard (try? await Task.sleep(for: .seconds(1))) != nil else { return }
        now()
        while (try? await Task.sleep(for: .seconds(10))) != nil { now() }
    }

    static func now() {
        #if canImport(Glibc)
        _ = trim?(0)
        dropCodePages()
        #endif
    }

    #if canImport(Glibc)
    /// The code mappings (`r-xp`, from a file) in `maps` text (`/proc/self/maps`), as address
    /// ranges. Code is never written, so dropping its pages loses nothing.
    static func codeMappings(in maps: Substring) -> [Range<UInt>] {
        maps.split(separator: "\n").compactMap { line in
            // start-end perms offset device inode [path]
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "r-xp", fields[4] != "0" else { return nil }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), start < end
            else { return nil }
            return start..<end
        }
    }

    private static func dropCodePages() {
        // A debugger's breakpoints are written into code pages: leave them alone then.
        guard read("/proc/self/status").contains("TracerPid:\t0\n") else { return }
        for range in codeMappings(in: Substring(read("/proc/self/maps"))) {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: range.lowerBound), Int(range.upperBound - range.lowerBound), MADV_DONTNEED)
        }
    }

    /// A small /proc file, whole.
    private static func read(_ path: String) -> String {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return "" }
        defer { close(descriptor) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            text += chunk[..<count]
        }
        return String(decoding: text, as: UTF8.self)
    }
    #endif
}
