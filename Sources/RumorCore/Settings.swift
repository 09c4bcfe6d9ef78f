/// Tunables of the membership protocol. Defaults equal HashiCorp memberlist's `DefaultLANConfig`.
///
/// Build one from a preset (`.lan`, `.wan`, `.local`) and adjust fields; `validate()` reports the
/// first value that cannot work.
public struct MembershipSettings: Sendable, Hashable {
    /// The protocol versions this node announces. memberlist admits a node only when its
    /// delegate version lies within every other node's range, so a swarm with Serf agents needs
    /// Serf's (`.serf`) and one with plain Go memberlist nodes needs memberlist's (`.rumor`).
    /// Default `.serf`.
    public var versions: ProtocolVersions = .serf
    /// Time between failure-detection probes of one random member. Default 1 s.
    public var probeInterval: Duration = .seconds(1)
    /// How long to wait for a direct ack before asking others to probe indirectly. Default 500 ms.
    /// Should be about the 99th percentile of round-trip time.
    public var probeTimeout: Duration = .milliseconds(500)
    /// How many members to ask for indirect probes when a direct probe fails. Default 3.
    public var indirectChecks: Int = 3
    /// Gossip retransmit multiplier: a broadcast is piggybacked
    /// `retransmitMultiplier * ceil(log10(N + 1))` times. Default 4.
    public var retransmitMultiplier: Int = 4
    /// Suspicion timeout multiplier: the minimum suspicion timeout is
    /// `suspicionMultiplier * max(1, log10(N)) * probeInterval`. Default 4.
    public var suspicionMultiplier: Int = 4
    /// Lifeguard: the suspicion timeout starts at `suspicionMaxTimeoutMultiplier` times the
    /// minimum and shrinks toward it as independent confirmations arrive. Default 6.
    public var suspicionMaxTimeoutMultiplier: Int = 6
    /// Time between full state exchanges (TCP push-pull) with one random member; 0 disables. Default 30 s.
    public var pushPullInterval: Duration = .seconds(30)
    /// Time between gossip rounds (piggyback flushes to `gossipNodes` random members). Default 200 ms.
    public var gossipInterval: Duration = .milliseconds(200)
    /// Members gossiped to per gossip round. Default 3.
    public var gossipNodes: Int = 3
    /// Rumor's extension: news (a join, suspicion, death, refutation) is gossiped as soon as it
    /// is learned, at most once per this spacing, instead of waiting for the next gossip round;
    /// later rounds retransmit it as usual. It spends the same retransmit budget, sooner, and
    /// stays wire-compatible with memberlist. nil turns it off. Default 2 ms.
    public var eagerGossipSpacing: Duration? = .milliseconds(2)
    /// Rumor's extension (Serf's reconnect): while members declared dead are remembered, one of
    /// them, at random, is offered a push-pull exchange this often, so that both sides of a
    /// healed partition find each other again (memberlist alone stops talking to dead members
    /// once their death has been gossiped). 0 disables. Default 1 s (5 s in `.wan`).
    public var reconnectInterval: Duration = .seconds(1)
    /// Joins per second that make a join storm. A seed answers this many joins a second with
    /// its whole member list; beyond that it answers with `joinSampleSize` random alive members
    /// and the joiner fetches the rest from one of them (`Membership.followUpJoin`), so joins do
    /// not all cost the seed a full state. A node that hears of more than this many new members
    /// a second by gossip runs one push-pull once the storm has passed (`stormSettleDelay`).
    /// Default 8.
    public var joinStormRate = 8
    /// Members in a sampled join answer (besides this node). Default 16.
    public var joinSampleSize = 16
    /// After joining, a node runs two more push-pulls, this long and three times this long
    /// after the join, each with a random member other than its seeds, to learn who joined
    /// meanwhile or was missing from a sampled answer. Default 300 ms.
    public var joinFollowUpDelay: Duration = .milliseconds(300)
    /// How long after the last new member heard of in a join storm a node runs its settling
    /// push-pull with a random member (at the latest this long after the storm began, then again
    /// while it lasts). Gossip alone leaves a few members unheard of by a few nodes after a storm
    /// (each packet carries a few dozen of the thousands of queued announcements); this exchange
    /// closes those gaps in seconds rather than at the next scaled push-pull, minutes away at
    /// thousands of nodes. 0 disables. Default 1 s.
    public var stormSettleDelay: Duration = .seconds(1)
    /// How long a failed member is offered reconnects before it is given up. Default 24 h.
    public var reconnectTimeout: Duration = .seconds(24 * 3600)
    /// How long dead members keep receiving gossip (so they can refute), and stay listed. Default 30 s.
    public var gossipToTheDeadTime: Duration = .seconds(30)
    /// Lifeguard: the local-health (awareness) multiplier's maximum; probe intervals and timeouts
    /// are scaled by `1 + health score` with the score in `0..<awarenessMaxMultiplier`. Default 8.
    public var awarenessMaxMultiplier: Int = 8
    /// Timeout for stream (TCP) operations such as push-pull. Default 10 s.
    public var streamTimeout: Duration = .seconds(10)
    /// Largest UDP packet we build when piggybacking gossip. Default 1400 bytes.
    public var packetBudget: Int = 1400
    /// How long a dead member's name is blocked from being reclaimed by a different address; 0 =
    /// never reclaimable while listed (memberlist's `DeadNodeReclaimTime`). Default 0.
    public var deadNodeReclaimTime: Duration = .zero
    /// Whether to compress outgoing packets and streams with LZW as memberlist does. Incoming
    /// compressed messages are always accepted. Default true.
    public var enableCompression: Bool = true
    /// Which addresses peers may name for this node to send to (`AddressRule`); a message naming
    /// another is dropped and reported. nil: those of the family of the node's own address, no
    /// subnet broadcasts known. The agent sets its socket's family and its interfaces'
    /// broadcast addresses. Default nil.
    public var addressRule: AddressRule? = nil

