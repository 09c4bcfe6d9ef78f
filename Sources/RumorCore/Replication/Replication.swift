/// Key-value replication as a pure state machine: local writes, pushed writes from peers, and
/// anti-entropy pulls, each returning `ReplicationDirective`s for the driver.
///
/// Fresh writes go straight to every peer in a small swarm; in a larger one they spread down a
/// broadcast tree laid over the address ring: the writer splits all other members into `fanout`
/// ranges and pushes to the first member of each, which does the same with the rest of its range,
/// so every node gets one copy after about log_fanout(N) hops. Each relay is confirmed by its child
/// and sent again after `relayConfirmTimeout`, passing over a child that stays silent, so loss and
/// crashes delay a range by milliseconds instead of leaving it to anti-entropy. Anti-entropy
/// repairs whatever pushes missed: each interval a node sends its digest to a random peer, which
/// answers with the entries the digest shows missing plus its own digest.
public struct Replication: Sendable {
    public let localName: String
    /// This process as a writer: its writes carry it, and its digest chain starts empty.
    public let localWriter: Writer
    public let settings: ReplicationSettings
    public internal(set) var store = KeyValueStore()
    /// Per live member, the process it runs now (as membership announces it), this node's
    /// included. An ephemeral entry is live only while its writer is one of these: a member that
    /// failed, left, is unknown, or runs a newer process has none.
    public internal(set) var liveWriters: [String: Writer] = [:]
    var clock = HybridClock()
    private var random: SeededRandom
    /// The digest each peer last sent us (in a pull request or answer): what it is known to hold.
    /// Kept only while some write is awaited (`put --wait`): a digest sent before a write cannot
    /// show it held, and one per peer would cost peers × writers for good (24 GB across a
    /// simulated 1,000-node swarm with restarts).
    public internal(set) var peerDigests: [String: Digest] = [:]
    /// For our writes someone waits on (`put --wait`): the peers that acknowledged holding them.
    var acknowledgements: [Version: Set<String>] = [:]
    /// For our writes someone waits on: the peers that refused them, and why.
    var refusals: [Version: [String: String]] = [:]
    /// Retries left for this round's pull, while it is unanswered (nil: answered or none sent).
    var pullRetriesLeft: Int?
    /// Values whose time to live ran out up to here (wall milliseconds) have been reported as
    /// `expired`. A node starts it at its start time, or where its previous process stopped
    /// cleanly (`SavedState.expiryReportedThrough`), so an expiry is never reported twice.
    public internal(set) var expiryReportedThrough: UInt64 = 0
    /// Where this node sits on the broadcast tree's address ring (set by the node; nil places
    /// it before every peer).
    public var localAddress: NodeAddress?
    /// Tree relays sent and not yet confirmed by their child.
    var relaysInFlight: [RelayInFlight.Key: RelayInFlight] = [:]
    /// When the running relay timer fires (nil: none runs).
    var relayTimerDue: Instant?
    /// Ranges this node relayed lately, so that a push sent again (its confirmation was lost) is
    /// not relayed twice.
    var relayedRanges = RecentKeys<RelayInFlight.Key>(capacity: 4096)
    /// The catch-up this node is receiving, if any (see `Replication+CatchUp.swift`).
    public internal(set) var catchUp: CatchUpProgress?

    /// - Parameters:
    ///   - restoring: state saved before a restart; the clock resumes past every timestamp in
    ///     it, so new writes win over old ones even if the wall clock went back.
    ///   - wallMilliseconds: the wall clock at start; the process's generation is the hybrid
    ///     timestamp it gives (see `Writer`).
    public init(
        localName: String, settings: ReplicationSettings = ReplicationSettings(), seed: UInt64,
        restoring saved: KeyValueStore = KeyValueStore(), wallMilliseconds: UInt64 = 0
    ) {
        self.localName = localName
        self.settings = settings
        self.random = SeededRandom(seed: seed)
        self.store = saved
        // The clock resumes past every stamp the saved state holds or vouches for (its digest
        // remembers the stamps of entries since superseded or forgotten).
        let newest = max(saved.entries.values.map(\.version.timestamp).max() ?? .zero, saved.digest.values.max() ?? .zero)
        clock.pass(newest)
        self.localWriter = Writer(name: localName, generation: clock.tick(wallMilliseconds: wallMilliseconds).rawValue)
        liveWriters[localName] = localWriter
        store.currentWriters = [localWriter]
    }

