/// Tunables of key-value replication.
public struct ReplicationSettings: Sendable, Hashable {
    /// The fewest children a node of the broadcast tree relays a fresh write to; more when the
    /// network is slow (`Replication.treeFanout`: each tree level costs a one-way delay, each
    /// child `sendCost`, and the fanout that informs the last node soonest wins). Default 3.
    public var fanout = 3
    /// The most children a node of the broadcast tree relays a fresh write to. Default 256.
    public var maximumFanout = 256
    /// What one more child costs a relaying node: the time to encode, seal and send one more
    /// datagram. Default 20 µs.
    public var sendCost: Duration = .microseconds(20)
    /// In a swarm of at most this many nodes a writer pushes straight to every peer (one hop,
    /// one copy per node); above it, down the broadcast tree with `fanout` children per node
    /// (log_fanout(N) hops, one copy per node). Default 64.
    public var directPushLimit = 64
    /// The shortest a tree relay waits for its child to confirm a push before sending it again;
    /// the wait is the child's retransmission timeout (`RoundTripTimes`) when that is longer.
    /// Default 20 ms: a busy host (a hundred agents on two cores) answers from loopback within it.
    public var relayConfirmTimeout: Duration = .milliseconds(20)
    /// Unconfirmed sends of one push to one child after which the next member of the child's
    /// range is asked to relay the range too (the child may have crashed); the child itself keeps
    /// being sent the push, for itself alone. Default 3.
    public var relayAttemptsBeforeHandOver = 3
    /// Sends of one push to one child in all, after which anti-entropy carries it there: at 10 %
    /// loss each way a send goes unconfirmed with probability 0.19, ten in a row 6·10⁻⁸.
    /// Default 10.
    public var relayAttempts = 10
    /// Time between anti-entropy pulls from one random peer. Default 1 s.
    public var antiEntropyInterval: Duration = .seconds(1)
    /// Longest key, in UTF-8 bytes. Default 1024.
    public var maximumKeyBytes = 1024
    /// Largest value, in bytes. Default 1 MiB.
    public var maximumValueBytes = 1 << 20
    /// Pushes larger than this go over a stream instead of a UDP packet. Default 1200 bytes.
    public var packetPushBytes = 1200
    /// How long a delete's tombstone is kept before it is forgotten. A node whose state has not
    /// been reconciled with a peer for longer than this discards it and resyncs, so it cannot
    /// bring back a key whose tombstone others have forgotten. Default 24 h.
    public var tombstoneGrace: Duration = .seconds(24 * 3600)
    /// A pull (a datagram, when small) unanswered after the pulled peer's retransmission
    /// timeout (`RoundTripTimes`), and at least this long, is sent again to another peer, at most
    /// `pullRetries` times per round: a lost datagram costs this, not a round. Default 200 ms.
    public var pullRetryAfter: Duration = .milliseconds(200)
    public var pullRetries = 2
    /// Largest pull answer, delta or catch-up page, in entry bytes (`KeyValueStore.pageBytes`):
    /// a node further behind catches up in pages of this size streamed back to back. A page
    /// holds at least one entry. Default 1 MiB.
    public var maximumMessageBytes = 1 << 20
    /// How far apart the nodes' wall clocks may be (`ClockOffsets`). A node whose clock is
    /// further than this from a majority of the peers it measured refuses local writes until it
    /// is back within it; a remote timestamp moves a node's hybrid clock at most this far past
    /// its wall clock. Default 500 ms: NTP keeps hosts within tens of milliseconds, even over
    /// the internet; a measurement's error is half its round trip (up to 100 ms on a 200 ms
    /// link); what is left absorbs a laptop waking with a stale clock until it syncs.
    /// CockroachDB's default `--max-offset` is the same.
    public var maximumClockOffset: Duration = .milliseconds(500)

    public init() {}
}
