import Foundation
import RumorCore
import RumorWire

/// What the local API (and so the CLI) can ask of a running agent.
///
/// The agent implements it; the HTTP API only translates requests into these calls.
public protocol AgentControl: Sendable {
    /// Every member this node knows, itself included, sorted by name.
    func members() async -> [MemberSnapshot]
    /// The network coordinate of `node` (nil: this node). Throws `AgentError` `unknown_node`
    /// when no member has that name, `no_coordinate` when none is known for it yet.
    func coordinate(of node: String?) async throws -> NodeCoordinateSnapshot
    /// The round trip between `from` and `to` (nil: this node) estimated from their
    /// coordinates, as `serf rtt`. Throws as `coordinate(of:)` for either node.
    func roundTrip(from: String, to: String?) async throws -> RoundTripEstimate
    /// A summary of this node.
    func info() async -> AgentInfo
    /// Sends a Serf user event to every node (Serf agents included); it is delivered here too.
    /// With `nodes`, or past Serf's 512 bytes, it goes straight to those (or all) Rumor nodes.
    /// Throws `AgentError` `event_too_large` past 1 MiB of name and payload, `unknown_node`, `left`.
    func sendEvent(name: String, payload: [UInt8], coalesce: Bool, nodes: [String]?) async throws -> UserEventSnapshot
    /// The agent's log lines from now on, at `level` or above (and the agent's own level), until
    /// the stream is dropped. Throws `AgentError` `bad_request` when the log is not monitored.
    func monitor(level: String) async throws -> AsyncStream<String>
    /// The user events this node delivers from now on (its own included), until the agent stops.
    func events() async -> AsyncStream<UserEventSnapshot>
    /// Sends a query; the stream carries its acknowledgements and responses, then `done`.
    func query(_ query: APIRequests.Query) async throws -> (QueryDispatch, AsyncStream<QueryAnswerSnapshot>)
    /// Sets and deletes this node's tags and announces them (Serf's `SetTags`); returns this
    /// node as others now see it. Throws `AgentError` `tags_too_large` (nothing changes then).
    func updateTags(set: [String: String], delete: [String]) async throws -> MemberSnapshot
    /// Joins the swarm through the given `host:port` seeds. Returns how many seeds answered.
    /// Throws `AgentError` (code `join_failed`) when none did.
    func join(_ seeds: [String]) async throws -> Int
    /// Leaves the swarm gracefully: tells the others this node is leaving, waits for that to
    /// spread (bounded), then stops taking part. The process keeps running until signalled.
    func leave() async throws
    /// Writes `value` under `key` and starts replicating it; an `ephemeral` value vanishes when
    /// this node fails or leaves. Throws `AgentError` (`empty_key`, `key_too_long`,
    /// `value_too_large`, `left`); nothing is written then.
    ///
    /// With `replicas`, returns only once that many nodes hold the write (reported in
    /// `EntrySnapshot.replicas`), or throws `replication_timeout` after `timeout` saying how many
    /// did; the write itself stays saved either way.
    func put(
        key: String, value: [UInt8], timeToLive: Duration?, ephemeral: Bool, replicas: ReplicaTarget?, timeout: Duration
    ) async throws -> EntrySnapshot
    /// Writes a batch in one transaction and one replication message: all or nothing.
    func putBatch(_ writes: [Replication.Write]) async throws -> Int
    /// Deletes `key` by writing a tombstone; with `replicas`, returns only once that many nodes
    /// hold the delete (as `put`).
    func delete(key: String, replicas: ReplicaTarget?, timeout: Duration) async throws -> EntrySnapshot
    /// Whether the node has synced with a peer since it started (reads are refused with
    /// `not_ready` until then, unless the caller accepts a stale read); with `limit`, waits up
    /// to that long for it first.
    func readiness(waitingUpTo limit: Duration?) async -> ReadinessSnapshot
    /// The live value of `key`, if any.
    func get(key: String) async -> EntrySnapshot?
    /// Live entries whose key starts with `prefix`, sorted by key, and the change-log position
    /// they reflect (watch from there to follow them).
    func list(prefix: String) async -> EntryList
    /// Changes to keys under `prefix` after change-log position `from` (nil: from now on), in
    /// batches, oldest first, each key at its latest state; then new changes as they happen.
    /// The stream ends when the agent shuts down. Throws `watch_compacted` when changes after
    /// `from` were forgotten, `watch_ahead` when `from` is beyond the log, and
    /// `watch_epoch_changed` when `epoch` (the epoch `from` was read in) is not this change
    /// log's: the agent restarted without its log, so `from` means nothing here.
    func watch(prefix: String, from: UInt64?, epoch: String?) async throws -> WatchOpening
    /// Ends every open watch (the API is shutting down).
    func endWatches() async
    /// A summary of the replicated state.
    func status() async -> StateStatus
    /// Prometheus text exposition of the agent's metrics (`GET /metrics`).
    func metricsText() async -> String
    /// Runs a keyring operation here and on every other live Rumor node of the swarm, and
    /// reports which keys each holds. Throws `encryption_disabled` when this node has no
    /// keyring, `bad_key` when this node refuses the operation (nothing changed anywhere), and
    /// `keyring_partial` when some nodes failed or did not answer (rerun it: every operation
    /// is idempotent).
    func keyring(_ operation: KeyringOperation) async throws -> KeyringReport
}

