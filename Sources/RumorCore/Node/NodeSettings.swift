/// Where a node finds its replication peers.
public enum PeerSource: Sendable, Hashable {
    /// Live members of the SWIM view that carry the replication marker (agents; simulations with
    /// `--membership`).
    case membership
    /// A fixed list, membership not run: how the simulator reaches 100k nodes (every node knows
    /// every other without N² member records).
    case fixed([NodeAddress])
}

/// Tunables of a whole node. Every property has a documented default.
public struct NodeSettings: Sendable {
    public var membership: MembershipSettings = .lan
    public var replication = ReplicationSettings()
    public var peers: PeerSource = .membership
    /// How the node announces its tags: Serf's format (default; Serf agents read it) or
    /// `k=v` text (for swarms with plain Go memberlist nodes). See `MembershipSettings.versions`.
    public var tagFormat: NodeTags.Format = .serf
    /// How network coordinates ride in probe acks; nil (the default) keeps them off and acks
    /// empty. The agent sets Serf's encoding (`SerfCoordinateCodec`), as Serf keeps them on.
    public var coordinateCodec: (any CoordinateCodec)?
    /// The Vivaldi tunables when coordinates are on. Default: Serf's.
    public var vivaldi = VivaldiSettings()
    /// Whether the node keeps a durable copy (it then emits `StorageWrite`s). Default false.
    public var durable = false
    /// How long applied remote state may wait to be saved, so a burst of pushes costs one
    /// transaction. Default 5 ms.
    public var saveDelay: Duration = .milliseconds(5)
    /// After a failed save of remote state (a full disk), how long until it is tried again.
    /// Default 1 s.
    public var saveRetryDelay: Duration = .seconds(1)
    /// How often writes awaited by `put --wait` are checked and pushed again to the live peers
    /// not known to hold them. Default 200 ms.
    public var replicaRepairInterval: Duration = .milliseconds(200)
    /// Start-up joins that reached no seed are retried after this, doubling up to
    /// `joinRetryMaximum`. Defaults 1 s and 30 s.
    public var joinRetryInitial: Duration = .seconds(1)
    public var joinRetryMaximum: Duration = .seconds(30)
    /// Push-pull state exchanges a host may ask of us: `pushPullBurst` at once, then
    /// `pushPullPerSecond`. Defaults 16 and 8/s.
    public var pushPullBurst: Double = 16
    public var pushPullPerSecond: Double = 8
    /// Anti-entropy pulls a node may ask of us (it pulls about once a second, plus retries).
    /// Defaults 10 and 5/s.
    public var pullBurst: Double = 10
    public var pullPerSecond: Double = 5
    /// Anti-entropy pulls unanswered for this long are forgotten. Default 10 s.
    public var pendingPullLifetime: Duration = .seconds(10)
    /// A node that started syncing (it joins peers) and has had no answer from any of them
    /// after this long is ready anyway, with a warning: a swarm that is down must not leave it
    /// unreadable for good. Default 10 s (ten anti-entropy rounds, each retried twice).
    public var readyTimeout: Duration = .seconds(10)

    public init(membership: MembershipSettings = .lan, replication: ReplicationSettings = ReplicationSettings()) {
        self.membership = membership
        self.replication = replication
    }

    /// How long a leave waits for its announcement to be gossiped: a few gossip rounds' worth,
    /// at least 3 s.
    public var leaveTimeout: Duration { Self.leaveTimeout(for: membership) }

    static func leaveTimeout(for membership: MembershipSettings) -> Duration {
        max(.seconds(3), membership.gossipInterval * 10)
    }
}
