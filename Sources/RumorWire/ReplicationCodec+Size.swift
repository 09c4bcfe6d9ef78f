import RumorCore

extension ReplicationCodec {
    /// The length `encode(frame)` would have, computed without building it.
    public static func encodedSize(_ frame: ReplicationFrame) -> Int {
        func varint(_ value: Int) -> Int {
            var size = 1
            var rest = UInt64(value) >> 7
            while rest > 0 {
                size += 1
                rest >>= 7
            }
            return size
        }
        func bytes(_ count: Int) -> Int { varint(count) + count }
        func entries(_ entries: [Entry]) -> Int {
            entries.reduce(varint(entries.count)) { size, entry in
                size + bytes(entry.key.utf8.count) + 1 + 8 + writer(entry.version.writer)
                    + (entry.expiresAtMilliseconds == nil ? 0 : 8) + (entry.value.map { bytes($0.count) } ?? 0)
            }
        }
        func writer(_ writer: Writer) -> Int { bytes(writer.name.utf8.count) + 8 }
        func versions(_ versions: [Version]) -> Int { versions.reduce(varint(versions.count)) { $0 + 8 + writer($1.writer) } }
        func digest(_ digest: Digest) -> Int {
            digest.keys.reduce(varint(digest.count)) { $0 + writer($1) + 8 }
        }
        func held(_ held: HeldWrites) -> Int {
            held.reduce(varint(held.count)) { $0 + writer($1.key) + varint($1.value.count) + 8 * $1.value.count }
        }
        let header = magic.count + 1
        switch frame {
        case .push(let list, let relay, _, let after):
            var end = 0
            if case .range(let address) = relay { end = 3 + address.ipLength }
            return header + 2 + (after == nil ? 0 : 8) + end + entries(list)
        case .pullRequest(let from, let summary, let extra, let fingerprint, let complete):
            return header + bytes(from.utf8.count) + digest(summary) + held(extra) + (fingerprint == nil ? 0 : 8)
                + (complete ? 1 : 0)
        case .pullAnswer(let from, _, let list, let summary, let extra, let fingerprint):
            return header + bytes(from.utf8.count) + 8 + digest(summary) + held(extra) + entries(list) + (fingerprint == nil ? 0 : 8)
        case .acknowledgement(let from, let list):
            return header + bytes(from.utf8.count) + versions(list)
        case .refusal(let from, let list, let reason):
            return header + bytes(from.utf8.count) + versions(list) + bytes(reason.utf8.count)
        case .catchUpRequest(let from, let summary, let extra):
            return header + bytes(from.utf8.count) + digest(summary) + held(extra)
        case .catchUpPage(let page):
            let spans = page.spans.keys.reduce(varint(page.spans.count)) { $0 + writer($1) + 16 }
            return header + bytes(page.from.utf8.count) + 1 + varint(Int(clamping: page.remainingEntries))
                + varint(Int(clamping: page.remainingBytes)) + spans + entries(page.entries)
        case .event(let from, _, let event):
            return header + bytes(from.utf8.count) + 17 + bytes(event.name.utf8.count) + bytes(event.payload.count)
        case .queryResponse(let response):
            return header + bytes(response.from.utf8.count) + 13 + bytes(response.payload.count)
        }
    }
}
