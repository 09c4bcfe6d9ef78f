import GRDB
import Logging
import RumorAPI

/// Whether saving works: failures (a full disk, an I/O error) are logged at most every 10 s while
/// they last, and the recovery once. Writes are refused meanwhile (`storage_full`); remote state
/// waits in memory and is saved again once the disk takes it.
struct StorageHealth: Sendable {
    private(set) var failing = false
    private var lastLogged: ContinuousClock.Instant?
    private var failuresSinceLog = 0

    /// Whether `error` is the disk (or its quota) being full.
    static func isFull(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_FULL || error.extendedResultCode.rawValue & 0xff == ResultCode.SQLITE_FULL.rawValue
    }

    /// The API error for a local write whose save failed (the write was not made).
    static func writeError(_ error: any Error, directory: String) -> AgentError {
        if isFull(error) {
            return AgentError(
                code: .storageFull, message: "the disk behind --data-dir \(directory) is full: the write was not made",
                hint: "free space on that filesystem; reads go on, and writes succeed again once there is room")
        }
        return AgentError(
            code: .storageFailed, message: "the write could not be saved in \(directory), so it was not made: \(error)",
            hint: "check the disk behind --data-dir; reads go on")
    }

    mutating func failed(_ error: any Error, saving what: String, directory: String, logger: Logger) {
        failuresSinceLog += 1
        let now = ContinuousClock.now
        if !failing || lastLogged.map({ now - $0 >= .seconds(10) }) ?? true {
            logger.error(
                Self.isFull(error) ? "cannot save: the disk is full; refusing writes until there is room" : "cannot save",
                metadata: [
                    "directory": "\(directory)", "saving": "\(what)", "error": "\(error)", "failures": "\(failuresSinceLog)",
                ])
            lastLogged = now
            failuresSinceLog = 0
        }
        failing = true
    }

    mutating func succeeded(directory: String, logger: Logger) {
        guard failing else { return }
        failing = false
        failuresSinceLog = 0
        logger.notice("saving again: the disk takes writes", metadata: ["directory": "\(directory)"])
    }
}
