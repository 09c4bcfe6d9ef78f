/// The replicated key-value state of one node: per key, the last writer wins by `Version`.
///
/// Merging is a join (maximum over a total order), so it is commutative, associative and
/// idempotent: nodes that have seen the same writes hold the same state, whatever the order,
/// duplication or batching of delivery. Pure: no clock, no I/O.
public struct KeyValueStore: Sendable, Hashable {
    /// Per key, what merge, digests and reads need, compactly: the key is the dictionary's only
    /// copy and the writer a 4-byte index into `writers` (a million keys cost about 110 bytes
    /// each here, values aside).
    private var slots: [String: Slot] = [:]
    /// Writers by index, and the index of each writer.
    private var writers: [Writer] = []
    private var writerIndex: [Writer: UInt32] = [:]
    /// Per writer, how many keys it holds the winning entry of.
    private var winningEntries: [Writer: Int] = [:]
    /// The writers that are running now (each live member's current process), set by the
    /// driver. A writer that is not, and holds no winning entry here, is dropped from the digest
    /// and not taken from peers' digests (a restart must not grow every digest for good).
    public var currentWriters: Set<Writer> = []
    /// The entries, built from the slots on access.
    public var entries: Entries { Entries(slots: slots, writers: writers) }
    /// For each writer, a timestamp up to which this store holds every write of that writer, or a
    /// newer write of the same key (a Scuttlebutt-style version summary). A peer whose digest is
    /// behind ours for some writer may be missing writes.
    ///
    /// Soundness is what makes deltas complete, so the digest only advances where the prefix is
    /// known to be whole: for our own writes, and after merging a full delta from a peer
    /// (`acknowledge`). Entries pushed one by one may arrive out of order and do not advance it.
    public private(set) var digest: Digest = [:]
    /// Per writer, timestamps of writes held beyond `digest` (or superseded here by a newer write
    /// of the same key): pushes that arrived ahead of anti-entropy. A pull request carries them
    /// so the answer leaves them out. Pruned as the digest advances; not saved (after a restart
    /// the first pulls may resend a few entries).
    public private(set) var heldBeyondDigest: [Writer: Set<HybridTimestamp>] = [:]
    /// Per writer, its winning entries' (timestamp, key) in timestamp order, so a delta costs
    /// what it returns rather than a scan of every key. Entries since overwritten or forgotten
    /// stay until `compactIndex` and are skipped.
    var index: [Writer: WriterIndex] = [:]
    /// A 64-bit digest of the set of winning versions (XOR of a hash of each): two stores with
    /// the same fingerprint hold the same writes, so anti-entropy between them has nothing to
    /// send. Kept up to date on every change.
    public private(set) var fingerprint: UInt64 = 0
    /// `pageBytes` of every entry held, kept up to date (for catch-up estimates).
    public private(set) var pagedBytes = 0
    /// Tombstones held, kept up to date (`counts` without a scan).
    private var tombstones = 0
    /// Live values with a time to live, kept up to date: with none and no tombstones, the
    /// round's expiry and collection scans are skipped.
    public private(set) var expiringValues = 0

    public init() {}

