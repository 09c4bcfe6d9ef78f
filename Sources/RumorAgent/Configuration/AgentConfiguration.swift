import RumorAPI
import RumorCore

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
    /// What gossip travels over: the host's UDP/TCP, or the Pilot overlay through a local daemon.
    public var transport: TransportKind = .udp
    /// The Pilot daemon's IPC socket (`--pilot-socket`), with `transport` `.pilot`.
    public var pilotSocket: String = "/tmp/pilot.sock"
    /// The Pilot port gossip uses (datagrams and streams), the same on every node.
    public var pilotPort: UInt16 = 7946
    /// Seeds to join at start (`host:port`, port defaults to 7946). Retried until one answers.
    public var seeds: [String] = []
    /// Swarm name; nodes with a different name ignore our packets and we ignore theirs. "" = none
    /// (compatible with unlabelled memberlist nodes).
    public var swarm: String = ""
    /// Find the swarm's nodes on the local network by `swarm` (multicast DNS).
    public var discover = false
    /// Directory for persistent state; nil = in memory.
    public var dataDirectory: String?
    /// Move the saved state aside (kept) at start and rebuild it from the swarm: for a damaged
    /// or foreign `state.sqlite`.
    public var resync = false
    /// Local API address. Default 127.0.0.1:7373.
    public var apiHost: String = "127.0.0.1"
    public var apiPort: Int = 7373
    /// When set, API requests must carry `Authorization: Bearer <token>`.
    public var apiToken: String?
    /// The API's connection, stream, timeout and cross-site limits (`api_max_connections`…).
    public var apiLimits = APILimits()
    /// The gossip encryption key to start with (16, 24 or 32 bytes) when no keyring file exists
    /// yet; nil and no keyring file = unencrypted.
    public var encryptionKey: [UInt8]?
    /// With encryption: refuse plaintext gossip (memberlist's `GossipVerifyIncoming`, Consul's
    /// `encrypt_verify_incoming`). False only while a plaintext swarm moves to encryption.
    public var encryptionVerifiesIncoming = true
    /// With encryption: send encrypted gossip (memberlist's `GossipVerifyOutgoing`). False only in
    /// the first step of that move. Requires `encryptionVerifiesIncoming` false.
    public var encryptionVerifiesOutgoing = true
    /// Where the keyring is kept (owner-only permissions), rotations included. Default:
    /// `keyring.json` in the data directory; nil without one (rotations then last until restart).
    public var keyringFile: String?
    /// The node's tags, announced to others (at most 512 bytes encoded, the replication tag
    /// included).
    public var tags: [String: String] = [:]
    /// Who else may sit in the swarm: Serf agents (default) or plain Go memberlist nodes.
    public var gossipProtocol: GossipProtocol = .serf
    /// Scripts run on membership changes and user events, Serf's way (`--event-handler`).
    public var eventHandlers: [EventHandlerSpec] = []
    /// How long an event handler may run before it is killed.
    public var handlerTimeout: Duration = .seconds(30)
    /// Whether the agent announces its start (the `rumor agent up: …` line on stdout, systemd's READY=1) only
    /// once the node is ready (`Node.readiness`), rather than once its API listens.
    public var waitReady = false
    /// Whether acks go without a network coordinate and none are kept (Serf's
    /// `disable_coordinates`). Default false: Serf's coordinates ride in every ack.
    public var disableCoordinates = false
    /// How long a node that joins peers syncs at most before it serves reads anyway
    /// (`NodeSettings.readyTimeout`).
    public var readyTimeout: Duration = NodeSettings().readyTimeout
    /// Protocol tunables.
    public var membership: MembershipSettings = .lan
    /// Key-value replication tunables.
    public var replication = ReplicationSettings()

    public init(name: String) {
        self.name = name
    }
}

/// The flavour of memberlist a node speaks, which decides who else may join its swarm: memberlist
/// admits a node only when its delegate version lies within every other node's range.
public enum GossipProtocol: String, Sendable, CaseIterable {
    /// Serf's versions and tags format: Serf agents (and Consul's gossip) can join.
    case serf
    /// Plain memberlist versions and `k=v` text tags: Go memberlist nodes can join.
    case memberlist

    public var versions: ProtocolVersions { self == .serf ? .serf : .rumor }
    public var tagFormat: NodeTags.Format { self == .serf ? .serf : .text }
}

/// What gossip travels over.
public enum TransportKind: String, Sendable, CaseIterable {
    /// UDP datagrams and TCP streams on the host's network (memberlist's transport).
    case udp
    /// Pilot datagrams and streams through the local `pilot-daemon`'s IPC socket.
    case pilot
}

