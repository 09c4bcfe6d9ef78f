/// The order in which keys last changed on this node, for watchers: every change to a key's
/// visible state takes the next sequence number, and the log keeps only each key's latest change
/// (it is compacted, like the state itself). A watcher that has seen everything up to sequence
/// `n` resumes with `changes(after: n)`.
///
/// Each key's latest sequence number lives with the key in the store (`KeyValueStore.sequence`),
/// not here: the log is the order of changes only, and asks `current` which of its entries are
/// still each key's latest.
///
/// Sequence numbers are local to a node and never reused: forgetting a key (tombstone collection)
/// raises `compactedThrough`, and a watcher behind it may have missed a delete, so it must re-list.
public struct ChangeLog: Sendable {
    /// The newest sequence number handed out.
    public private(set) var last: UInt64 = 0
    /// Changes up to here may be missing: keys changed then have since been forgotten.
    public private(set) var compactedThrough: UInt64 = 0
    /// (sequence, key) in increasing sequence order; pairs whose key changed again since are stale
    /// and skipped, and dropped once they outnumber the live ones (`compact`).
    private var order: [(sequence: UInt64, key: String)] = []

    public init() {}

    /// Restores a saved log: each key's latest sequence number, and the compaction mark.
    public init(restoring sequences: [String: UInt64], compactedThrough: UInt64) {
        order = sequences.map { ($0.value, $0.key) }.sorted { $0.sequence < $1.sequence }
        self.compactedThrough = compactedThrough
        last = max(order.last?.sequence ?? 0, compactedThrough)
    }

    /// Records that `key` changed; returns its new sequence number (which the caller keeps as
    /// the key's latest).
    @discardableResult
    public mutating func record(_ key: String) -> UInt64 {
        last += 1
        order.append((last, key))
        return last
    }

    /// Whether stale pairs outnumber `liveKeys` enough to be worth a `compact`.
    public func needsCompaction(liveKeys: Int) -> Bool { order.count > 2 * liveKeys + 1024 }

    /// Drops the pairs that are no longer their key's latest change.
    public mutating func compact(current: (String) -> UInt64?) {
        order.removeAll { current($0.key) != $0.sequence }
    }

    /// A key whose latest change had this sequence number was forgotten: watchers behind it can
    /// no longer resume.
    public mutating func forgot(through sequence: UInt64) {
        compactedThrough = max(compactedThrough, sequence)
    }

    /// Marks everything so far as compacted (the state was discarded and is being resent).
    public mutating func reset() {
        order = []
        compactedThrough = last
    }

    /// Up to `limit` latest changes after `sequence` of keys starting with `prefix`, oldest first,
    /// and the sequence number scanned up to (resume from there even if nothing matched).
    /// `current` gives each key's latest sequence number.
    public func changes(
        after sequence: UInt64, prefix: String = "", limit: Int = .max, current: (String) -> UInt64?
    ) -> (changes: [(sequence: UInt64, key: String)], scannedThrough: UInt64) {
        var low = 0
        var high = order.count
        while low < high {
            let middle = (low + high) / 2
            if order[middle].sequence <= sequence { low = middle + 1 } else { high = middle }
        }
        var found: [(sequence: UInt64, key: String)] = []
        for change in order[low...] {
            guard change.key.hasPrefix(prefix), current(change.key) == change.sequence else { continue }
            found.append(change)
            if found.count == limit { return (found, change.sequence) }
        }
        return (found, max(sequence, last))
    }
}