    /// Starts the anti-entropy timer.
    public func start() -> [ReplicationDirective] {
        [.startAntiEntropyTimer(after: settings.antiEntropyInterval)]
    }

    /// One write of a batch: `value` nil deletes.
    public struct Write: Sendable, Hashable {
        public var key: String
        public var value: [UInt8]?
        public var timeToLive: Duration?
        public var ephemeral: Bool

        public init(key: String, value: [UInt8]?, timeToLive: Duration? = nil, ephemeral: Bool = false) {
            self.key = key
            self.value = value
            self.timeToLive = timeToLive
            self.ephemeral = ephemeral
        }
    }

    /// Writes `value` (nil deletes) locally and pushes it to `fanout` of `peers`.
    /// - Throws: `NodeError` (nothing written) for an empty or oversized key or value.
    public mutating func write(
        key: String, value: [UInt8]?, timeToLive: Duration? = nil, ephemeral: Bool = false,
        wallMilliseconds: UInt64, peers: [NodeAddress], now: Instant = .zero, roundTrips: RoundTripTimes = RoundTripTimes()
    ) throws(NodeError) -> (entry: Entry, directives: [ReplicationDirective]) {
        let (entries, directives) = try write(
            [Write(key: key, value: value, timeToLive: timeToLive, ephemeral: ephemeral)],
            wallMilliseconds: wallMilliseconds, peers: peers, now: now, roundTrips: roundTrips)
        return (entries[0], directives)
    }

    /// Writes a batch locally (all or nothing: every write is checked first) and pushes it to
    /// `fanout` of `peers` as one message. With `awaitingReplicas` the push asks every node that
    /// gets it to acknowledge, and `holders(of:among:)` tracks who did.
    /// - Throws: `NodeError` for the first invalid write; nothing is written.
    public mutating func write(
        _ writes: [Write], wallMilliseconds: UInt64, peers: [NodeAddress], awaitingReplicas: Bool = false,
        now: Instant = .zero, roundTrips: RoundTripTimes = RoundTripTimes()
    ) throws(NodeError) -> (entries: [Entry], directives: [ReplicationDirective]) {
        let entries = try prepare(writes, wallMilliseconds: wallMilliseconds)
        return (
            entries,
            commit(
                entries, wallMilliseconds: wallMilliseconds, peers: peers, awaitingReplicas: awaitingReplicas, now: now,
                roundTrips: roundTrips)
        )
    }

    /// Checks a batch of local writes and gives each its entry (timestamped), without applying
    /// any: a durable node saves them first, then `commit`s them, so a write the disk refused
    /// is never seen. - Throws: `NodeError` for the first invalid write.
    public mutating func prepare(_ writes: [Write], wallMilliseconds: UInt64) throws(NodeError) -> [Entry] {
        for write in writes { try validate(write) }
        var entries: [Entry] = []
        entries.reserveCapacity(writes.count)
        for write in writes {
            // Above the value it replaces here, however far ahead that was stamped: a write
            // must never lose to what its writer saw before it.
            if let held = store.entries[write.key] { clock.pass(held.version.timestamp) }
            let timestamp = clock.tick(wallMilliseconds: wallMilliseconds)
            let expiry = write.timeToLive.map { wallMilliseconds + UInt64(max(0, $0.nanosecondsClamped / 1_000_000)) }
            entries.append(
                Entry(
                    key: write.key, value: write.value, version: Version(timestamp: timestamp, writer: localWriter),
                    expiresAtMilliseconds: expiry, ephemeral: write.ephemeral))
        }
        return entries
    }