/// What `rumor keys` reports: how many nodes answered and which keys they hold.
public struct KeyringReport: Codable, Sendable, Hashable {
    /// Live Rumor nodes asked, this one included.
    public var nodes: Int
    /// Nodes that answered.
    public var responded: Int
    /// Per node that failed or did not answer, why.
    public var failures: [String: String]
    /// Per installed key (base64), how many nodes hold it.
    public var keys: [String: Int]
    /// Per primary key (base64), how many nodes encrypt with it.
    public var primaryKeys: [String: Int]

    public init(nodes: Int, responded: Int, failures: [String: String], keys: [String: Int], primaryKeys: [String: Int]) {
        self.nodes = nodes
        self.responded = responded
        self.failures = failures
        self.keys = keys
        self.primaryKeys = primaryKeys
    }
}

/// The answer to `list`: entries, and the change-log position they reflect.
public struct EntryList: Codable, Sendable, Hashable {
    public var entries: [EntrySnapshot]
    public var seq: UInt64
    /// The change log's epoch: `seq` means the same changes only within it (watch with both).
    public var epoch: String?

    public init(entries: [EntrySnapshot], seq: UInt64, epoch: String? = nil) {
        self.entries = entries
        self.seq = seq
        self.epoch = epoch
    }
}

/// An open watch: where the change log stood when it opened, and its changes.
public struct WatchOpening: Sendable {
    /// The change log's epoch.
    public var epoch: String
    /// The log's last seq when the watch opened: a watch from 0 has replayed every key once it
    /// passes it (the API sends it as `Rumor-Watch-Position`, the epoch as `Rumor-Watch-Epoch`).
    public var position: UInt64
    public var changes: AsyncThrowingStream<[EntrySnapshot], any Error>

    public init(epoch: String, position: UInt64, changes: AsyncThrowingStream<[EntrySnapshot], any Error>) {
        self.epoch = epoch
        self.position = position
        self.changes = changes
    }
}

/// One key-value entry as the API reports it.
public struct EntrySnapshot: Codable, Sendable, Hashable {
    public var key: String
    /// The value as UTF-8 text; nil for a delete, or when the bytes are not UTF-8 (see `valueBase64`).
    public var value: String?
    /// The value in base64 when it is not UTF-8 text.
    public var valueBase64: String?
    public var deleted: Bool
    /// The hybrid logical clock timestamp of the write, as `milliseconds.logical`.
    public var timestamp: String
    /// The node that wrote it.
    public var origin: String
    /// When the value expires (milliseconds since the epoch), if it has a time to live.
    public var expiresAt: UInt64?
    /// True when the value lives only while its writer is in the swarm.
    public var ephemeral: Bool
    /// For `put --wait`: the nodes known to hold the write, the writer first.
    public var replicas: [String]?
    /// The key's position in this node's change log (in `list` and `watch`).
    public var seq: UInt64?
    /// In `watch`: what happened: `put`, `delete`, `expire` (time to live ran out) or `depart`
    /// (an ephemeral value's writer failed or left).
    public var change: String?
    /// In `watch`: the change log's epoch. `seq` orders changes only within one epoch; an agent
    /// that restarts without its change log (no data dir, or after a crash) starts a new one.
    public var epoch: String?

    public init(_ entry: Entry) {
        key = entry.key
        deleted = entry.isTombstone
        if let bytes = entry.value {
            if let text = String(validating: bytes, as: UTF8.self) {
                value = text
            } else {
                valueBase64 = Data(bytes).base64EncodedString()
            }
        }
        timestamp = entry.version.timestamp.description
        origin = entry.version.origin
        expiresAt = entry.expiresAtMilliseconds
        ephemeral = entry.ephemeral
    }
}

/// A Serf user event, or a query this node received, as the API reports it.
public struct UserEventSnapshot: Codable, Sendable, Hashable {
    /// "user" or "query" (Serf's event types).
    public var event: String
    public var name: String
    /// The payload as UTF-8 text (lossy for non-text bytes).
    public var payload: String
    /// The event's Lamport time (Serf's `SERF_USER_LTIME`).
    public var ltime: UInt64
    /// Whether receivers may coalesce it with later events of the same name.
    public var coalesce: Bool