    public init() {}

    /// memberlist `DefaultLANConfig`.
    public static var lan: MembershipSettings { MembershipSettings() }

    /// memberlist `DefaultWANConfig`.
    public static var wan: MembershipSettings {
        var settings = MembershipSettings()
        settings.streamTimeout = .seconds(30)
        settings.suspicionMultiplier = 6
        settings.pushPullInterval = .seconds(60)
        settings.probeTimeout = .seconds(3)
        settings.probeInterval = .seconds(5)
        settings.gossipNodes = 4
        settings.gossipInterval = .milliseconds(500)
        settings.gossipToTheDeadTime = .seconds(60)
        settings.reconnectInterval = .seconds(5)
        return settings
    }

    /// memberlist `DefaultLocalConfig`: one host or a fast, reliable network.
    public static var local: MembershipSettings {
        var settings = MembershipSettings()
        settings.streamTimeout = .seconds(1)
        settings.indirectChecks = 1
        settings.retransmitMultiplier = 2
        settings.suspicionMultiplier = 3
        settings.pushPullInterval = .seconds(15)
        settings.probeTimeout = .milliseconds(200)
        settings.probeInterval = .seconds(1)
        settings.gossipInterval = .milliseconds(100)
        settings.gossipToTheDeadTime = .seconds(15)
        return settings
    }

    /// Looks up a preset by name (`lan`, `wan`, `local`).
    public static func preset(named name: String) -> MembershipSettings? {
        switch name.lowercased() {
        case "lan": .lan
        case "wan": .wan
        case "local": .local
        default: nil
        }
    }

    /// Checks that every value can work; throws the first problem found.
    public func validate() throws(SettingsError) {
        func positive(_ value: Duration, _ name: String) throws(SettingsError) {
            guard value > .zero else { throw SettingsError(setting: name, problem: "must be greater than zero") }
        }
        try positive(probeInterval, "probeInterval")
        try positive(probeTimeout, "probeTimeout")
        try positive(gossipInterval, "gossipInterval")
        try positive(streamTimeout, "streamTimeout")
        guard probeTimeout <= probeInterval else {
            throw SettingsError(setting: "probeTimeout", problem: "must not exceed probeInterval")
        }
        guard pushPullInterval >= .zero else {
            throw SettingsError(setting: "pushPullInterval", problem: "must be zero (disabled) or positive")
        }
        guard reconnectInterval >= .zero, reconnectTimeout > .zero else {
            throw SettingsError(setting: "reconnectInterval", problem: "must be zero (disabled) or positive, with a positive reconnectTimeout")
        }
        guard joinStormRate >= 1, joinSampleSize >= 1 else {
            throw SettingsError(setting: "joinStormRate", problem: "it and joinSampleSize must be >= 1")
        }
        guard stormSettleDelay >= .zero else {
            throw SettingsError(setting: "stormSettleDelay", problem: "must be zero (disabled) or positive")
        }
        guard joinFollowUpDelay >= .zero else {
            throw SettingsError(setting: "joinFollowUpDelay", problem: "must not be negative")
        }
        guard indirectChecks >= 0 else { throw SettingsError(setting: "indirectChecks", problem: "must be >= 0") }
        guard gossipNodes >= 1 else { throw SettingsError(setting: "gossipNodes", problem: "must be >= 1") }
        guard retransmitMultiplier >= 1 else {
            throw SettingsError(setting: "retransmitMultiplier", problem: "must be >= 1")
        }
        guard suspicionMultiplier >= 1 else {
            throw SettingsError(setting: "suspicionMultiplier", problem: "must be >= 1")
        }
        guard suspicionMaxTimeoutMultiplier >= 1 else {
            throw SettingsError(setting: "suspicionMaxTimeoutMultiplier", problem: "must be >= 1")
        }
        guard awarenessMaxMultiplier >= 1 else {
            throw SettingsError(setting: "awarenessMaxMultiplier", problem: "must be >= 1")
        }
        guard packetBudget >= 512, packetBudget <= 65_000 else {
            throw SettingsError(setting: "packetBudget", problem: "must be within 512...65000 bytes")
        }
    }
}

/// A setting that cannot work, with the reason.
public struct SettingsError: Error, Hashable, Sendable, CustomStringConvertible {
    public var setting: String
    public var problem: String

    public var description: String { "\(setting) \(problem)" }
}
