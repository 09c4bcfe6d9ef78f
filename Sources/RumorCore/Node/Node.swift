/// A whole Rumor node as a pure state machine: SWIM membership, key-value replication, the
/// change log watchers follow, and the protocol state between them (pending pulls and their
/// retries, writes awaited by `put --wait`, per-peer rate limits, join retries, the leave wait,
/// the save batch, the keyring exchange).
///
/// One `mutating` entry point per input — a datagram, a stream request, the end of an exchange
/// the node asked for, a timer, a local command — each given the time (`NodeTime`) and
/// returning the `NodeEffect`s the driver must carry out, in order. The node performs no I/O,
/// reads no clock and draws randomness only from its seeded generators, so the agent, the
/// simulator and the tests run the same code. Timers are never cancelled: the node ignores one
/// that no longer applies (see `MembershipDirective.startTimer`).
public struct Node: Sendable {
    /// The node's own tunables; membership and replication keep theirs (a node stays small:
    /// the simulator holds 100k of them).
    let local: LocalSettings
    public internal(set) var membership: Membership
    public internal(set) var replication: Replication
    /// The order keys changed here, for watchers; saved with the entries.
    public internal(set) var changes: ChangeLog
    /// When the state was last reconciled with a peer (wall milliseconds).
    public internal(set) var lastSynced: UInt64?
    public internal(set) var counters = NodeCounters()
    /// True once a leave has been announced and has spread (or its wait timed out).
    public internal(set) var leaveCompleted = false
    /// Whether this process has synced with a peer since it started (`Node+Readiness.swift`).
    public internal(set) var readiness: Readiness
    /// Peers' clocks as this node measured them, and whether its own is fenced.
    public internal(set) var clockOffsets: ClockOffsets

    /// Anti-entropy pulls sent and not yet answered, by peer address.
    var pendingPulls: [NodeAddress: PendingPull] = [:]
    var replicaWaits: [CommandID: ReplicaWait] = [:]
    var replicaWaitTimerArmed = false
    /// Per sending host (IP): push-pull state exchanges it may ask of us (each costs a full
    /// state encode and merge).
    var pushPullLimiter: RateLimiter<[UInt8]>
    /// Per sending node: anti-entropy pulls it may ask of us (each costs a digest comparison and
    /// possibly a large answer).
    var pullLimiter: RateLimiter<NodeAddress>
    var joins: [CommandID: JoinProgress] = [:]
    var joinRetryDelay: Duration
    var joinRetryArmed = false
    /// The seeds of the last successful join (the follow-up exchange avoids them).
    var lastJoinSeeds: [NodeAddress] = []
    var joinFollowUps = 0
    var leaveWaiters: [CommandID] = []
    var leaveTimerArmed = false
    var keyringExchanges: [CommandID: KeyringExchange] = [:]
    /// Applied remote state not saved yet: committed together `saveDelay` later.
    var unsaved = SaveBatch()
    var saveTimerArmed = false
    /// Replication peers, rebuilt after membership events (nil: stale); always set when the
    /// peers are fixed.
    var peerCache: [NodeAddress]?
    /// The names of the live replicating members, rebuilt with `peerCache` (the clock vote's
    /// electorate, taken twice a second: decoding every member's tags each time cost 30 % of
    /// an idle agent's CPU in a swarm of 100).
    var peerNameCache: Set<String>?
    /// The tree's delivery time, with what it was computed from (`treeDeliveryTime()`).
    var deliveryTimeCache: (members: Int, network: UInt64, time: Duration)?
    /// Paces the log line of refused addresses (a spoofing peer can send thousands a second).
    var addressRefusalLog = LogPace(interval: .seconds(10))

    struct PendingPull: Sendable {
        /// When the pull first went to the peer.
        var sentAt: Instant
        /// Whether it went to the peer again before an answer came.
        var resent = false
    }

    struct ReplicaWait: Sendable {
        var entries: [Entry]
        var target: ReplicaTarget
        var timeout: Duration
        var deadline: Instant
    }

    struct JoinProgress: Sendable {
        var seeds: [NodeAddress]
        var outstanding: Int
        var contacted = 0
        var retrying: Bool
    }

    struct KeyringExchange: Sendable {
        var asked: Int
        var answers: [String: KeyringFrame]
        var failures: [String: String] = [:]
    }

