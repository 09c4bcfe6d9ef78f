/// The writes someone waits on (`put --wait`): which peers acknowledged or refused them, or sent
/// a digest that shows them held.
extension Replication {
    /// `peer` reports holding these versions (or newer writes of their keys).
    public mutating func receiveAcknowledgement(_ versions: [Version], from peer: String) {
        for version in versions where acknowledgements[version] != nil {
            acknowledgements[version]?.insert(peer)
        }
    }

    /// The `peers` known to hold every one of `versions` (or newer writes of the same keys): by
    /// their acknowledgement, or by the digest they last sent.
    public func holders(of versions: [Version], among peers: [String]) -> [String] {
        peers.filter { peer in
            versions.allSatisfy { version in
                if acknowledgements[version]?.contains(peer) == true { return true }
                guard let held = peerDigests[peer]?[version.writer] else { return false }
                return held >= version.timestamp
            }
        }
    }

    /// `peer` refused these versions of our writes, for `reason`.
    public mutating func receiveRefusal(_ versions: [Version], reason: String, from peer: String) {
        for version in versions where acknowledgements[version] != nil {
            refusals[version, default: [:]][peer] = reason
        }
    }

    /// The peers that refused any of `versions`, with their reason.
    public func refusers(of versions: [Version]) -> [String: String] {
        var refusers: [String: String] = [:]
        for version in versions {
            refusers.merge(refusals[version] ?? [:]) { first, _ in first }
        }
        return refusers
    }

    /// Stops tracking acknowledgements of `versions` (the wait for them is over).
    public mutating func stopAwaiting(_ versions: [Version]) {
        for version in versions {
            acknowledgements[version] = nil
            refusals[version] = nil
        }
        if acknowledgements.isEmpty { peerDigests = [:] }
    }

    /// Keeps `peer`'s digest while some write is awaited (see `peerDigests`).
    mutating func notePeerDigest(_ digest: Digest, of peer: String) {
        if !acknowledgements.isEmpty { peerDigests[peer] = digest }
    }

    /// Pushes awaited writes straight to peers not yet known to hold them, asking for
    /// acknowledgement, without relaying (`put --wait` repairs this way between anti-entropy rounds).
    public func pushAgain(_ entries: [Entry], to peers: [NodeAddress]) -> [ReplicationDirective] {
        guard !entries.isEmpty else { return [] }
        return peers.map { .push(entries, relay: .none, acknowledge: true, after: nil, to: $0) }
    }
}
