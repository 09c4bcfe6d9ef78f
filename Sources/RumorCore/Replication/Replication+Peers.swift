/// What this node knows of its peers' processes and state: which process each live member runs
/// (for ephemeral values), and how its state compared with each peer's at their last exchange.
extension Replication {
    /// How this node's state compared with a peer's at their last anti-entropy exchange.
    public enum PeerSync: Sendable, Hashable {
        /// The state fingerprints matched: both held the same writes.
        case inSync(atMilliseconds: UInt64)
        /// They differed: the peer lacked `peerLacks` of this node's versions (by its digest),
        /// and when that is 0, this node lacked some of the peer's.
        case differs(peerLacks: Int, atMilliseconds: UInt64)
    }

    /// Notes how our state compares with `peer`'s, whose `fingerprint` came with its digest.
    mutating func compare(with peer: String, fingerprint: UInt64?, peerLacks: Int, wallMilliseconds: UInt64) {
        guard let fingerprint else { return }
        peerSync[peer] =
            fingerprint == store.fingerprint
            ? .inSync(atMilliseconds: wallMilliseconds) : .differs(peerLacks: peerLacks, atMilliseconds: wallMilliseconds)
    }

    /// Records the process the member `name` runs now (`writer`), or that it runs none (it
    /// failed or left: nil). Ephemeral entries of its earlier processes stay absent for good.
    /// Returns the entries whose visibility changed.
    @discardableResult
    public mutating func member(_ name: String, runs writer: Writer?) -> [Entry] {
        guard name != localName else { return [] }
        let before = liveWriters[name]
        guard before != writer else { return [] }
        liveWriters[name] = writer
        // What a former process held says nothing of what this one holds.
        peerDigests[name] = nil
        peerSync[name] = nil
        store.currentWriters = Set(liveWriters.values)
        return store.entries.values.filter { entry in
            entry.ephemeral && !entry.isTombstone && (entry.version.writer == before || entry.version.writer == writer)
        }
    }

    /// Whether the process that wrote `version` runs now (its ephemeral values are live).
    public func isRunning(_ writer: Writer) -> Bool {
        liveWriters[writer.name] == writer
    }
}
