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
    /// Per writer, timestamps of writes held beyond `digest` (or superseded here by a newer write
    /// of the same key): pushes that arrived ahead of anti-entropy. A pull request carries them
    /// so the answer leaves them out. Pruned as the digest advances; not saved (after a restart
    /// the first pulls may resend a few entries).
    public private(set) var heldBeyondDigest: [String: Set<HybridTimestamp>] = [:]
    /// Per writer, its winning entries' (timestamp, key) in timestamp order, so a delta costs
    /// what it returns rather than a scan of every key. Entries since overwritten or forgotten
    /// stay until `compactIndex` and are skipped.
    var index: [String: WriterIndex] = [:]
    /// A 64-bit digest of the set of winning versions (XOR of a hash of each): two stores with
    /// the same fingerprint hold the same writes, so anti-entropy between them has nothing to
    /// send. Kept up to date on every change.
    public private(set) var fingerprint: UInt64 = 0
    /// `pageBytes` of every entry held, kept up to date (for catch-up estimates).
    public private(set) var pagedBytes = 0

    public init() {}

    /// The fingerprint contribution of one version: FNV-1a over the writer's name and the
    /// timestamp, then a SplitMix64 finalizer (the same on every node and run, unlike `Hasher`).
    static func fingerprint(of version: Version) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in version.origin.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash ^= version.timestamp.rawValue
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }

    /// Equal when the entries and digest are; `heldBeyondDigest` is a transfer optimization.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.entries == rhs.entries && lhs.digest == rhs.digest
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries)
        hasher.combine(digest)
    }

    /// Restores a store saved earlier (entries and digest as they were).
    public init(entries: some Sequence<Entry>, digest: [String: HybridTimestamp]) {
        for entry in entries {
            if let replaced = self.entries.updateValue(entry, forKey: entry.key) {
                fingerprint ^= Self.fingerprint(of: replaced.version)
                pagedBytes -= Self.pageBytes(of: replaced)
            }
            fingerprint ^= Self.fingerprint(of: entry.version)
            pagedBytes += Self.pageBytes(of: entry)
            index[entry.version.origin, default: WriterIndex()].insert(entry.version.timestamp, entry.key)
        }
        self.digest = digest
    }

    /// Merges one entry received from elsewhere. Returns true when it became the key's winner.
    @discardableResult
    public mutating func merge(_ entry: Entry) -> Bool {
        if digest[entry.version.origin].map({ $0 < entry.version.timestamp }) ?? true {
            heldBeyondDigest[entry.version.origin, default: []].insert(entry.version.timestamp)
        }
        if let current = entries[entry.key] {
            if current.version >= entry.version { return false }
            fingerprint ^= Self.fingerprint(of: current.version)
            pagedBytes -= Self.pageBytes(of: current)
        }
        fingerprint ^= Self.fingerprint(of: entry.version)
        pagedBytes += Self.pageBytes(of: entry)
        entries[entry.key] = entry
        index[entry.version.origin, default: WriterIndex()].insert(entry.version.timestamp, entry.key)
        if index[entry.version.origin]!.count > 2 * entries.count + 1024 { compactIndex() }
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

    /// After merging a push that holds all of `origin`'s writes after `after` up to `through`:
    /// if we already held everything up to `after`, we now hold everything up to `through`.
    /// Returns whether the digest advanced.
    @discardableResult
    public mutating func acknowledgeChain(origin: String, after: HybridTimestamp, through: HybridTimestamp) -> Bool {
        guard let held = digest[origin], held >= after, held < through else { return false }
        advance(origin, to: through)
        return true
    }

    /// After merging `delta(since: ourDigest)` computed by a peer whose digest is `peerDigest`,
    /// we hold everything the peer held: take the maximum of both digests.
    public mutating func acknowledge(_ peerDigest: [String: HybridTimestamp]) {
        for (origin, timestamp) in peerDigest { advance(origin, to: timestamp) }
    }

    mutating func advance(_ origin: String, to timestamp: HybridTimestamp) {
        guard digest[origin].map({ $0 < timestamp }) ?? true else { return }
        digest[origin] = timestamp
        if let held = heldBeyondDigest[origin] {
            let ahead = held.filter { $0 > timestamp }
            heldBeyondDigest[origin] = ahead.isEmpty ? nil : ahead
        }
    }

    /// The winning entries a peer with `peerDigest` may lack: those whose writer's timestamp is
    /// beyond what the peer has seen from that writer, except the ones it lists in `peerHeld`.
    public func delta(since peerDigest: [String: HybridTimestamp], held peerHeld: [String: [HybridTimestamp]] = [:]) -> [Entry] {
        var out: [Entry] = []
        for (origin, writes) in index {
            let held = peerHeld[origin] ?? []
            let missing = writes.after(peerDigest[origin])
            // Usually the peer holds all of them (pushes arrive ahead of the digest): skip the
            // writer without touching a key.
            if missing.count <= held.count, missing.allSatisfy({ Self.sortedContains(held, $0.timestamp) }) { continue }
            for position in missing where !Self.sortedContains(held, position.timestamp) {
                guard let entry = entries[position.key], entry.version.timestamp == position.timestamp,
                    entry.version.origin == origin
                else { continue }
                out.append(entry)
            }
        }
        return out
    }

    /// Whether `sorted` (ascending, as `heldSummary` gives it) holds `timestamp`.
    static func sortedContains(_ sorted: [HybridTimestamp], _ timestamp: HybridTimestamp) -> Bool {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < timestamp { low = middle + 1 } else { high = middle }
        }
        return low < sorted.count && sorted[low] == timestamp
    }

    /// `heldBeyondDigest` for a pull request: at most `limit` timestamps, the newest first.
    public func heldSummary(limit: Int = 1024) -> [String: [HybridTimestamp]] {
        if heldBeyondDigest.isEmpty { return [:] }
        if heldBeyondDigest.values.reduce(0, { $0 + $1.count }) <= limit { return heldBeyondDigest.mapValues { $0.sorted() } }
        var all = heldBeyondDigest.flatMap { origin, stamps in stamps.map { (origin, $0) } }
        if all.count > limit {
            all.sort { $0.1 > $1.1 }
            all.removeLast(all.count - limit)
        }
        return Dictionary(grouping: all, by: \.0).mapValues { $0.map(\.1).sorted() }
    }

    /// Drops from memory the values of these versions (now saved on disk), where they are still
    /// the key's winner: the entries keep their size (`Entry.storedValueBytes`). Returns how many.
    @discardableResult
    public mutating func keepValuesOnDisk(_ saved: some Sequence<Entry>) -> Int {
        var evicted = 0
        for entry in saved {
            guard var current = entries[entry.key], current.version == entry.version, let value = current.value else { continue }
            current.storedValueBytes = value.count
            current.value = nil
            entries[entry.key] = current
            evicted += 1
        }
        return evicted
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
        for entry in expired {
            entries[entry.key] = nil
            fingerprint ^= Self.fingerprint(of: entry.version)
            pagedBytes -= Self.pageBytes(of: entry)
        }
        if !expired.isEmpty { compactIndex() }
        return expired.map(\.key)
    }

    /// Live keys and tombstones held.
    public var counts: (values: Int, tombstones: Int) {
        let tombstones = entries.values.count { $0.isTombstone }
        return (entries.count - tombstones, tombstones)
    }

    /// Drops index positions of entries since overwritten or forgotten.
    private mutating func compactIndex() {
        for (origin, writes) in index {
            let live = writes.positions.filter { timestamp, key in
                entries[key].map { $0.version.origin == origin && $0.version.timestamp == timestamp } ?? false
            }
            index[origin] = live.isEmpty ? nil : WriterIndex(positions: Array(live))
        }
    }
}

/// One writer's entries in timestamp order.
struct WriterIndex: Sendable {
    private(set) var positions: [(timestamp: HybridTimestamp, key: String)] = []

    init() {}

    init(positions: [(timestamp: HybridTimestamp, key: String)]) {
        self.positions = positions
    }

    var count: Int { positions.count }

    /// Appends (the usual case: a writer's timestamps increase) or inserts in order.
    mutating func insert(_ timestamp: HybridTimestamp, _ key: String) {
        if let last = positions.last, last.timestamp > timestamp {
            positions.insert((timestamp, key), at: firstIndex(after: timestamp))
        } else {
            positions.append((timestamp, key))
        }
    }

    /// Positions with a timestamp above `timestamp` (all when nil).
    func after(_ timestamp: HybridTimestamp?) -> ArraySlice<(timestamp: HybridTimestamp, key: String)> {
        guard let timestamp else { return positions[...] }
        return positions[firstIndex(after: timestamp)...]
    }

    private func firstIndex(after timestamp: HybridTimestamp) -> Int {
        var low = 0
        var high = positions.count
        while low < high {
            let middle = (low + high) / 2
            if positions[middle].timestamp <= timestamp { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
