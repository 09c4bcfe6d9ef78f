/// What this node knows about one member of the swarm (itself included).
public struct Member: Sendable, Hashable {
    public var name: String
    public var address: NodeAddress
    public var meta: [UInt8]
    public var incarnation: UInt32
    public var state: MemberState
    /// When `state` last changed, on the driver's clock.
    public var stateChanged: Instant
    public var versions: ProtocolVersions

    public init(
        name: String, address: NodeAddress, meta: [UInt8], incarnation: UInt32, state: MemberState,
        stateChanged: Instant, versions: ProtocolVersions
    ) {
        self.name = name
        self.address = address
        self.meta = meta
        self.incarnation = incarnation
        self.state = state
        self.stateChanged = stateChanged
        self.versions = versions
    }

    public var isDeadOrLeft: Bool { state == .dead || state == .left }

    /// The `alive` message that announces this member as it is now.
    var aliveMessage: Alive {
        Alive(incarnation: incarnation, node: name, address: address, meta: meta, versions: versions)
    }

    var pushState: PushNodeState {
        PushNodeState(
            name: name, address: address, meta: meta, incarnation: incarnation, state: state, versions: versions)
    }
}

/// A change in membership worth telling the application, the log and the metrics about.
public struct MemberEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// First seen alive, or alive again after being dead or having left.
        case joined
        /// Metadata or address changed.
        case updated
        /// Suspected of having failed.
        case suspected
        /// Refuted a suspicion: alive again.
        case recovered
        /// Declared dead after the suspicion timeout.
        case failed
        /// Left gracefully.
        case left
        /// Forgotten after `gossipToTheDeadTime`.
        case reaped
    }

    public var kind: Kind
    public var member: Member

    public init(kind: Kind, member: Member) {
        self.kind = kind
        self.member = member
    }
}
