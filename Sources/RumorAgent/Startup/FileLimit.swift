#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// The process's open-file limit (RLIMIT_NOFILE), which bounds how many API connections the
/// agent can hold: past it `accept` fails and every client, `rumor get` included, waits.
public enum FileLimit {
    /// The most the soft limit is raised to, even when the hard limit allows more.
    static let ceiling: rlim_t = 65_536

    /// Raises the soft open-file limit to the hard one (at most `ceiling`) and logs what it did.
    /// - Returns: the soft limit in force afterwards (a failure to raise it keeps the old one, logged).
    @discardableResult
    public static func raise(logger: Logger) -> UInt64 {
        var limit = rlimit()
        guard getrlimit(resourceNumber, &limit) == 0 else {
            logger.warning("cannot read the open-file limit (RLIMIT_NOFILE); API connection limits assume 1024")
            return 1024
        }
        let target = min(limit.rlim_max, ceiling)
        guard limit.rlim_cur < target else { return UInt64(limit.rlim_cur) }
        let before = limit.rlim_cur
        limit.rlim_cur = target
        guard setrlimit(resourceNumber, &limit) == 0 else {
            logger.warning("cannot raise the open-file limit", metadata: ["soft": "\(before)", "hard": "\(limit.rlim_max)"])
            return UInt64(before)
        }
        logger.info("raised the open-file limit (RLIMIT_NOFILE)", metadata: ["from": "\(before)", "to": "\(target)"])
        return UInt64(target)
    }

    #if canImport(Glibc)
    private static let resourceNumber = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resourceNumber = RLIMIT_NOFILE
    #endif
}

extension APILimits {
    /// These limits with `maxConnections` lowered, loudly, to what `openFiles` descriptors hold
    /// (`connections(fitting:)`).
    public func fitted(toOpenFiles openFiles: UInt64, logger: Logger) -> APILimits {
        var limits = self
        limits.maxConnections = connections(fitting: openFiles)
        if limits.maxConnections < maxConnections {
            logger.warning(
                "api_max_connections lowered to fit the open-file limit: raise the limit (ulimit -n) to hold more",
                metadata: ["api_max_connections": "\(maxConnections)", "effective": "\(limits.maxConnections)", "open_files": "\(openFiles)"])
        }
        return limits
    }
}
