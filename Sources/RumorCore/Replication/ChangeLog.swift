/// The order in which keys last changed on this node, for watchers: every change to a key's
/// visible state takes the next sequence number, and the log keeps only each key's latest change
/// (it is compacted, like the state itself). A watcher that has seen everything up to sequence
/// `n` resumes with `changes(after: n)`.
///
/// Sequence numbers are local to a node and never reused: forgetting a key (tombstone collection)
/// raises `compactedThrough`, and a watcher behind it may have missed a delete, so it must re-list.
public struct ChangeLog: Sendable {
    /// The newest sequence number handed out.
    public private(set) var last: UInt64 = 0
    /// Changes up to here may be missing: keys changed then have since been forgotten.
    public private(set) var compactedThrough: UInt64 = 0
    private var sequenceOfKey: [String: UInt64] = [:]
    /// (sequence, key) in increasing sequence order; pairs whose key changed again since are stale
    /// and skipped, and dropped once they outnumber the live ones.
    private var order: [(sequence: UInt64, key: String)] = []

    public init() {}

    /// Restores a saved log: each key's latest sequence number, and the compaction mark.
    public init(restoring sequences: [String: UInt64], compactedThrough: UInt64) {
        sequenceOfKey = sequences
        order = sequences.map { ($0.value, $0.key) }.sorted { $0.sequence < $1.sequence }
        self.compactedThrough = compactedThrough
        last = max(order.last?.sequence ?? 0, compactedThrough)
    }

    /// Records that `key` changed; returns its new sequence number.
    @discardableResult
    public mutating func record(_ key: String) -> UInt64 {
        last += 1
        sequenceOfKey[key] = last
        order.append((last, key))
        if order.count > 2 * sequenceOfKey.count + 1024 { dropStale() }
        return last
    }

    /// Removes a forgotten key; watchers behind its last change can no longer resume.
    public mutating func forget(_ key: String) {
        guard let sequence = sequenceOfKey.removeValue(forKey: key) else { return }
        compactedThrough = max(compactedThrough, sequence)
    }

    /// Marks everything so far as compacted (the state was discarded and is being resent).
    public mutating func reset() {
        sequenceOfKey = [:]
        order = []
        compactedThrough = last
    }

    /// The latest sequence number of `key`, if it is in the log.
    public func sequence(of key: String) -> UInt64? {
        sequenceOfKey[key]
    }

    /// Up to `limit` latest changes after `sequence` of keys starting with `prefix`, oldest first,
    /// and the sequence number scanned up to (resume from there even if nothing matched).
    public func changes(after sequence: UInt64, prefix: String = "", limit: Int = .max)
        -> (changes: [(sequence: UInt64, key: String)], scannedThrough: UInt64)
    {
        var low = 0
        var high = order.count
        while low < high {
            let middle = (low + high) / 2
            if order[middle].sequence <= sequence { low = middle + 1 } else { high = middle }
        }
        var found: [(sequence: UInt64, key: String)] = []
        for change in order[low...] {
            guard sequenceOfKey[change.key] == change.sequence, change.key.hasPrefix(prefix) else { continue }
            found.append(change)
            if found.count == limit { return (found, change.sequence) }
        }
        return (found, max(sequence, last))
    }

    private mutating func dropStale() {
        order.removeAll { sequenceOfKey[$0.key] != $0.sequence }
    }
}
