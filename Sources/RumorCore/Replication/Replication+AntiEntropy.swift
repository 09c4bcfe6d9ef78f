/// Anti-entropy: the pull each round, its retries, answers (less what the broadcast tree is
/// still delivering), and the push half of the exchange. See `Replication` for the whole picture.
extension Replication {
    /// The anti-entropy timer fired: report values whose time to live ran out, forget tombstones
    /// past the grace period, and pull from one random peer.
    public mutating func antiEntropyTimerFired(
        peers: [NodeAddress], wallMilliseconds: UInt64, roundTrips: RoundTripTimes = RoundTripTimes()
    ) -> [ReplicationDirective] {
        var out: [ReplicationDirective] = [.startAntiEntropyTimer(after: settings.antiEntropyInterval)]
        let since = expiryReportedThrough
        let expired = store.expiringValues == 0 ? [] : store.entries.values.filter { entry in
            guard !entry.isTombstone, let expiry = entry.expiresAtMilliseconds else { return false }
            return expiry > since && expiry <= wallMilliseconds
        }
        expiryReportedThrough = max(since, wallMilliseconds)
        if !expired.isEmpty { out.append(.expired(expired)) }
        let collected = store.collectTombstones(nowMilliseconds: wallMilliseconds, graceMilliseconds: graceMilliseconds)
        if !collected.isEmpty { out.append(.forgot(collected)) }
        store.forgetStoppedWriters()
        pullRetriesLeft = nil
        // A catch-up under way is this round's pull (and more).
        if catchUp == nil, let peer = peers.randomElement(using: &random) {
            out.append(.pull(from: peer, digest: store.digest, held: store.heldSummary()))
            if settings.pullRetries > 0 {
                pullRetriesLeft = settings.pullRetries
                out.append(.startPullRetryTimer(after: pullTimeout(for: peer, roundTrips: roundTrips)))
            }
        }
        return out
    }

    /// The pull-retry timer fired: if this round's pull is still unanswered, pull from another
    /// random peer.
    public mutating func pullRetryTimerFired(peers: [NodeAddress], roundTrips: RoundTripTimes)
        -> [ReplicationDirective]
    {
        guard let left = pullRetriesLeft, left > 0, let peer = peers.randomElement(using: &random) else { return [] }
        pullRetriesLeft = left - 1
        return [
            .pull(from: peer, digest: store.digest, held: store.heldSummary()),
            .startPullRetryTimer(after: pullTimeout(for: peer, roundTrips: roundTrips)),
        ]
    }

    /// Whether the pull-retry timer has a retry to make (this round's pull is unanswered).
    public var pullRetryPending: Bool { (pullRetriesLeft ?? 0) > 0 }

    /// How long a pull from `peer` waits for its answer before another peer is asked: the
    /// peer's retransmission timeout (`RoundTripTimes`), at least `pullRetryAfter`, and at
    /// most what leaves the round room for its retries (unless the round trip itself is longer).
    func pullTimeout(for peer: NodeAddress, roundTrips: RoundTripTimes) -> Duration {
        // Divided in nanoseconds: `Duration / Int` divides 128-bit attoseconds, a cost on every pull.
        let cap = Duration.nanoseconds(settings.antiEntropyInterval.nanosecondsClamped / Int64(settings.pullRetries + 1))
        return roundTrips.timeout(for: peer, floor: settings.pullRetryAfter, cap: cap)
    }

    /// What a pull is answered with.
    public enum PullAnswer: Sendable, Hashable {
        /// Every entry the pull's digest shows missing, with our digest and held writes.
        case complete(entries: [Entry], digest: Digest, held: HeldWrites)
        /// The first page of a delta larger than `maximumMessageBytes`: the puller catches up
        /// from us for the rest.
        case partial(CatchUpPage)
    }

    /// Answers `peer`'s pull: the entries its digest shows missing (less those it says it
    /// holds), and our digest and held writes; or, when they exceed `maximumMessageBytes`, the
    /// first page of them.
    /// - Parameter heldBack: entries written less than this long ago are left out (with the
    ///   digest we send lowered below them): the broadcast tree is still delivering them
    ///   (`treeDeliveryTime`), and sending them here too only makes copies.
    public mutating func answerPull(
        digest: Digest, held: HeldWrites = [:], fingerprint: UInt64? = nil,
        from peer: String, wallMilliseconds: UInt64 = 0, heldBack: Duration = .zero
    ) -> PullAnswer {
        notePeerDigest(digest, of: peer)
        if fingerprint == store.fingerprint {
            compare(with: peer, fingerprint: fingerprint, peerLacks: 0, wallMilliseconds: wallMilliseconds)
            return .complete(entries: [], digest: store.digest, held: store.heldSummary())
        }
        let page = store.page(since: digest, held: held, maximumBytes: settings.maximumMessageBytes)
        if page.next == nil {
            compare(with: peer, fingerprint: fingerprint, peerLacks: page.entries.count, wallMilliseconds: wallMilliseconds)
            let (settled, digest) = holdingBack(page.entries, heldBack, wallMilliseconds: wallMilliseconds)
            return .complete(entries: settled, digest: digest, held: store.heldSummary())
        }
        let first = firstPage(page, since: digest)
        compare(
            with: peer, fingerprint: fingerprint, peerLacks: page.entries.count + Int(clamping: first.remainingEntries),
            wallMilliseconds: wallMilliseconds)
        return .partial(first)
    }

