/// The two clocks every input carries: the driver's monotonic time (timers, rate limits,
/// failure detection) and the wall clock in milliseconds since the epoch (hybrid timestamps,
/// expiry, tombstone grace).
public struct NodeTime: Sendable, Hashable {
    public var now: Instant
    public var wallMilliseconds: UInt64

    public init(now: Instant, wallMilliseconds: UInt64) {
        self.now = now
        self.wallMilliseconds = wallMilliseconds
    }
}

/// Identifies a local command that completes later (`put --wait`, `join`, `leave`, `keys`):
/// the driver picks it, the node echoes it in `NodeEffect.complete`.
public typealias CommandID = UInt64

/// One message of a received datagram, as the wire codec decoded it: membership traffic, or a
/// replication frame riding in a memberlist user message (decoded once, by the driver).
public enum NodeMessage: Sendable, Hashable {
    case membership(Message)
    case replication(ReplicationFrame)
    /// A Serf message in a memberlist user message (lifted by the driver in Serf mode).
    case serf(SerfMessage)
}

/// What a node sends without waiting for an answer.
public enum Datagram: Sendable, Hashable {
    /// One UDP packet of membership messages (a compound when several), with a CRC when
    /// `checksum` is set.
    case membership([Message], checksum: Bool)
    /// A replication frame: a UDP packet when it fits the packet budget, a one-way stream
    /// otherwise (the driver decides by encoded size).
    case replication(ReplicationFrame)
}

/// A request that arrived on a stream (TCP) the node must answer.
public enum StreamRequest: Sendable, Hashable {
    case pushPull(PushPull)
    case ping(Ping)
    case replication(ReplicationFrame)
    /// A memberlist user message that is not a Rumor frame.
    case user([UInt8])
}

/// The node's answer on that stream.
public enum StreamReply: Sendable, Hashable {
    case pushPull(PushPull)
    case ack(Ack)
    case error(String)
}

/// Timers a node asks its driver for. Like membership timers they are never cancelled: the node
/// ignores one that no longer applies.
public enum NodeTimer: Sendable, Hashable {
    case membership(MembershipTimer)
    /// Run an anti-entropy round.
    case antiEntropy
    /// Pull again from another peer if this round's pull is still unanswered.
    case pullRetry
    /// Send again the tree relays whose child has not confirmed them.
    case relayRetry
    /// Complete, fail or repair the writes awaited by `put --wait`.
    case replicaWaits
    /// Stop waiting for the leave announcement to spread.
    case leaveTimeout
    /// Serf's leave intent has had time to spread: now leave memberlist (as Serf does, so
    /// Serf agents list the node as left, not failed).
    case leaveAfterIntent
    /// Save the replicated state applied since the last save.
    case save
    /// Try the start-up seeds again.
    case joinRetry
    /// One more push-pull after a join (`Membership.followUpJoin`).
    case joinFollowUp
    /// A query of this node reached its deadline: stop collecting its answers.
    case queryDeadline(QueryID)
    /// Stop waiting for a first sync: ready without one (`NodeSettings.readyTimeout`).
    case readyTimeout
}

/// A change to the durable copy of the state (only with `NodeSettings.durable`).
public enum StorageWrite: Sendable, Hashable {
    /// Save entries (the latest per key), their change-log positions and digest values.
    case save(entries: [Entry], sequences: [String: UInt64], digest: Digest)
    /// Record new change-log positions of keys whose visibility changed without a write.
    case touch([String: UInt64])
    /// Delete collected tombstones and raise the change log's compaction mark.
    case forget([String], compactedThrough: UInt64)
    /// The state was reconciled with a peer at this wall time.
    case synced(atMilliseconds: UInt64)
}

/// A line for the driver's log.
public struct NodeLog: Sendable, Hashable {
    public enum Level: Sendable, Hashable {
        case debug, info, notice, warning, error
    }

    public var level: Level
    public var message: String
    public var metadata: [String: String]

