/// How remote entries are taken: merged, or refused by rules every node shares (never by its
/// own clock), and how the hybrid clock follows what is merged; refusals reported to writers.
extension Replication {
    /// Merges remote entries: returns those that became winners, and those refused with why.
    mutating func mergeRemote(_ entries: [Entry], wallMilliseconds: UInt64)
        -> (news: [Entry], refused: [(entry: Entry, reason: String)])
    {
        var news: [Entry] = []
        var refused: [(entry: Entry, reason: String)] = []
        for entry in entries {
            if let reason = refusal(of: entry) {
                refused.append((entry, reason))
                continue
            }
            observe(entry.version, wallMilliseconds: wallMilliseconds)
            if store.merge(entry) { news.append(entry) }
        }
        return (news, refused)
    }

    /// Why this node refuses a remote entry, if it does. No rule reads a clock: nodes with the
    /// same limits refuse the same entries, whenever and wherever they see them, so the swarm
    /// cannot split over an entry some nodes took and others did not. An entry stamped far
    /// ahead of every clock is taken like any other (it wins until a later write replaces it,
    /// and a local write of its key is stamped above it).
    func refusal(of entry: Entry) -> String? {
        if entry.key.utf8.count > settings.maximumKeyBytes {
            return "its key is \(entry.key.utf8.count) bytes, over this node's limit of \(settings.maximumKeyBytes)"
        }
        if let value = entry.value, value.count > settings.maximumValueBytes {
            return "its value is \(value.count) bytes, over this node's limit of \(settings.maximumValueBytes)"
        }
        if entry.version.timestamp >= .latestAccepted {
            return "it is stamped \(entry.version.timestamp.milliseconds) ms after 1970, past the year 6429 no node takes"
        }
        return nil
    }

    var maximumOffsetMilliseconds: UInt64 { UInt64(max(0, settings.maximumClockOffset.nanosecondsClamped / 1_000_000)) }

    /// Our clock passes a remote version: any stamp of an earlier process of ours (what it
    /// issued, our next stamps must pass), others' only as far as the maximum clock offset past
    /// our wall clock.
    mutating func observe(_ version: Version, wallMilliseconds: UInt64) {
        // (A digest may vouch for any stamp; no clock passes one that every node refuses.)
        guard version.timestamp < .latestAccepted else { return }
        if version.writer.name == localName {
            clock.pass(version.timestamp)
        } else {
            clock.observe(version.timestamp, wallMilliseconds: wallMilliseconds, boundMilliseconds: maximumOffsetMilliseconds)
        }
    }

    /// Our clock passes every write a peer's digest vouches for, even ones we never merged.
    mutating func observe(_ digest: Digest, wallMilliseconds: UInt64) {
        for (writer, timestamp) in digest {
            observe(Version(timestamp: timestamp, writer: writer), wallMilliseconds: wallMilliseconds)
        }
    }

    /// Per reason, the directive that reports refused entries (and tells their writers, when
    /// they wait for acknowledgements).
    static func refusalDirectives(_ refused: [(entry: Entry, reason: String)], from sender: String, tellingWriters: Bool)
        -> [ReplicationDirective]
    {
        Dictionary(grouping: refused, by: { $0.reason }).sorted { $0.key < $1.key }.map { reason, refused in
            .refused(refused.map(\.entry.version), reason: reason, from: sender, tellWriters: tellingWriters)
        }
    }
}