    public init(_ event: SerfUserEvent) {
        self.event = "user"
        self.name = event.name
        self.payload = String(decoding: event.payload, as: UTF8.self)
        self.ltime = event.time
        self.coalesce = event.coalesce
    }

    /// A query (answered by handlers; the stream only shows it).
    public init(query: SerfQuery) {
        self.event = "query"
        self.name = query.name
        self.payload = String(decoding: query.payload, as: UTF8.self)
        self.ltime = query.time
        self.coalesce = false
    }
}

/// A query this agent sent, as the API reports it first.
public struct QueryDispatch: Codable, Sendable, Hashable {
    /// Always "dispatched".
    public var type: String
    public var name: String
    public var ltime: UInt64
    public var id: UInt32
    /// How long answers are collected, in milliseconds.
    public var timeoutMilliseconds: Int64
    /// Whether nodes were asked to acknowledge.
    public var ack: Bool

    public init(_ query: SerfQuery) {
        type = "dispatched"
        name = query.name
        ltime = query.time
        id = query.id
        timeoutMilliseconds = query.timeout.nanosecondsClamped / 1_000_000
        ack = query.wantsAck
    }
}

/// One line of a query's answer stream: an acknowledgement, a response, or the end (`done`,
/// with the totals).
public struct QueryAnswerSnapshot: Codable, Sendable, Hashable {
    /// "ack", "response" or "done".
    public var type: String
    /// The answering node (ack and response).
    public var from: String?
    /// The response as UTF-8 text (lossy for non-text bytes).
    public var payload: String?
    public var acks: Int?
    public var responses: Int?

    public init(_ response: SerfQueryResponse) {
        type = response.isAck ? "ack" : "response"
        from = response.from
        payload = response.isAck ? nil : String(decoding: response.payload, as: UTF8.self)
    }

    public init(acks: Int, responses: Int) {
        type = "done"
        self.acks = acks
        self.responses = responses
    }
}

/// One member as the API reports it.
public struct MemberSnapshot: Codable, Sendable, Hashable {
    public var name: String
    /// `host:port` of the member's gossip socket.
    public var address: String
    /// `alive`, `suspect`, `dead` or `left`.
    public var state: String
    public var incarnation: UInt32
    /// The member's tags: Serf's, or `k=v` text ones, or (any other metadata, as Serf reads
    /// it) the whole metadata as `role`.
    public var tags: [String: String]
    /// The memberlist protocol version the member speaks.
    public var protocolVersion: UInt8
    /// The member's clock minus this node's, in milliseconds (positive: ahead), as last
    /// measured over an anti-entropy round trip; nil when not measured (this node, Serf and
    /// memberlist nodes, a peer not pulled from lately).
    public var clockOffsetMs: Int64?
    /// That measurement's error bound (half its round trip).
    public var clockOffsetErrorMs: Int64?
    /// The member's Vivaldi network coordinate, as its last ack to this node's probes carried
    /// it (this node's own for itself); nil until then, or for nodes that send none (plain
    /// memberlist).
    public var coordinate: CoordinateSnapshot?
    /// The round trip from this node to the member estimated from both coordinates, in
    /// milliseconds (0 for this node itself); nil without a coordinate.
    public var rttMs: Double?

    public init(
        name: String, address: String, state: String, incarnation: UInt32, tags: [String: String], protocolVersion: UInt8,
        clockOffset: ClockOffsets.Offset? = nil, coordinate: NetworkCoordinate? = nil, rtt: Duration? = nil
    ) {
        self.coordinate = coordinate.map(CoordinateSnapshot.init)
        self.rttMs = rtt.map(RoundTripEstimate.milliseconds)
        self.name = name
        self.address = address
        self.state = state
        self.incarnation = incarnation
        self.tags = tags
        self.protocolVersion = protocolVersion
        clockOffsetMs = clockOffset?.milliseconds
        clockOffsetErrorMs = clockOffset?.errorMilliseconds
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
    /// Gossip encryption: `off`; `on` (required both ways); or, while a plaintext swarm moves to
    /// encryption, `sending-plaintext` (step 1) or `accepting-plaintext` (step 2).
    public var encryption: String
    /// Counters: packets received/sent, dropped (by reason) and so on.
    public var counters: [String: UInt64]
    /// This node's clock as its peers see it, and whether it is fenced.
    public var clock: ClockSnapshot?

    public init(
        name: String, address: String, swarm: String, members: [String: Int], healthScore: Int,
        incarnation: UInt32, left: Bool, uptimeSeconds: Double, encryption: String, counters: [String: UInt64],
        clock: ClockSnapshot? = nil
    ) {
        self.clock = clock
        self.name = name
        self.address = address
        self.swarm = swarm
        self.members = members
        self.healthScore = healthScore
        self.incarnation = incarnation
        self.left = left
        self.uptimeSeconds = uptimeSeconds
        self.encryption = encryption
        self.counters = counters
    }
}