    /// The fingerprint contribution of one version: FNV-1a over the writer's name, then its
    /// generation and the timestamp mixed in, then a SplitMix64 finalizer (the same on every
    /// node and run, unlike `Hasher`).
    static func fingerprint(of version: Version) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in version.writer.name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ version.writer.generation) &* 0x100_0000_01b3
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
        hasher.combine(slots.count)
        hasher.combine(fingerprint)
        hasher.combine(digest)
    }

    /// Restores a store saved earlier (entries and digest as they were).
    public init(entries: some Sequence<Entry>, digest: Digest) {
        for entry in entries {
            let slot = Slot(entry, writer: intern(entry.version.writer))
            if let replaced = slots.updateValue(slot, forKey: entry.key) {
                let old = replaced.entry(entry.key, writers: writers)
                fingerprint ^= Self.fingerprint(of: old.version)
                pagedBytes -= Self.pageBytes(of: old)
                count(old, -1)
                winningEntries[old.version.writer, default: 1] -= 1
            }
            fingerprint ^= Self.fingerprint(of: entry.version)
            pagedBytes += Self.pageBytes(of: entry)
            count(entry, 1)
            winningEntries[entry.version.writer, default: 0] += 1
            index[entry.version.writer, default: WriterIndex()].insert(entry.version.timestamp, entry.key)
        }
        self.digest = digest
    }

    /// Keeps `tombstones` and `expiringValues` up to date as `entry` comes (`by` 1) or goes (-1).
    private mutating func count(_ entry: Entry, _ by: Int) {
        if entry.isTombstone {
            tombstones += by
        } else if entry.expiresAtMilliseconds != nil {
            expiringValues += by
        }
    }

    /// Merges one entry received from elsewhere. Returns true when it became the key's winner.
    @discardableResult
    public mutating func merge(_ entry: Entry) -> Bool {
        let writer = entry.version.writer
        if digest[writer].map({ $0 < entry.version.timestamp }) ?? true {
            heldBeyondDigest[writer, default: []].insert(entry.version.timestamp)
        }
        if let current = slots[entry.key]?.entry(entry.key, writers: writers) {
            if current.version >= entry.version { return false }
            fingerprint ^= Self.fingerprint(of: current.version)
            pagedBytes -= Self.pageBytes(of: current)
            count(current, -1)
            winningEntries[current.version.writer, default: 1] -= 1
        }
        fingerprint ^= Self.fingerprint(of: entry.version)
        pagedBytes += Self.pageBytes(of: entry)
        count(entry, 1)
        winningEntries[writer, default: 0] += 1
        var slot = Slot(entry, writer: intern(writer))
        slot.sequence = slots[entry.key]?.sequence ?? 0
        slots[entry.key] = slot
        index[writer, default: WriterIndex()].insert(entry.version.timestamp, entry.key)
        if index[writer]!.count > 2 * slots.count + 1024 { compactIndex() }
        return true
    }

    /// Applies a write made on this node (its writer is this process), advancing its digest.
    @discardableResult
    public mutating func writeLocally(_ entry: Entry) -> Bool {
        advance(entry.version.writer, to: entry.version.timestamp)
        return merge(entry)
    }

    /// Merges entries; returns those that won.
    @discardableResult
    public mutating func merge(_ batch: some Sequence<Entry>) -> [Entry] {
        batch.filter { merge($0) }
    }

    /// After merging a push that holds all of `writer`'s writes after `after` up to `through`:
    /// if we already held everything up to `after`, we now hold everything up to `through`.
    /// (Every store holds a writer's writes up to `.zero`, so a writer's first push can start
    /// its chain.) Returns whether the digest advanced.
    @discardableResult
    public mutating func acknowledgeChain(writer: Writer, after: HybridTimestamp, through: HybridTimestamp) -> Bool {
        let held = digest[writer] ?? .zero
        guard held >= after, held < through else { return false }
        advance(writer, to: through)
        return true
    }

    /// After merging `delta(since: ourDigest)` computed by a peer whose digest is `peerDigest`,
    /// we hold everything the peer held: take the maximum of both digests (less writers that
    /// have stopped and of whom this store holds nothing, see `currentWriters`).
    public mutating func acknowledge(_ peerDigest: Digest) {
        // Usually the peer's digest is ours: the first test skips those writers in one lookup.
        for (writer, timestamp) in peerDigest where digest[writer].map({ $0 < timestamp }) ?? true && !isForgettable(writer) {
            advance(writer, to: timestamp)
        }
    }

    mutating func advance(_ writer: Writer, to timestamp: HybridTimestamp) {
        guard digest[writer].map({ $0 < timestamp }) ?? true else { return }
        digest[writer] = timestamp
        if let held = heldBeyondDigest[writer] {
            let ahead = held.filter { $0 > timestamp }
            heldBeyondDigest[writer] = ahead.isEmpty ? nil : ahead
        }
    }

    /// A writer that is not running and holds no winning entry here: its digest value only
    /// makes every pull longer (absent, a peer sends whatever of it we lack, which is nothing).
    private func isForgettable(_ writer: Writer) -> Bool {
        (winningEntries[writer] ?? 0) == 0 && !currentWriters.contains(writer)
    }

    /// Drops from the digest and index the writers `isForgettable` names. Returns how many.
    @discardableResult
    public mutating func forgetStoppedWriters() -> Int {
        // A loop, not `filter(isForgettable)`: that closure would capture a copy of the store,
        // and the removals below would then copy every table (a cost per round at 100k nodes).
        var stopped: [Writer] = []
        for writer in digest.keys where isForgettable(writer) { stopped.append(writer) }
        for writer in stopped {
            digest[writer] = nil
            index[writer] = nil
            heldBeyondDigest[writer] = nil
            winningEntries[writer] = nil
        }
        return stopped.count
    }

    /// The winning entries a peer with `peerDigest` may lack: those whose writer's timestamp is
    /// beyond what the peer has seen from that writer, except the ones it lists in `peerHeld`.
    public func delta(since peerDigest: Digest, held peerHeld: HeldWrites = [:]) -> [Entry] {
        var out: [Entry] = []
        for (writer, writes) in index {
            let held = peerHeld[writer] ?? []
            let missing = writes.after(peerDigest[writer])
            // Usually the peer holds all of them (pushes arrive ahead of the digest): skip the
            // writer without touching a key.
            if missing.count <= held.count, missing.allSatisfy({ Self.sortedContains(held, $0.timestamp) }) { continue }
            for position in missing where !Self.sortedContains(held, position.timestamp) {
                guard let entry = entries[position.key], entry.version.timestamp == position.timestamp,
                    entry.version.writer == writer
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
    public func heldSummary(limit: Int = 1024) -> HeldWrites {
        if heldBeyondDigest.isEmpty { return [:] }
        if heldBeyondDigest.values.reduce(0, { $0 + $1.count }) <= limit { return heldBeyondDigest.mapValues { $0.sorted() } }
        var all = heldBeyondDigest.flatMap { writer, stamps in stamps.map { (writer, $0) } }
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
            guard var slot = slots[entry.key], slot.timestamp == entry.version.timestamp,
                writers[Int(slot.writer)] == entry.version.writer, let value = slot.value
            else { continue }
            slot.storedBytes = UInt32(value.count) + 1
            slot.value = nil
            slots[entry.key] = slot
            evicted += 1
        }
        return evicted
    }

    /// The live value of `key` at `nowMilliseconds`: nil when absent, deleted or expired.
    public func value(of key: String, nowMilliseconds: UInt64) -> Entry? {
        guard let entry = slots[key]?.entry(key, writers: writers), !entry.isTombstone else { return nil }
        if let expiry = entry.expiresAtMilliseconds, expiry <= nowMilliseconds { return nil }
        return entry
    }

    /// Forgets tombstones, and values whose time to live ran out, older than
    /// `graceMilliseconds`. Returns the keys removed.
    @discardableResult
    public mutating func collectTombstones(nowMilliseconds: UInt64, graceMilliseconds: UInt64) -> [String] {
        guard tombstones > 0 || expiringValues > 0 else { return [] }
        let horizon = nowMilliseconds > graceMilliseconds ? nowMilliseconds - graceMilliseconds : 0
        let expired = entries.values.filter { entry in
            if entry.isTombstone { return entry.version.timestamp.milliseconds < horizon }
            if let expiry = entry.expiresAtMilliseconds { return expiry < horizon }
            return false
        }
        for entry in expired {
            if let removed = slots.removeValue(forKey: entry.key) { forgottenThrough = max(forgottenThrough, removed.sequence) }
            count(entry, -1)
            winningEntries[entry.version.writer, default: 1] -= 1
            fingerprint ^= Self.fingerprint(of: entry.version)
            pagedBytes -= Self.pageBytes(of: entry)
        }
        if !expired.isEmpty { compactIndex() }
        return expired.map(\.key)
    }

    /// Live keys and tombstones held.
    public var counts: (values: Int, tombstones: Int) {
        (slots.count - tombstones, tombstones)
    }

    /// The latest change-log position of `key` (see `ChangeLog`), if it is held.
    public func sequence(of key: String) -> UInt64? {
        slots[key]?.sequence
    }

    /// Records `key`'s latest change-log position.
    public mutating func setSequence(_ sequence: UInt64, of key: String) {
        slots[key]?.sequence = sequence
    }

    /// The highest change-log position of a key forgotten so far (see `collectTombstones`).
    public private(set) var forgottenThrough: UInt64 = 0

    /// The index of `writer` in `writers`, added when new.
    private mutating func intern(_ writer: Writer) -> UInt32 {
        if let known = writerIndex[writer] { return known }
        let index = UInt32(writers.count)
        writers.append(writer)
        writerIndex[writer] = index
        return index
    }

    /// Drops index positions of entries since overwritten or forgotten.
    private mutating func compactIndex() {
        for (writer, writes) in index {
            let interned = writerIndex[writer]
            let live = writes.positions.filter { timestamp, key in
                slots[key].map { $0.writer == interned && $0.timestamp == timestamp } ?? false
            }
            index[writer] = live.isEmpty ? nil : WriterIndex(positions: Array(live))
        }
    }
}

/// One key's state in a store: an `Entry` less its key, its writer as an index, and its
/// change-log position (40 bytes).
private struct Slot: Sendable, Hashable {
    var value: [UInt8]?
    var timestamp: HybridTimestamp
    /// Milliseconds since the epoch; 0: no expiry.
    var expiry: UInt64
    /// The key's latest change-log position (see `ChangeLog`); 0 until recorded.
    var sequence: UInt64 = 0
    /// 0: the value (or tombstone) is in `value`; else the size of the value kept on disk, plus 1.
    var storedBytes: UInt32
    /// The writer's index, and in the top bit whether the value is ephemeral.
    private var writerAndFlags: UInt32

    init(_ entry: Entry, writer: UInt32) {
        value = entry.value
        timestamp = entry.version.timestamp
        expiry = entry.expiresAtMilliseconds ?? 0
        storedBytes = entry.storedValueBytes.map { UInt32($0) + 1 } ?? 0
        writerAndFlags = writer | (entry.ephemeral ? 1 << 31 : 0)
    }

    var writer: UInt32 { writerAndFlags & ~(1 << 31) }
    var ephemeral: Bool { writerAndFlags & (1 << 31) != 0 }

    var isTombstone: Bool { value == nil && storedBytes == 0 }

    func entry(_ key: String, writers: [Writer]) -> Entry {
        var entry = Entry(
            key: key, value: value, version: Version(timestamp: timestamp, writer: writers[Int(writer)]),
            expiresAtMilliseconds: expiry == 0 ? nil : expiry, ephemeral: ephemeral)
        if storedBytes > 0 { entry.storedValueBytes = Int(storedBytes - 1) }
        return entry
    }
}

/// A store's entries, read-only: each `Entry` is built from its slot on access.
public struct Entries: Sendable, Equatable, Sequence {
    fileprivate let slots: [String: Slot]
    fileprivate let writers: [Writer]

    public subscript(key: String) -> Entry? { slots[key]?.entry(key, writers: writers) }
    public var count: Int { slots.count }
    public var isEmpty: Bool { slots.isEmpty }
    public var keys: some Collection<String> { slots.keys }
    /// Every entry, in no particular order.
    public var values: some Sequence<Entry> { self }

    public func makeIterator() -> some IteratorProtocol<Entry> {
        let writers = self.writers
        return slots.lazy.map { $0.value.entry($0.key, writers: writers) }.makeIterator()
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.count == rhs.count && lhs.slots.allSatisfy { key, slot in rhs[key] == slot.entry(key, writers: lhs.writers) }
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