    /// Applies prepared local writes and pushes them to the peers (`now` and `roundTrips` time
    /// the tree's confirmations).
    public mutating func commit(
        _ entries: [Entry], wallMilliseconds: UInt64, peers: [NodeAddress], awaitingReplicas: Bool = false,
        now: Instant = .zero, roundTrips: RoundTripTimes = RoundTripTimes()
    ) -> [ReplicationDirective] {
        // Pushes say they hold every write of ours after this one, so receivers that have all
        // before it can advance their digest without waiting for anti-entropy.
        let after = store.digest[localWriter] ?? .zero
        for entry in entries { store.writeLocally(entry) }
        if awaitingReplicas {
            for entry in entries { acknowledgements[entry.version] = [] }
        }
        // A batch larger than one message goes as several pushes, each saying it follows the last.
        var directives: [ReplicationDirective] = []
        var chunkAfter: HybridTimestamp? = after
        let ring = peers.count + 1 > settings.directPushLimit ? AddressRing(peers, local: localAddress) : nil
        for chunk in Self.chunks(entries, maximumBytes: settings.maximumMessageBytes) {
            if let ring {
                directives += relay(
                    chunk, acknowledge: awaitingReplicas, after: chunkAfter, over: ring, until: nil, now: now, roundTrips: roundTrips)
            } else {
                directives += peers.filter { $0 != localAddress }.map {
                    .push(chunk, relay: .none, acknowledge: awaitingReplicas, after: chunkAfter, to: $0)
                }
            }
            chunkAfter = chunk.last?.version.timestamp
        }
        return directives
    }

    /// `entries` cut into runs of at most `maximumBytes` (`KeyValueStore.pageBytes`; at least one
    /// entry each), in order.
    static func chunks(_ entries: [Entry], maximumBytes: Int) -> [[Entry]] {
        var chunks: [[Entry]] = []
        var start = entries.startIndex
        var bytes = 0
        for index in entries.indices {
            let size = KeyValueStore.pageBytes(of: entries[index])
            if index > start, bytes + size > maximumBytes {
                chunks.append(Array(entries[start..<index]))
                start = index
                bytes = 0
            }
            bytes += size
        }
        if start < entries.endIndex { chunks.append(Array(entries[start...])) }
        return chunks
    }

    private func validate(_ write: Write) throws(NodeError) {
        guard !write.key.isEmpty else {
            throw NodeError(.emptyKey, "the key is empty", hint: "give a non-empty key")
        }
        guard write.key.utf8.count <= settings.maximumKeyBytes else {
            throw NodeError(.keyTooLong, "the key is \(write.key.utf8.count) bytes; the limit is \(settings.maximumKeyBytes)",
                hint: "use a shorter key")
        }
        if let value = write.value, value.count > settings.maximumValueBytes {
            throw NodeError(.valueTooLarge, "the value is \(value.count) bytes; the limit is \(settings.maximumValueBytes)",
                hint: "store large blobs elsewhere and put a reference")
        }
    }

