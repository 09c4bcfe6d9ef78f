import RumorCore
import Testing

@testable import RumorWire

struct ReplicationCodecTests {
    static let entries = [
        Entry(key: "k", value: Array("v".utf8), version: Version(timestamp: HybridTimestamp(milliseconds: 5, logical: 2), origin: "n1")),
        Entry(key: "gone", value: nil, version: Version(timestamp: HybridTimestamp(milliseconds: 6, logical: 0), origin: "n2")),
        Entry(
            key: "ttl/é", value: Array(repeating: 0xff, count: 300),
            version: Version(timestamp: HybridTimestamp(rawValue: .max), origin: "n3", generation: .max), expiresAtMilliseconds: 99, ephemeral: true),
    ]
    static let digest: Digest = [
        "n1": HybridTimestamp(milliseconds: 5, logical: 2), "n2": .zero,
        Writer(name: "n2", generation: 0x0123_4567_89ab_cdef): HybridTimestamp(milliseconds: 3, logical: 1),
    ]
    static let held: HeldWrites = ["n1": [HybridTimestamp(milliseconds: 7, logical: 0), HybridTimestamp(milliseconds: 9, logical: 1)]]

    @Test(arguments: [
        ReplicationFrame.push(entries: entries, relay: .range(end: NodeAddress(ip: [10, 0, 0, 7], port: 7946)), acknowledge: false),
        .push(entries: [], relay: .none, acknowledge: true),
        .push(entries: [], relay: .range(end: NodeAddress(ip: Array(repeating: 0xfe, count: 16), port: 65535)), acknowledge: false),
        .push(entries: [entries[0]], relay: .none, acknowledge: true, after: HybridTimestamp(milliseconds: 4, logical: 9)),
        .pullRequest(from: "n1", digest: digest, held: held),
        .pullRequest(from: "", digest: [:], held: [:]),
        .pullAnswer(from: "n2", wallMilliseconds: 1_700_000_000_000, entries: entries, digest: digest, held: held),
        .pullRequest(from: "n1", digest: digest, held: held, fingerprint: 0xdead_beef_0123_4567),
        .pullRequest(from: "n1", digest: digest, held: held, fingerprint: 0xdead_beef_0123_4567, complete: true),
        .pullRequest(from: "n1", digest: [:], held: [:], complete: true),
        .pullAnswer(from: "n2", wallMilliseconds: 1_700_000_000_000, entries: entries, digest: digest, held: held, fingerprint: .max),
        .pullAnswer(from: "n2", wallMilliseconds: 1_700_000_000_000, entries: [], digest: [:], held: [:], fingerprint: 0),
        .acknowledgement(from: "n4", versions: entries.map(\.version)),
        .acknowledgement(from: "n4", versions: []),
        .catchUpRequest(from: "n1", digest: digest, held: held),
        .catchUpRequest(from: "n1", digest: [:], held: [:]),
        .catchUpPage(
            CatchUpPage(
                from: "n2", entries: entries,
                spans: ["n1": .init(after: .zero, through: HybridTimestamp(milliseconds: 5, logical: 2)),
                        "n3": .init(after: HybridTimestamp(milliseconds: 1, logical: 0), through: HybridTimestamp(rawValue: .max))],
                remainingEntries: 1_000_000, remainingBytes: 150_000_000, isLast: false)),
        .catchUpPage(CatchUpPage(from: "n2", entries: [], spans: [:], isLast: true)),
        .event(from: "n1", id: .max, SerfUserEvent(time: 42, name: "deploy", payload: Array(repeating: 7, count: 5000), coalesce: true)),
        .event(from: "n1", id: 0, SerfUserEvent(time: 1, name: "x", payload: [], coalesce: false)),
        .queryResponse(SerfQueryResponse(time: 9, id: .max, from: "n3", isAck: false, payload: Array(repeating: 1, count: 3000))),
        .queryResponse(SerfQueryResponse(time: 1, id: 0x0102_0304, from: "n3", isAck: true)),
    ])
    func framesRoundTrip(frame: ReplicationFrame) throws {
        let bytes = ReplicationCodec.encode(frame)
        #expect(ReplicationCodec.encodedSize(frame) == bytes.count)
        #expect(ReplicationCodec.isFrame(bytes))
        #expect(try ReplicationCodec.decode(bytes) == frame)
    }

    @Test func everyTruncationIsRejected() {
        let page = CatchUpPage(
            from: "n2", entries: Self.entries, spans: ["n1": .init(after: .zero, through: HybridTimestamp(milliseconds: 5, logical: 2))],
            remainingEntries: 7, remainingBytes: 700, isLast: false)
        for frame in [ReplicationFrame.pullAnswer(from: "n2", wallMilliseconds: 1_700_000_000_000, entries: Self.entries, digest: Self.digest, held: Self.held), .catchUpPage(page)] {
            let bytes = ReplicationCodec.encode(frame)
            for cut in 0..<bytes.count {
                #expect(throws: WireError.self) { try ReplicationCodec.decode(Array(bytes.prefix(cut))) }
            }
            #expect(throws: WireError.self) { try ReplicationCodec.decode(bytes + [0]) }
        }
    }

    @Test func aFrameOfAnotherFormat_isRefusedNamingBothFormats() {
        var bytes = ReplicationCodec.encode(.push(entries: Self.entries, relay: .none, acknowledge: false))
        bytes[2] = 1
        #expect(throws: WireError(.malformed, "a replication frame of format 1; this node speaks format 4 (run one Rumor release on every node)")) {
            try ReplicationCodec.decode(bytes)
        }
    }

    @Test func hugeCountsAreRejectedBeforeAllocating() {
        // push, reserved 0, flags 0, count = 2^63 as a varint
        let bytes: [UInt8] = [0x52, 0x4B, 3, 1, 0, 0] + Array(repeating: 0xff, count: 8) + [0x7f]
        #expect(throws: WireError.self) { try ReplicationCodec.decode(bytes) }
    }

    @Test func randomAndMutatedFramesNeverCrash() {
        var random = SeededRandom(seed: 7)
        let seed = ReplicationCodec.encode(
            .pullAnswer(from: "n2", wallMilliseconds: 1_700_000_000_000, entries: Self.entries, digest: Self.digest, held: Self.held))
        for _ in 0..<20_000 {
            var input = seed
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                input[Int.random(in: 3..<input.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            _ = try? ReplicationCodec.decode(input)
        }
    }

    /// Found by Fuzz/FuzzReplication: entries with an empty key and writer, padded with a
    /// non-canonical varint, decoded; their canonical re-encoding then failed the entry-count
    /// plausibility check (which assumed 12-byte entries; the minimum is 11). Entries without a
    /// key or writer are now malformed, and the bound is 11 (19 since writers carry a
    /// generation; the frame below is that crash in format 4, with one entry).
    @Test func entriesWithoutKeyOrWriterAreMalformed() throws {
        let crash: [UInt8] = [
            0x52, 0x4b, 0x04, 0x01, 0x00, 0x00, 0x01, 0x80, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00,
        ]
        #expect(throws: WireError(.malformed, "entry without a key")) { try ReplicationCodec.decode(crash) }
        let tombstone = Entry(key: "k", value: nil, version: Version(timestamp: .zero, origin: "w"))
        let frame = ReplicationFrame.push(entries: [tombstone, tombstone], relay: .none, acknowledge: false)
        #expect(try ReplicationCodec.decode(ReplicationCodec.encode(frame)) == frame, "the smallest entries still decode")
    }
}
