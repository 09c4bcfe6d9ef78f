#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import GRDB
import NIOCore

/// Whether a storage failure is the disk being full (ENOSPC), so that start-up errors say so
/// rather than suggest permissions or another agent.
enum DiskFull {
    /// Free space on a filesystem, as `statvfs` reports it to unprivileged writers.
    struct FreeSpace: Sendable, Hashable {
        var bytes: UInt64
        var inodes: UInt64
    }

    /// Below this many free bytes a filesystem counts as full: SQLite needs a few pages to
    /// create or grow its file and write-ahead log.
    static let nearlyFull: UInt64 = 64 << 10

    /// Whether `error`, from storage on a filesystem with `free` space, is the disk being full:
    /// SQLite's SQLITE_FULL, an ENOSPC or EDQUOT the error carries, or (when the error says
    /// nothing) a filesystem with almost no bytes or no inodes left.
    static func isCause(of error: any Error, free: FreeSpace?) -> Bool {
        if StorageHealth.isFull(error) { return true }
        if let code = errnoCode(of: error), code == ENOSPC || code == EDQUOT { return true }
        if let error = error as? CocoaError, error.code == .fileWriteOutOfSpace { return true }
        guard let free else { return false }
        return free.bytes < nearlyFull || free.inodes == 0
    }

    /// The free space of the filesystem holding `path` (or its nearest existing parent).
    static func freeSpace(at path: String) -> FreeSpace? {
        var candidate = path
        while !candidate.isEmpty {
            var stats = statvfs()
            if statvfs(candidate, &stats) == 0 {
                return FreeSpace(bytes: UInt64(stats.f_bavail) * UInt64(stats.f_frsize), inodes: UInt64(stats.f_favail))
            }
            guard errno == ENOENT, candidate != "/" else { return nil }
            candidate = (candidate as NSString).deletingLastPathComponent
        }
        return nil
    }

    /// The hint for a start-up storage failure in `directory`: the full disk when that is the
    /// cause, else `otherwise`.
    static func hint(for error: any Error, directory: String, otherwise: String) -> String {
        hint(for: error, free: freeSpace(at: directory), directory: directory, otherwise: otherwise)
    }

    static func hint(for error: any Error, free: FreeSpace?, directory: String, otherwise: String) -> String {
        guard isCause(of: error, free: free) else { return otherwise }
        let left = free.map { " (\($0.bytes / 1024) KiB and \($0.inodes) inodes free)" } ?? ""
        return "the disk holding --data-dir \(directory) is full (ENOSPC)\(left): free space on that filesystem, or pass a --data-dir on another one"
    }

    /// The errno an error carries, if any (POSIX, NIO, or a Foundation error's underlying one).
    private static func errnoCode(of error: any Error) -> Int32? {
        if let error = error as? POSIXError { return error.code.rawValue }
        if let error = error as? IOError { return error.errnoCode }
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        if let underlying, underlying.domain == NSPOSIXErrorDomain { return Int32(underlying.code) }
        return nil
    }
}
