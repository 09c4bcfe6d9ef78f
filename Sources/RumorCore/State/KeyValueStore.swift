/// The replicated key-value state of one node: per key, the last writer wins by `Version`.
///
/// Merging is a join (maximum over a total order), so it is commutative, associative and
/// idempotent: nodes that have seen the same writes hold the same state, whatever the order,
/// duplication or batching of delivery. Pure: no clock, no I/O.
public struct KeyValueStore: Sendable, Hashable {
    public private(set) var entries: [String: Entry] = [:]
    /// For each writer, a timestamp up to which this store holds every write of that writer, or a
    /// newer write of the same key (a Scuttlebutt-style version summary). A peer whose digest is
    /// behind ours for some writer may be missing writes.
    ///
    /// Soundness is what makes deltas complete, so the digest only advances where the prefix is
    /// known to be whole: for our own writes, and after merging a full delta from a peer
    /// (`acknowledge`). Entries pushed one by one may arrive out of order and do not advance it.
    public private(set) var digest: [String: HybridTimestamp] = [:]

    public init() {}

    /// Restores a store saved earlier (entries and digest as they were).
    public init(entries: some Sequence<Entry>, digest: [String: HybridTimestamp]) {
        for entry in entries { self.entries[entry.key] = entry }
        self.digest = digest
    }

    /// Merges one entry received from elsewhere. Returns true when it became the key's winner.
    @discardableResult
    public mutating func merge(_ entry: Entry) -> Bool {
        if let current = entries[entry.key], current.version >= entry.version {
            return false
        }
        entries[entry.key] = entry
        return true
    }

    /// Applies a write made on this node (its origin is this node), advancing its digest.
    @discardableResult
    public mutating func writeLocally(_ entry: Entry) -> Bool {
        advance(entry.version.origin, to: entry.version.timestamp)
        return merge(entry)
    }

    /// Merges entries; returns those that won.
    @discardableResult
    public mutating func merge(_ batch: some Sequence<Entry>) -> [Entry] {
        batch.filter { merge($0) }
    }

    /// After merging `delta(since: ourDigest)` computed by a peer whose digest is `peerDigest`,
    /// we hold everything the peer held: take the maximum of both digests.
    public mutating func acknowledge(_ peerDigest: [String: HybridTimestamp]) {
        for (origin, timestamp) in peerDigest { advance(origin, to: timestamp) }
    }

    private mutating func advance(_ origin: String, to timestamp: HybridTimestamp) {
        if digest[origin].map({ $0 < timestamp }) ?? true { digest[origin] = timestamp }
    }

    /// The winning entries a peer with `peerDigest` may lack: those whose writer's timestamp is
    /// beyond what the peer has seen from that writer.
    public func delta(since peerDigest: [String: HybridTimestamp]) -> [Entry] {
        entries.values.filter { entry in
            peerDigest[entry.version.origin].map { $0 < entry.version.timestamp } ?? true
        }
    }

    /// The live value of `key` at `nowMilliseconds`: nil when absent, deleted or expired.
    public func value(of key: String, nowMilliseconds: UInt64) -> Entry? {
        guard let entry = entries[key], !entry.isTombstone else { return nil }
        if let expiry = entry.expiresAtMilliseconds, expiry <= nowMilliseconds { return nil }
        return entry
    }

    /// Forgets tombstones, and values whose time to live ran out, older than
    /// `graceMilliseconds`. Returns the keys removed.
    @discardableResult
    public mutating func collectTombstones(nowMilliseconds: UInt64, graceMilliseconds: UInt64) -> [String] {
        let horizon = nowMilliseconds > graceMilliseconds ? nowMilliseconds - graceMilliseconds : 0
        let expired = entries.values.filter { entry in
            if entry.isTombstone { return entry.version.timestamp.milliseconds < horizon }
            if let expiry = entry.expiresAtMilliseconds { return expiry < horizon }
            return false
        }
        for entry in expired { entries[entry.key] = nil }
        return expired.map(\.key)
    }

    /// Live keys and tombstones held.
    public var counts: (values: Int, tombstones: Int) {
        let tombstones = entries.values.count { $0.isTombstone }
        return (entries.count - tombstones, tombstones)
    }
}