    /// The tag of nodes that replicate the key-value state (Go memberlist and Serf nodes lack
    /// it): `rumor.kv=1`.
    public static let replicationTag = (key: "rumor.kv", value: "1")
    /// The tag naming the generation of the process a Rumor node runs (`Writer.generation`, 16
    /// hex digits): a restarted node announces its new process with it, so every member knows
    /// which process's ephemeral values are live.
    public static let generationTagKey = "rumor.gen"
    /// The tags Rumor adds to the operator's.
    public static let reservedTagKeys: Set<String> = [replicationTag.key, generationTagKey]

    /// Creates the node; nothing runs until `start`.
    /// - Parameters:
    ///   - tags: the operator's tags; the replication tag is added. They are announced in the
    ///     format `settings.tagFormat` names.
    ///   - seeds: seed the membership and replication generators (the same seeds and inputs
    ///     give the same effects).
    ///   - restoring: state saved before a restart.
    public init(
        name: String, address: NodeAddress, tags: [String: String] = [:], settings: NodeSettings, seeds: NodeSeeds,
        restoring saved: SavedState = SavedState(), at time: NodeTime
    ) {
        self.local = LocalSettings(settings)
        let replication = Replication(
            localName: name, settings: settings.replication, seed: seeds.replication, restoring: saved.store,
            wallMilliseconds: time.wallMilliseconds)
        self.replication = replication
        self.readiness = .syncing(since: time.now)
        self.clockOffsets = ClockOffsets(maximum: settings.replication.maximumClockOffset)
        self.membership = Membership(
            name: name, address: address,
            meta: Self.advertisedMeta(tags, generation: replication.localWriter.generation, as: settings.tagFormat),
            settings: settings.membership, seed: seeds.membership, now: time.now)
        if let codec = settings.coordinateCodec {
            membership.enableCoordinates(
                NetworkCoordinates(settings: settings.vivaldi, codec: codec, seed: seeds.membership ^ Self.coordinateSeedMask))
        }
        self.replication.localAddress = address
        self.replication.expiryReportedThrough = saved.expiryReportedThrough ?? time.wallMilliseconds
        self.changes = saved.changes
        self.lastSynced = saved.lastSynced
        self.pushPullLimiter = RateLimiter(burst: settings.pushPullBurst, perSecond: settings.pushPullPerSecond)
        self.pullLimiter = RateLimiter(burst: settings.pullBurst, perSecond: settings.pullPerSecond)
        self.joinRetryDelay = settings.joinRetryInitial
        self.seeds = seeds
        self.tagFormat = settings.tagFormat
        self.serf = SerfLayer(localName: name, seed: seeds.membership ^ 0x5345_5246_5155_4552)
        if case .fixed(let peers) = settings.peers { peerCache = peers }
    }

    private let seeds: NodeSeeds
    private let tagFormat: NodeTags.Format
    /// Serf's layer (intents, user events), spoken in Serf mode.
    public internal(set) var serf: SerfLayer
    /// A leave was asked for and Serf's leave intent is spreading; memberlist's leave follows.
    var announcingLeave = false
    /// Whether the node takes part in Serf's layer (Serf's tag format, i.e. `--protocol serf`).
    var speaksSerf: Bool { tagFormat == .serf }

    /// The metadata announced to others: the operator's tags plus the replication and
    /// generation tags.
    public static func advertisedMeta(_ tags: [String: String], generation: UInt64, as format: NodeTags.Format) -> [UInt8] {
        var tags = tags
        tags[replicationTag.key] = replicationTag.value
        tags[generationTagKey] = String(generation, radix: 16).leftPadded(to: 16)
        return NodeTags.encode(tags, as: format)
    }

    /// The process a member runs, as its generation tag announces it (nil for nodes without one:
    /// Serf and Go memberlist nodes).
    public static func runningWriter(of member: Member) -> Writer? {
        guard let value = NodeTags.decode(member.meta)?[generationTagKey], value.utf8.count == 16,
            let generation = UInt64(value, radix: 16)
        else { return nil }
        return Writer(name: member.name, generation: generation)
    }

    /// This node's tags as others see them, the replication tag included.
    public var tags: [String: String] { NodeTags.decode(membership.localMember.meta) ?? [:] }

