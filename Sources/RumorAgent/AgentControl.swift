import RumorCore

/// What the local API (and so the CLI) can ask of a running agent.
///
/// The agent implements it; the HTTP API only translates requests into these calls.
public protocol AgentControl: Sendable {
    /// Every member this node knows, itself included, sorted by name.
    func members() async -> [MemberSnapshot]
    /// A summary of this node.
    func info() async -> AgentInfo
    /// Joins the swarm through the given `host:port` seeds. Returns how many seeds answered.
    /// Throws `AgentError` (code `join_failed`) when none did.
    func join(_ seeds: [String]) async throws -> Int
    /// Leaves the swarm gracefully: tells the others this node is leaving, waits for that to
    /// spread (bounded), then stops taking part. The process keeps running until signalled.
    func leave() async throws
}

/// One member as the API reports it.
public struct MemberSnapshot: Codable, Sendable, Hashable {
    public var name: String
    /// `host:port` of the member's gossip socket.
    public var address: String
    /// `alive`, `suspect`, `dead` or `left`.
    public var state: String
    public var incarnation: UInt32
    /// The member's metadata as UTF-8 text (lossy for non-text bytes).
    public var meta: String
    /// The memberlist protocol version the member speaks.
    public var protocolVersion: UInt8

    public init(name: String, address: String, state: String, incarnation: UInt32, meta: String, protocolVersion: UInt8) {
        self.name = name
        self.address = address
        self.state = state
        self.incarnation = incarnation
        self.meta = meta
        self.protocolVersion = protocolVersion
    }
}

/// A summary of the local node, for `rumor info`.
public struct AgentInfo: Codable, Sendable, Hashable {
    public var name: String
    /// `host:port` others reach this node at.
    public var address: String
    /// The swarm name ("" for none).
    public var swarm: String
    /// Member counts by state (`alive`, `suspect`, `dead`, `left`).
    public var members: [String: Int]
    /// Lifeguard local health score: 0 is healthy; higher means probes are being slowed down.
    public var healthScore: Int
    public var incarnation: UInt32
    /// True once `leave` has completed.
    public var left: Bool
    /// Seconds since the agent started.
    public var uptimeSeconds: Double
    /// Counters: packets received/sent, dropped (by reason) and so on.
    public var counters: [String: UInt64]

    public init(
        name: String, address: String, swarm: String, members: [String: Int], healthScore: Int,
        incarnation: UInt32, left: Bool, uptimeSeconds: Double, counters: [String: UInt64]
    ) {
        self.name = name
        self.address = address
        self.swarm = swarm
        self.members = members
        self.healthScore = healthScore
        self.incarnation = incarnation
        self.left = left
        self.uptimeSeconds = uptimeSeconds
        self.counters = counters
    }
}

/// An agent error the API reports as `{"status":"error","code":…,"message":…,"hint":…}`.
public struct AgentError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable machine-readable code such as `join_failed`, `bad_request`, `agent_unreachable`.
    public var code: String
    public var message: String
    public var hint: String

    public init(code: String, message: String, hint: String) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { "\(code): \(message) (\(hint))" }
}

/// How an agent is configured; `rumor agent` builds it from flags and environment variables.
public struct AgentConfiguration: Sendable {
    /// This node's unique name. Default: the host name.
    public var name: String
    /// Address to bind gossip UDP and TCP on. Default 0.0.0.0.
    public var bindHost: String = "0.0.0.0"
    /// Gossip port (UDP and TCP). Default 7946, memberlist's.
    public var bindPort: Int = 7946
    /// The address others should use to reach us, when different from the bind address.
    /// Required when binding 0.0.0.0 on a host with more than one address; defaults to the first
    /// non-loopback IPv4 address, or 127.0.0.1.
    public var advertiseHost: String?
    public var advertisePort: Int?
    /// Seeds to join at start (`host:port`, port defaults to 7946). Retried until one answers.
    public var seeds: [String] = []
    /// Swarm name; nodes with a different name ignore our packets and we ignore theirs. "" = none
    /// (compatible with unlabelled memberlist nodes).
    public var swarm: String = ""
    /// Directory for persistent state; nil = in memory.
    public var dataDirectory: String?
    /// Local API address. Default 127.0.0.1:7373.
    public var apiHost: String = "127.0.0.1"
    public var apiPort: Int = 7373
    /// When set, API requests must carry `Authorization: Bearer <token>`.
    public var apiToken: String?
    /// Node metadata sent to others (at most 512 bytes).
    public var meta: [UInt8] = []
    /// Protocol tunables.
    public var membership: MembershipSettings = .lan

    public init(name: String) {
        self.name = name
    }
}
