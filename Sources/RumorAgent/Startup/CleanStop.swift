import Foundation
import RumorCore

/// What an agent that stops cleanly leaves in its data directory for its next start, so that
/// watchers resume across the restart as if nothing happened: the change log's epoch (its seqs
/// still mean the same changes) and how far expiries were reported (none is reported twice).
///
/// The file is read and removed at start, and written again only after the last save of a clean
/// stop. A crash (kill -9) leaves none, so the next process takes a new epoch: the seqs it hands
/// out may repeat ones the crashed process gave watchers before its last save, and a watcher
/// that resumes with the old epoch is told (`watch_epoch_changed`) instead of silently skipping
/// changes.
struct CleanStop: Codable, Sendable, Equatable {
    static let fileName = "clean-stop.json"

    /// The change log's epoch: seqs are comparable only within one epoch.
    var epoch: String
    /// Wall milliseconds up to which expiries were reported (`Replication.expiryReportedThrough`).
    var expiryReportedThrough: UInt64
    /// The change log's last seq at the stop: a start whose restored log ends elsewhere (the
    /// state was moved aside with --resync, or removed) does not keep the epoch.
    var lastSeq: UInt64

    /// A new epoch: 16 hex digits, random (a change log started afresh or after a crash).
    static func newEpoch() -> String {
        let value = UInt64.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Reads and removes what the previous process left: nil after a crash, on a first start, or
    /// when the restored change log does not end at `lastSeq` (it is not the log that stopped).
    static func take(from directory: String, lastSeq: UInt64) -> CleanStop? {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        // Removed first: if this process crashes, its successor must not trust the epoch.
        guard (try? FileManager.default.removeItem(atPath: path)) != nil else { return nil }
        guard let stop = try? JSONDecoder().decode(CleanStop.self, from: data), stop.lastSeq == lastSeq else { return nil }
        return stop
    }

    /// Writes the file (atomically) for the next start.
    func save(in directory: String) throws {
        let data = try JSONEncoder().encode(self)
        try data.write(to: URL(fileURLWithPath: directory + "/" + Self.fileName), options: .atomic)
    }
}
