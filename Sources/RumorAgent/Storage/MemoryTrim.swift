#if canImport(Glibc)
import Glibc
#endif

/// Hands memory freed in bulk back to the system: glibc keeps freed heap pages mapped otherwise,
/// so a node that loaded a million entries through temporaries, or moved their values to disk,
/// would keep those pages in its RSS for good. Once after start-up, then every 10 s (a walk of
/// the heap's free lists: milliseconds).
enum MemoryTrim {
    #if canImport(Glibc)
    /// glibc's `malloc_trim`, looked up at run time (its header is not in the Glibc module).
    private static let trim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()
    #endif

    static func everyTenSeconds() async {
        while (try? await Task.sleep(for: .seconds(10))) != nil { now() }
    }

    static func now() {
        #if canImport(Glibc)
        _ = trim?(0)
        #endif
    }
}