    public init(_ level: Level, _ message: String, _ metadata: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}

/// How a command ended.
public enum CommandResult: Sendable, Hashable {
    /// `join`: this many seeds answered.
    case joined(contacted: Int)
    /// `leave`: the announcement spread (or the wait for it timed out).
    case left
    /// `put --wait`: enough peers hold the write; these do.
    case replicated(holders: [String])
    /// `keys`: what every node answered.
    case keyring(KeyringTally)
    case failed(NodeError)
}

/// Something the driver must do for the node, in the order given. Rare, large cases are
/// `indirect` so the frequent ones (send, timers) stay small to move.
public enum NodeEffect: Sendable, Hashable {
    case send(Datagram, to: NodeAddress)
    /// Run a push-pull exchange over a stream and report it with `pushPullFinished` (`join`
    /// names the join command it belongs to).
    indirect case pushPull(PushPull, to: NodeAddress, join: CommandID?)
    /// Open a catch-up stream to `from` with this request (a `catchUpRequest` frame), feed each
    /// page to `catchUpPageArrived` as it comes (the next is read once that returns), then call
    /// `catchUpEnded`.
    indirect case catchUp(ReplicationFrame, from: NodeAddress)
    /// Fallback probe over a stream until `deadline`; report with `streamPingFinished`.
    indirect case streamPing(Ping, to: NodeAddress, deadline: Instant)
    /// Ask `peer` to run a keyring operation; report with `keyringAnswered`.
    indirect case askKeyring(KeyringOperation, peer: String, at: NodeAddress, command: CommandID)
    /// Call `timerFired(timer)` after `after`.
    case startTimer(NodeTimer, after: Duration)
    case store(StorageWrite)
    /// The change log grew: wake the watchers.
    case changesRecorded
    /// A membership event (already logged and counted by the node).
    case memberEvent(MemberEvent)
    indirect case complete(CommandID, CommandResult)
    indirect case log(NodeLog)
    /// Resolve the configured seeds again and call `join(seeds:retrying: true)`.
    case retryJoin
    /// A probe was acknowledged after this long (for metrics).
    case probeAnswered(roundTrip: Duration)
    /// Gossip this Serf message: the driver encodes it and queues the bytes with
    /// `Node.queueSerfBroadcast` (the core does not encode).
    indirect case serfBroadcast(SerfMessage)
    /// Send this Serf message straight to these members, one packet each (a user event from this
    /// node, in swarms small enough for direct pushes); the driver encodes it.
    indirect case serfDirect(SerfMessage, to: [NodeAddress])
    /// A Serf user event this node had not seen (its own included): for event subscribers.
    indirect case userEvent(SerfUserEvent)
    /// Send `message` (a query answer) to `destination` through each of `via`: each gets it
    /// wrapped in a relay message naming the destination; the driver encodes both.
    indirect case serfRelay(SerfMessage, destination: NodeAddress, destinationName: String, via: [NodeAddress])
    /// Send these bytes (an encoded Serf message another node asked this one to relay) as a
    /// memberlist user message to `to`.
    indirect case serfForward([UInt8], to: NodeAddress)
    /// A query this node passes the filters of (its own included): for handlers and subscribers,
    /// who may answer with `Node.respond(to:payload:at:)` before its deadline.
    indirect case query(SerfQuery)
    /// One of Serf's key queries (`_serf_install-key`, …): the driver applies it to its keyring
    /// and answers with `Node.respond(to:payload:at:)`.
    indirect case keyQuery(SerfQuery)
    /// An acknowledgement or response to one of this node's queries (each responder once).
    indirect case queryAnswered(QueryID, SerfQueryResponse)
    /// One of this node's queries reached its deadline: no more answers will come.
    case queryEnded(QueryID)
    /// The node became ready (once per process; `Node.readiness`): wake what waits for it.
    case ready(ReadyReason)
}

/// The answers to a keyring operation run across the swarm.
public struct KeyringTally: Sendable, Hashable {
    /// Live Rumor nodes asked, this one included.
    public var nodes: Int
    /// Nodes that answered.
    public var responded: Int
    /// Per node that failed or did not answer, why.
    public var failures: [String: String]
    /// Per installed key, how many nodes hold it.
    public var keys: [[UInt8]: Int]
    /// Per primary key, how many nodes encrypt with it.
    public var primaryKeys: [[UInt8]: Int]

    public init(nodes: Int, responded: Int, failures: [String: String] = [:], keys: [[UInt8]: Int] = [:], primaryKeys: [[UInt8]: Int] = [:]) {
        self.nodes = nodes
        self.responded = responded
        self.failures = failures
        self.keys = keys
        self.primaryKeys = primaryKeys
    }
}