    /// Merges entries pushed by `sender`. A tree push (`relay: .range`) is confirmed to the
    /// sender and relayed over its range (once, however often it arrives). When the push asks for
    /// `acknowledge`ment, tells each writer which of its pushed versions this node now holds.
    /// - Parameter viaStream: the push came over a stream, which its sender knows was delivered
    ///   (no confirmation).
    public mutating func receivePush(
        _ entries: [Entry], relay: PushRelay = .none, acknowledge: Bool = false, after: HybridTimestamp? = nil,
        from sender: NodeAddress, viaStream: Bool = false, wallMilliseconds: UInt64, peers: [NodeAddress],
        now: Instant = .zero, roundTrips: RoundTripTimes = RoundTripTimes()
    ) -> [ReplicationDirective] {
        let (news, refused) = mergeRemote(entries, wallMilliseconds: wallMilliseconds)
        if let after, let writer = entries.first?.version.writer, let through = entries.map(\.version.timestamp).max(),
            entries.allSatisfy({ entry in
                entry.version.writer == writer && store.entries[entry.key].map { $0.version >= entry.version } == true
            })
        {
            store.acknowledgeChain(writer: writer, after: after, through: through)
        }
        var out: [ReplicationDirective] = news.isEmpty ? [] : [.applied(news)]
        if case .range(let end) = relay, let first = entries.first {
            if !viaStream { out.append(.confirmRelay(first.version, to: sender)) }
            if relayedRanges.insert(RelayInFlight.Key(child: end, version: first.version)) {
                let ring = AddressRing(peers, local: localAddress)
                out += self.relay(
                    entries, acknowledge: acknowledge, after: after, over: ring, until: end, now: now, roundTrips: roundTrips)
            }
        }
        if acknowledge {
            let held = entries.filter { entry in store.entries[entry.key].map { $0.version >= entry.version } ?? false }
            for (writer, versions) in Dictionary(grouping: held.map(\.version), by: \.writer.name) where writer != localName {
                out.append(.acknowledge(versions, to: writer))
            }
        }
        out += Self.refusalDirectives(refused, from: "\(sender)", tellingWriters: acknowledge)
        return out
    }

    /// Per peer, how the states compared at the last exchange with it (no entry: never synced
    /// since this process started).
    public internal(set) var peerSync: [String: PeerSync] = [:]

    /// The anti-entropy timer fired: report values whose time to live ran out, forget tombstones
    /// past the grace period, and pull from one random peer.
    public mutating func antiEntropyTimerFired(
        peers: [NodeAddress], wallMilliseconds: UInt64, roundTrips: RoundTripTimes = RoundTripTimes()
    ) -> [ReplicationDirective] {
        var out: [ReplicationDirective] = [.startAntiEntropyTimer(after: settings.antiEntropyInterval)]
        let since = expiryReportedThrough
        let expired = store.entries.values.filter { entry in
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

    /// How long a pull from `peer` waits for its answer before another peer is asked: the
    /// peer's retransmission timeout (`RoundTripTimes`), at least `pullRetryAfter`, and at
    /// most what leaves the round room for its retries (unless the round trip itself is longer).
    func pullTimeout(for peer: NodeAddress, roundTrips: RoundTripTimes) -> Duration {
        roundTrips.timeout(
            for: peer, floor: settings.pullRetryAfter, cap: settings.antiEntropyInterval / (settings.pullRetries + 1))
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

    var graceMilliseconds: UInt64 { UInt64(max(0, settings.tombstoneGrace.nanosecondsClamped / 1_000_000)) }

    /// True when state last reconciled at `lastSyncedMilliseconds` is too old to merge safely:
    /// tombstones it never saw may have been forgotten since.
    public func isStale(lastSyncedMilliseconds: UInt64, wallMilliseconds: UInt64) -> Bool {
        wallMilliseconds > lastSyncedMilliseconds && wallMilliseconds - lastSyncedMilliseconds > graceMilliseconds
    }

    /// The live entry for `key`, if any: not deleted, not expired, not ephemeral of a process
    /// that has stopped.
    public func read(_ key: String, wallMilliseconds: UInt64) -> Entry? {
        guard let entry = store.value(of: key, nowMilliseconds: wallMilliseconds) else { return nil }
        if entry.ephemeral, !isRunning(entry.version.writer) { return nil }
        return entry
    }

    /// Live entries whose key starts with `prefix`, sorted by key.
    public func list(prefix: String, wallMilliseconds: UInt64) -> [Entry] {
        store.entries.keys
            .filter { $0.hasPrefix(prefix) }
            .compactMap { read($0, wallMilliseconds: wallMilliseconds) }
            .sorted { $0.key < $1.key }
    }

}
