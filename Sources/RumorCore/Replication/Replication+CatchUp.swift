/// Catch-up: a node behind by more than one message (`maximumMessageBytes`) gets the rest in
/// pages streamed back to back over one stream. Pages come in writer then timestamp order and
/// each advances the receiver's digest (`CatchUpPage.spans`), so a lost stream or a change of
/// peer resumes where it stopped. The receiver serves reads and writes meanwhile; the driver
/// applies backpressure (a page is asked for only once the last one is written).
extension Replication {
    /// A catch-up this node receives.
    public struct CatchUpProgress: Sendable, Hashable {
        /// The peer sending it.
        public var peer: NodeAddress
        public var startedAtMilliseconds: UInt64
        public var pages = 0
        public var receivedEntries: UInt64 = 0
        public var receivedBytes: UInt64 = 0
        /// The sender's estimate of what is left (`KeyValueStore.estimatedDelta`).
        public var remainingEntries: UInt64 = 0
        public var remainingBytes: UInt64 = 0
    }

    /// A catch-up this node serves: what the peer asked with, and how far the pages got.
    public struct CatchUpServing: Sendable {
        public let peer: String
        let digest: Digest
        let held: HeldWrites
        var cursor: KeyValueStore.PageCursor?
        var remaining: (entries: Int, bytes: Int)?
        public internal(set) var isFinished = false
        public internal(set) var sentEntries = 0
        public internal(set) var sentBytes = 0

        public init(peer: String, digest: Digest, held: HeldWrites) {
            self.peer = peer
            self.digest = digest
            self.held = held
        }
    }

    /// The next page of a catch-up this node serves (the last one has `isLast`). Pages follow
    /// the store as it is when each is made: writes that land behind the cursor meanwhile are
    /// left to the next catch-up or anti-entropy (the spans never claim them).
    public mutating func nextCatchUpPage(_ serving: inout CatchUpServing) -> CatchUpPage {
        if serving.remaining == nil {
            notePeerDigest(serving.digest, of: serving.peer)
            serving.remaining = store.estimatedDelta(since: serving.digest)
        }
        let page = store.page(
            since: serving.digest, held: serving.held, from: serving.cursor, maximumBytes: settings.maximumMessageBytes)
        serving.cursor = page.next
        serving.isFinished = page.next == nil
        serving.sentEntries += page.entries.count
        serving.sentBytes += page.bytes
        let left = serving.remaining ?? (0, 0)
        serving.remaining = (max(0, left.entries - page.entries.count), max(0, left.bytes - page.bytes))
        return CatchUpPage(
            from: localName, entries: page.entries, spans: page.spans,
            remainingEntries: serving.isFinished ? 0 : UInt64(serving.remaining!.entries),
            remainingBytes: serving.isFinished ? 0 : UInt64(serving.remaining!.bytes), isLast: serving.isFinished)
    }

    /// The first page of a delta too large for one message, sent in a pull answer or as the push
    /// half of an exchange.
    func firstPage(_ page: KeyValueStore.Page, since digest: Digest) -> CatchUpPage {
        let total = store.estimatedDelta(since: digest)
        return CatchUpPage(
            from: localName, entries: page.entries, spans: page.spans,
            remainingEntries: UInt64(max(0, total.entries - page.entries.count)),
            remainingBytes: UInt64(max(0, total.bytes - page.bytes)), isLast: false)
    }

    /// Merges a page from `peer`. A page outside a catch-up (`inCatchUp` false: the first page
    /// of a large delta) that is not the last starts a catch-up from `peer`, unless one is under
    /// way or the page brought nothing new.
    public mutating func receiveCatchUpPage(
        _ page: CatchUpPage, from peer: NodeAddress, inCatchUp: Bool, wallMilliseconds: UInt64
    ) -> [ReplicationDirective] {
        let (news, refused) = mergeRemote(page.entries, wallMilliseconds: wallMilliseconds)
        let bytes = UInt64(page.entries.reduce(0) { $0 + KeyValueStore.pageBytes(of: $1) })
        // Our clock must pass every write the spans vouch for, even ones we never merged.
        observe(page.spans.mapValues(\.through), wallMilliseconds: wallMilliseconds)
        // A writer with a refused entry keeps its span unacknowledged (see `receivePullAnswer`).
        let refusedWriters = Set(refused.map(\.entry.version.writer))
        let advanced = store.acknowledge(spans: page.spans.filter { !refusedWriters.contains($0.key) })
        var out: [ReplicationDirective] = news.isEmpty ? [] : [.applied(news)]
        out += Self.refusalDirectives(refused, from: page.from, tellingWriters: false)
        if inCatchUp, var progress = catchUp {
            progress.pages += 1
            progress.receivedEntries += UInt64(page.entries.count)
            progress.receivedBytes += bytes
            progress.remainingEntries = page.remainingEntries
            progress.remainingBytes = page.remainingBytes
            catchUp = progress
        } else if !page.isLast, catchUp == nil, advanced || !news.isEmpty {
            // (A page that taught us nothing was made from a digest of ours since passed.)
            pullRetriesLeft = nil
            catchUp = CatchUpProgress(
                peer: peer, startedAtMilliseconds: wallMilliseconds, pages: 1, receivedEntries: UInt64(page.entries.count),
                receivedBytes: bytes,
                remainingEntries: page.remainingEntries, remainingBytes: page.remainingBytes)
            out.append(.catchUp(from: peer, digest: store.digest, held: store.heldSummary()))
        }
        return out
    }

    /// The catch-up stream ended, after its last page or not: either way the next anti-entropy
    /// round pulls again, from the digest the pages advanced. Returns what it received.
    @discardableResult
    public mutating func catchUpEnded() -> CatchUpProgress? {
        defer { catchUp = nil }
        return catchUp
    }
}