    /// Replaces this node's tags (the replication tag is kept) and announces them with a new
    /// incarnation, as Serf's `SetTags` does.
    /// - Throws: `NodeError` `tagsTooLarge` when the encoded tags pass the 512-byte metadata limit;
    ///   nothing changes then.
    public mutating func setTags(_ tags: [String: String], at time: NodeTime) throws(NodeError) -> [NodeEffect] {
        let meta = Self.advertisedMeta(tags, generation: replication.localWriter.generation, as: tagFormat)
        guard meta.count <= Self.maximumMetaBytes else {
            throw NodeError(
                .tagsTooLarge, "the tags take \(meta.count) bytes encoded; the limit is \(Self.maximumMetaBytes)",
                hint: "shorten or drop some tags")
        }
        return effects(of: membership.updateMeta(meta, now: time.now), at: time)
    }

    /// The largest metadata a member may announce (memberlist's `MetaMaxSize`).
    public static let maximumMetaBytes = 512

    public var name: String { membership.localName }

    /// The settings the node was made with.
    public var settings: NodeSettings {
        var settings = NodeSettings(membership: membership.settings, replication: replication.settings)
        settings.peers = local.fixedPeers ? .fixed(peerCache ?? []) : .membership
        local.copy(into: &settings)
        if let coordinates = membership.coordinates {
            settings.coordinateCodec = coordinates.codec
            settings.vivaldi = coordinates.client.settings
        }
        return settings
    }

    /// Mixed into the membership seed for the coordinates' own generator.
    static let coordinateSeedMask: UInt64 = 0x5649_5641_4C44_4921

    /// Moves the node to `address` (a port the system picked at bind time). Only before `start`.
    public mutating func readdress(_ address: NodeAddress, at time: NodeTime) {
        let member = membership.localMember
        let coordinates = membership.coordinates
        membership = Membership(
            name: member.name, address: address, meta: member.meta, settings: membership.settings,
            seed: seeds.membership, now: time.now)
        if let coordinates { membership.enableCoordinates(coordinates) }
    }

    /// Starts the periodic work: membership timers (unless peers are fixed) and anti-entropy,
    /// first after `firstAntiEntropyAfter` (default: one interval); and readiness: with
    /// `joining` (seeds to join, peers to discover, or fixed peers to sync with) the node is
    /// `syncing` until its first sync (`Node+Readiness.swift`), else ready at once.
    public mutating func start(at time: NodeTime, firstAntiEntropyAfter: Duration? = nil, joining: Bool = false) -> [NodeEffect] {
        var out: [NodeEffect] = []
        if !local.fixedPeers {
            out += effects(of: membership.start(now: time.now), at: time)
        }
        out.append(.startTimer(.antiEntropy, after: firstAntiEntropyAfter ?? replication.settings.antiEntropyInterval))
        out += startReadiness(joining: joining, at: time)
        return out
    }

    /// How long a syncing node waits for a peer's answer before it is ready anyway.
    var readyTimeout: Duration { local.readyTimeout }

    /// What the live peers' clocks say of this node's now (`ClockOffsets`).
    public func clockVerdict(at time: NodeTime) -> ClockOffsets.Verdict {
        clockOffsets.verdict(livePeers: peerNameCache ?? Set(replicationMembers().map(\.name)), at: time)
    }

    /// The names of the live replicating members (`peerNameCache`, rebuilt when stale).
    mutating func replicationPeerNames() -> Set<String> {
        if let peerNameCache { return peerNameCache }
        let names = Set(replicationMembers().map(\.name))
        peerNameCache = names
        return names
    }

    /// Takes the clock verdict now: the log line of a fence that begins or ends.
    mutating func updateClockFence(at time: NodeTime) -> [NodeEffect] {
        clockOffsets.update(livePeers: replicationPeerNames(), at: time).map { [.log($0)] } ?? []
    }

    // MARK: - Reading

    /// The live entry for `key`, if any.
    public func read(_ key: String, at time: NodeTime) -> Entry? {
        replication.read(key, wallMilliseconds: time.wallMilliseconds)
    }

    /// Members that replicate the state, other than this node, in one of `states`, by address.
    public func replicationMembers(in states: Set<MemberState> = [.alive]) -> [Member] {
        membership.members.values
            .filter { member in
                member.name != name && states.contains(member.state) && Self.replicates(member)
            }
            .sorted { $0.address < $1.address }
    }

    public static func replicates(_ member: Member) -> Bool {
        NodeTags.decode(member.meta)?[replicationTag.key] == replicationTag.value
    }

