/// Catch-up in bounded pages: the delta a peer lacks, cut into pages of at most a given size,
/// each saying per writer how far the receiver then holds everything (so an interrupted catch-up
/// resumes from the receiver's digest, with any peer, never from zero).
extension KeyValueStore {
    /// Where a catch-up stands in the sender's store: the writer being sent and the timestamp of
    /// its last write passed (nil: from the receiver's digest on).
    public struct PageCursor: Sendable, Hashable {
        public var writer: Writer
        public var after: HybridTimestamp?
    }

    /// What a page tells its receiver about one writer: holding every write of that writer up to
    /// `after` (`.zero`: from the beginning), it now holds every one up to `through`.
    public struct WriterSpan: Sendable, Hashable {
        public var after: HybridTimestamp
        public var through: HybridTimestamp

        public init(after: HybridTimestamp, through: HybridTimestamp) {
            self.after = after
            self.through = through
        }
    }

    /// One page of a delta.
    public struct Page: Sendable {
        public var entries: [Entry]
        /// Per writer passed, wholly or up to the cut.
        public var spans: [Writer: WriterSpan]
        /// `pageBytes` of the entries.
        public var bytes: Int
        /// Where the next page starts; nil when this one ends the delta.
        public var next: PageCursor?
    }

    /// An upper bound of the bytes `entry` takes in a replication frame.
    public static func pageBytes(of entry: Entry) -> Int {
        entry.key.utf8.count + entry.version.writer.name.utf8.count + entry.valueBytes + 40
    }

    /// The next page of what a peer whose digest is `peerDigest` lacks (less the writes it says
    /// it `held`), from `cursor` on: winning entries in writer then timestamp order until
    /// `maximumBytes` (at least one entry, so a page is at most one entry over).
    public func page(
        since peerDigest: Digest, held peerHeld: HeldWrites = [:],
        from cursor: PageCursor? = nil, maximumBytes: Int
    ) -> Page {
        var page = Page(entries: [], spans: [:], bytes: 0, next: nil)
        var writers = Set(index.keys).union(digest.keys).sorted()
        if let cursor { writers.removeAll { $0 < cursor.writer } }
        for writer in writers {
            let asked = peerDigest[writer] ?? .zero
            var start = asked
            if let cursor, cursor.writer == writer, let after = cursor.after, after > start { start = after }
            let held = peerHeld[writer] ?? []
            let ours = digest[writer] ?? .zero
            var passed: HybridTimestamp?
            for position in index[writer]?.after(start) ?? [] {
                let isNew = !Self.sortedContains(held, position.timestamp)
                if isNew, let entry = entries[position.key], entry.version.timestamp == position.timestamp,
                    entry.version.writer == writer
                {
                    let size = Self.pageBytes(of: entry)
                    if !page.entries.isEmpty, page.bytes + size > maximumBytes {
                        if let passed, min(passed, ours) > asked {
                            page.spans[writer] = WriterSpan(after: asked, through: min(passed, ours))
                        }
                        page.next = PageCursor(writer: writer, after: passed ?? (start == .zero ? nil : start))
                        return page
                    }
                    page.entries.append(entry)
                    page.bytes += size
                }
                passed = position.timestamp
            }
            if ours > asked { page.spans[writer] = WriterSpan(after: asked, through: ours) }
        }
        return page
    }

    /// About how many entries, and `pageBytes`, a peer whose digest is `peerDigest` lacks: the
    /// index positions past its digest (overwritten ones included until compaction) at the
    /// store's mean entry size. Costs a binary search per writer, not a scan.
    public func estimatedDelta(since peerDigest: Digest) -> (entries: Int, bytes: Int) {
        let count = index.reduce(0) { $0 + $1.value.after(peerDigest[$1.key]).count }
        let mean = entries.isEmpty ? 0 : pagedBytes / entries.count
        return (count, count * mean)
    }

    /// After merging a page: for each writer whose every write up to the span's `after` this
    /// store held, it now holds every one up to `through`. Returns whether the digest advanced.
    @discardableResult
    public mutating func acknowledge(spans: [Writer: WriterSpan]) -> Bool {
        var advanced = false
        for (writer, span) in spans {
            let held = digest[writer] ?? .zero
            guard held >= span.after, held < span.through else { continue }
            advance(writer, to: span.through)
            advanced = true
        }
        return advanced
    }
}
