/// A key-value replication frame. Frames ride inside memberlist user messages: pushes in UDP
/// packets (or a stream when large), pulls and their answers on a stream.
public enum ReplicationFrame: Sendable, Hashable {
    /// Fresh entries: a writer's push, a relay over the broadcast tree (see `PushRelay`) or a
    /// repair; `acknowledge` asks every node that gets them to report back to the writer (for
    /// `put --wait`).
    /// `after`: every entry has the same writer, and the frame holds all of that writer's writes
    /// after this timestamp (so a receiver holding everything up to it may advance its digest).
    case push(entries: [Entry], relay: PushRelay, acknowledge: Bool, after: HybridTimestamp? = nil)
    /// Node `from` asks for what its digest shows missing, less the writes it `held` beyond it.
    /// `fingerprint`: of the versions it holds (`KeyValueStore.fingerprint`); a peer holding the
    /// same answers with no entries without computing a delta. `complete`: the node is syncing
    /// after its start and must get everything, writes the broadcast tree is still delivering
    /// included (`Replication.answerPull(heldBack:)`).
    case pullRequest(
        from: String, digest: Digest, held: HeldWrites, fingerprint: UInt64? = nil, complete: Bool = false)
    /// Node `from` answers a pull with the missing entries, its own digest and held writes
    /// (also sent unsolicited as the push half of a push-pull exchange), and its fingerprint.
    /// `wallMilliseconds`: its wall clock when it answered; the puller measures the offset of
    /// `from`'s clock from it and the pull's round trip (`ClockOffsets`).
    case pullAnswer(
        from: String, wallMilliseconds: UInt64, entries: [Entry], digest: Digest, held: HeldWrites,
        fingerprint: UInt64? = nil)
    /// Node `from` holds these versions (or newer writes of the same keys).
    case acknowledgement(from: String, versions: [Version])
    /// Node `from` refused these versions of the receiver's writes, for `reason` (their writer
    /// asked for acknowledgements: its `put --wait` fails, naming the node and the reason).
    case refusal(from: String, versions: [Version], reason: String)
    /// Node `from` asks, over a stream, for every entry its digest shows missing (less what it
    /// `held`), in pages sent back to back on the same stream (a catch-up).
    case catchUpRequest(from: String, digest: Digest, held: HeldWrites)
    /// One bounded page of a catch-up: an answer to a `catchUpRequest`, or the first page of a
    /// delta too large for one message (which asks its receiver to catch up from the sender).
    case catchUpPage(CatchUpPage)
    /// A user event sent straight to this node by `from` (Rumor's, beyond Serf's: to chosen
    /// nodes, or past Serf's 512 bytes), never gossiped; `id` tells copies apart.
    indirect case event(from: String, id: UInt64, SerfUserEvent)
    /// A response to a query of the receiver, too large for Serf's 1024 bytes (Rumor to Rumor).
    indirect case queryResponse(SerfQueryResponse)
}

/// One page of entries a node lacks, in writer then timestamp order, at most
/// `ReplicationSettings.maximumMessageBytes` (or one entry).
public struct CatchUpPage: Sendable, Hashable {
    /// The sender.
    public var from: String
    public var entries: [Entry]
    /// Per writer: holding every write of it up to `after`, the receiver now holds every one up to
    /// `through`. Its digest advances page by page, so a catch-up that stops resumes from there,
    /// whichever peer it continues with.
    public var spans: [Writer: KeyValueStore.WriterSpan]
    /// The sender's estimate of what is left after this page.
    public var remainingEntries: UInt64
    public var remainingBytes: UInt64
    /// True on the last page: the receiver holds everything the sender held when it began.
    public var isLast: Bool

    public init(
        from: String, entries: [Entry], spans: [Writer: KeyValueStore.WriterSpan], remainingEntries: UInt64 = 0,
        remainingBytes: UInt64 = 0, isLast: Bool
    ) {
        self.from = from
        self.entries = entries
        self.spans = spans
        self.remainingEntries = remainingEntries
        self.remainingBytes = remainingBytes
        self.isLast = isLast
    }
}

/// What the receiver of a push does with it besides merging it.
public enum PushRelay: Sendable, Hashable {
    /// Nothing: a writer's direct push to every peer, or a repair.
    case none
    /// Relay it down the broadcast tree: the receiver confirms receipt to the sender (an
    /// `acknowledgement` of the first entry) and passes the entries to the members that follow
    /// it on the address ring, up to `end` (exclusive), split into `fanout` equal ranges whose
    /// first members relay their range in turn (`Replication.treeRelays`).
    case range(end: NodeAddress)
}