    /// Where replication traffic goes: live replicating members (or the fixed list).
    mutating func replicationPeers() -> [NodeAddress] {
        if let peerCache { return peerCache }
        let peers = replicationMembers().map(\.address)
        peerCache = peers
        return peers
    }
}

/// The tunables a node reads itself (`NodeSettings` minus what its machines hold).
struct LocalSettings: Sendable {
    var fixedPeers: Bool
    var durable: Bool
    var saveDelay: Duration
    var saveRetryDelay: Duration
    var replicaRepairInterval: Duration
    var joinRetryInitial: Duration
    var joinRetryMaximum: Duration
    var pendingPullLifetime: Duration
    var readyTimeout: Duration
    var limits: (pushPullBurst: Double, pushPullPerSecond: Double, pullBurst: Double, pullPerSecond: Double)

    init(_ settings: NodeSettings) {
        if case .fixed = settings.peers { fixedPeers = true } else { fixedPeers = false }
        durable = settings.durable
        saveDelay = settings.saveDelay
        saveRetryDelay = settings.saveRetryDelay
        replicaRepairInterval = settings.replicaRepairInterval
        joinRetryInitial = settings.joinRetryInitial
        joinRetryMaximum = settings.joinRetryMaximum
        pendingPullLifetime = settings.pendingPullLifetime
        readyTimeout = settings.readyTimeout
        limits = (settings.pushPullBurst, settings.pushPullPerSecond, settings.pullBurst, settings.pullPerSecond)
    }

    func copy(into settings: inout NodeSettings) {
        settings.durable = durable
        settings.saveDelay = saveDelay
        settings.saveRetryDelay = saveRetryDelay
        settings.replicaRepairInterval = replicaRepairInterval
        settings.joinRetryInitial = joinRetryInitial
        settings.joinRetryMaximum = joinRetryMaximum
        settings.pendingPullLifetime = pendingPullLifetime
        settings.readyTimeout = readyTimeout
        (settings.pushPullBurst, settings.pushPullPerSecond, settings.pullBurst, settings.pullPerSecond) = limits
    }
}

/// Seeds of a node's random generators.
public struct NodeSeeds: Sendable, Hashable {
    public var membership: UInt64
    public var replication: UInt64

    public init(membership: UInt64, replication: UInt64) {
        self.membership = membership
        self.replication = replication
    }
}

/// The durable state a node restarts from.
public struct SavedState: Sendable {
    public var store: KeyValueStore
    public var changes: ChangeLog
    public var lastSynced: UInt64?
    /// How far the previous process had reported expiries, when it stopped cleanly; nil (after
    /// a crash, or with no saved state) starts reporting from the node's start: an expiry before
    /// it shows as `expire` only to a watch that replays (its change log is new to watchers).
    public var expiryReportedThrough: UInt64?

    public init(store: KeyValueStore = KeyValueStore(), changes: ChangeLog = ChangeLog(), lastSynced: UInt64? = nil) {
        self.store = store
        self.changes = changes
        self.lastSynced = lastSynced
    }
}

/// Remote state applied but not saved yet: the latest entry per key, change-log positions, and
/// the highest digest values.
struct SaveBatch: Sendable {
    var entries: [String: Entry] = [:]
    var sequences: [String: UInt64] = [:]
    var digest: Digest = [:]

    var isEmpty: Bool { entries.isEmpty && digest.isEmpty }

    mutating func add(_ applied: [Entry], sequences: [String: UInt64], digest: Digest) {
        for entry in applied where entries[entry.key].map({ $0.version < entry.version }) ?? true { entries[entry.key] = entry }
        self.sequences.merge(sequences) { max($0, $1) }
        self.digest.merge(digest) { max($0, $1) }
    }

    /// Adds what `other` holds (newer entries win, whichever batch holds them).
    mutating func add(_ other: SaveBatch) {
        add(Array(other.entries.values), sequences: other.sequences, digest: other.digest)
    }

    var write: StorageWrite {
        .save(entries: Array(entries.values), sequences: sequences, digest: digest)
    }
}

extension NodeAddress: Comparable {
    /// By IP bytes, then port: a stable order for peer lists.
    public static func < (lhs: NodeAddress, rhs: NodeAddress) -> Bool {
        precedes(lhs, rhs)
    }
}

extension String {
    /// The string with zeros before it up to `width` characters.
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