    /// Merges `peer`'s answer to our pull; afterwards we hold all the peer held. With
    /// `replyingTo` (the answer to our own pull) we then send back what the peer's digest shows
    /// it lacks, making the exchange push-pull; a delta sent back that way is merged with
    /// `replyingTo: nil`, which ends the exchange.
    public mutating func receivePullAnswer(
        entries: [Entry], digest: Digest, held: HeldWrites = [:],
        fingerprint: UInt64? = nil, from peer: String, replyingTo address: NodeAddress? = nil, wallMilliseconds: UInt64,
        heldBack: Duration = .zero
    ) -> [ReplicationDirective] {
        notePeerDigest(digest, of: peer)
        if address != nil { pullRetriesLeft = nil }
        let (news, refused) = mergeRemote(entries, wallMilliseconds: wallMilliseconds)
        observe(digest, wallMilliseconds: wallMilliseconds)
        // We hold all the peer held, less what we refused: a writer with a refused entry keeps
        // our own digest value, so anti-entropy still offers what we lack of it.
        let refusedWriters = Set(refused.map(\.entry.version.writer))
        store.acknowledge(refusedWriters.isEmpty ? digest : digest.filter { !refusedWriters.contains($0.key) })
        var out: [ReplicationDirective] = news.isEmpty ? [] : [.applied(news)]
        out += Self.refusalDirectives(refused, from: peer, tellingWriters: false)
        if fingerprint == store.fingerprint {
            compare(with: peer, fingerprint: fingerprint, peerLacks: 0, wallMilliseconds: wallMilliseconds)
        } else if fingerprint != nil || address != nil {
            // One page (at most `maximumMessageBytes`) serves both the comparison and the push
            // half; what lies past it is counted by estimate, never by building the whole delta.
            let page = store.page(since: digest, held: held, maximumBytes: settings.maximumMessageBytes)
            let first = page.next == nil ? nil : firstPage(page, since: digest)
            compare(
                with: peer, fingerprint: fingerprint, peerLacks: page.entries.count + Int(clamping: first?.remainingEntries ?? 0),
                wallMilliseconds: wallMilliseconds)
            if let address, let first {
                out.append(.sendPage(first, to: address))
            } else if let address, !page.entries.isEmpty {
                let (settled, digest) = holdingBack(page.entries, heldBack, wallMilliseconds: wallMilliseconds)
                if !settled.isEmpty { out.append(.sendDelta(settled, digest: digest, to: address)) }
            }
        }
        return out
    }

    /// `entries` less those others wrote within `heldBack` of `wallMilliseconds`, and our digest
    /// lowered, for each writer of one left out, to just before the cut: what we vouch to hold
    /// for the receiver is then exactly what we send or it holds. Our own writes always go: we
    /// may have written them before we knew the receiver (while joining), so no tree brings
    /// them there. So do writes stamped further ahead of our clock than `maximumClockOffset`:
    /// our clock is wrong (or theirs), and their age says nothing of the tree.
    func holdingBack(_ entries: [Entry], _ heldBack: Duration, wallMilliseconds: UInt64) -> (entries: [Entry], digest: Digest) {
        let back = UInt64(max(0, heldBack.nanosecondsClamped / 1_000_000))
        guard back > 0, wallMilliseconds > back else { return (entries, store.digest) }
        let cut = HybridTimestamp(milliseconds: wallMilliseconds - back, logical: .max)
        let ahead = HybridTimestamp(milliseconds: wallMilliseconds &+ maximumOffsetMilliseconds, logical: .max)
        var settled: [Entry] = []
        settled.reserveCapacity(entries.count)
        var digest = store.digest
        for entry in entries {
            let young = entry.version.timestamp > cut && entry.version.timestamp <= ahead
            if !young || entry.version.writer == localWriter {
                settled.append(entry)
            } else if let held = digest[entry.version.writer], held > cut {
                digest[entry.version.writer] = cut
            }
        }
        return (settled, digest)
    }
}
