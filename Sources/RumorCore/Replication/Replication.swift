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
    var random: SeededRandom
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