extension AgentConfiguration {
    /// The largest metadata a member may announce, the replication marker included (memberlist's
    /// `MetaMaxSize`).
    public static let maximumMetaBytes = 512

    /// The metadata announced to others: the tags and Rumor's own (`Node.advertisedMeta`; the
    /// generation tag has the same length whatever the process).
    public var advertisedMeta: [UInt8] { Node.advertisedMeta(tags, generation: 0, as: gossipProtocol.tagFormat) }

    /// Whether `apiHost` is reachable from this host only.
    public var apiIsLoopback: Bool {
        apiHost == "localhost" || apiHost == "::1" || apiHost.hasPrefix("127.")
    }

    /// Checks every rule a configuration must satisfy on its own; `Agent.init` and `rumor agent`
    /// both call it, so a rule lives here and nowhere else.
    ///
    /// Checks that need the files a node reads at start (the keyring, the data directory) are
    /// not here: see `validate(encryptionEnabled:)`.
    /// - Throws: `AgentError` describing the first problem: `bad_config`, or `bad_arguments` for a
    ///   non-loopback API without a token. Nothing is changed either way.
    public func validate() throws(AgentError) {
        do {
            try membership.validate()
        } catch {
            throw AgentError(
                code: .badConfig, message: "invalid membership setting: \(error)",
                hint: "fix the setting or use a preset (--profile lan|wan|local)")
        }
        guard !name.isEmpty, name.utf8.count <= 255 else {
            throw AgentError(code: .badConfig, message: "node name must be 1...255 bytes", hint: "pass --name")
        }
        let announced = advertisedMeta.count
        guard announced <= Self.maximumMetaBytes else {
            throw AgentError(
                code: .badConfig,
                message: "the tags take \(announced) bytes encoded (Rumor's rumor.kv and rumor.gen tags included); the limit is 512",
                hint: "shorten or drop some --tag values")
        }
        guard swarm.utf8.count <= 255 else {
            throw AgentError(code: .badConfig, message: "swarm name must be at most 255 bytes", hint: "shorten --swarm")
        }
        guard encryptionVerifiesOutgoing || !encryptionVerifiesIncoming else {
            throw AgentError(
                code: .badConfig, message: "a node that sends plaintext gossip must also accept it",
                hint: "pass --encrypt-verify-incoming false with --encrypt-verify-outgoing false")
        }
        if let token = apiToken, let problem = Self.apiTokenProblem(token) {
            throw AgentError(code: .badArguments, message: "--api-token \(problem)", hint: Self.apiTokenHint)
        }
        try apiLimits.validate()
        guard apiIsLoopback || apiToken != nil else {
            throw AgentError(
                code: .badArguments, message: "--api \(apiHost):\(apiPort) is reachable from other hosts but no token is set",
                hint: "bind the API to 127.0.0.1, or set --api-token (RUMOR_API_TOKEN)")
        }
    }

    /// Why `token` cannot work as the API's bearer token, nil when it can. A blank token (or one
    /// with spaces around it, which HTTP strips from a header) would match no request, so the API
    /// would refuse everyone, its own CLI included; a control character cannot be sent at all.
    public static func apiTokenProblem(_ token: String) -> String? {
        if token.allSatisfy(\.isWhitespace) {
            return "is blank: no request could carry it, so the API would refuse every client"
        }
        if token.first!.isWhitespace || token.last!.isWhitespace {
            return "begins or ends with whitespace, which HTTP strips from headers: no request would match it"
        }
        if token.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "holds a control character, which an HTTP header cannot carry"
        }
        return nil
    }

    /// How to give a token that works.
    public static let apiTokenHint =
        "give a token of visible characters, e.g. --api-token \"$(rumor keygen)\", or none for an API on 127.0.0.1"

    /// Checks the rules that depend on the keyring the node starts with (the saved one, else
    /// `encryptionKey`'s): relaxed verification applies only to an encrypted node.
    /// - Parameter encryptionEnabled: whether the loaded keyring holds a key.
    /// - Throws: `AgentError` `bad_config`; nothing is changed.
    public func validate(encryptionEnabled: Bool) throws(AgentError) {
        let verificationRelaxed = !encryptionVerifiesIncoming || !encryptionVerifiesOutgoing
        guard encryptionEnabled || !verificationRelaxed else {
            throw AgentError(
                code: .badConfig, message: "--encrypt-verify-incoming/--encrypt-verify-outgoing apply only to an encrypted node",
                hint: "pass --encrypt KEY too (make one with `rumor keygen`)")
        }
    }
}
