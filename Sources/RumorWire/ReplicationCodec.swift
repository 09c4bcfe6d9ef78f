import RumorCore

/// Encodes and decodes replication frames:
/// `"RK" version(1) kind(1) body`, with unsigned LEB128 lengths and counts, big-endian
/// timestamps. Pull requests and answers may end with the sender's store fingerprint (8 bytes).
/// Bodies: push `reserved(1) flags(1, bit0 acknowledge, bit1 after, bit2 range) [after(8)]
/// [range end: iplength(1) ip port(2)] entries`; pull request
/// `from digest held`; pull answer `from wall(8) digest held entries`; acknowledgement
/// `from count (timestamp(8) writer)*`; refusal `from count (timestamp(8) writer)* reason`; catch-up request `from digest held`; catch-up page
/// `from flags(1, bit0 last) remainingEntries remainingBytes spans entries`, spans
/// `count (writer after(8) through(8))*`; event `from id(8) ltime(8) flags(1, bit0 coalesce) name
/// payload`; query response `from id(4) ltime(8) flags(1, bit0 ack) payload`. `held` is `count (writer count timestamp(8)*)*`.
/// An entry is `key flags(bit0 tombstone, bit1 expiry, bit2 ephemeral) timestamp(8)
/// writer [expiry(8)] [value]`; a digest is `count (writer timestamp(8))*`; a writer is
/// `name generation(8)`. Format version 3 (version 2 sent no wall clock in pull answers and
/// had no refusals; version 1 had no generations).
/// Every length and count is checked against the bytes present before allocation.
public enum ReplicationCodec {
    static let magic: [UInt8] = [0x52, 0x4B, 4]
    /// The kind byte (after the magic) of a `catchUpRequest`.
    public static let catchUpRequestKind: UInt8 = 5

    /// True when `payload` (a user message body) is a replication frame.
    public static func isFrame(_ payload: [UInt8]) -> Bool {
        payload.count >= 4 && payload[0] == magic[0] && payload[1] == magic[1]
    }

    public static func encode(_ frame: ReplicationFrame) -> [UInt8] {
        var out = magic
        switch frame {
        case .push(let entries, let relay, let acknowledge, let after):
            out.append(1)
            out.append(0)
            var end: NodeAddress?
            if case .range(let address) = relay { end = address }
            out.append((acknowledge ? 1 : 0) | (after == nil ? 0 : 2) | (end == nil ? 0 : 4))
            if let after { writeUInt64(after.rawValue, into: &out) }
            if let end {
                out.append(UInt8(end.ip.count))
                out += end.ip
                out.append(UInt8(end.port >> 8))
                out.append(UInt8(end.port & 0xFF))
            }
            writeEntries(entries, into: &out)
        case .pullRequest(let from, let digest, let held, let fingerprint, let complete):
            out.append(2)
            writeBytes(Array(from.utf8), into: &out)
            writeDigest(digest, into: &out)
            writeHeld(held, into: &out)
            if let fingerprint { writeUInt64(fingerprint, into: &out) }
            if complete { out.append(1) }  // flags: 1 = complete
        case .pullAnswer(let from, let wall, let entries, let digest, let held, let fingerprint):
            out.append(3)
            writeBytes(Array(from.utf8), into: &out)
            writeUInt64(wall, into: &out)
            writeDigest(digest, into: &out)
            writeHeld(held, into: &out)
            writeEntries(entries, into: &out)
            if let fingerprint { writeUInt64(fingerprint, into: &out) }
        case .acknowledgement(let from, let versions):
            out.append(4)
            writeBytes(Array(from.utf8), into: &out)
            writeVersions(versions, into: &out)
        case .refusal(let from, let versions, let reason):
            out.append(9)
            writeBytes(Array(from.utf8), into: &out)
            writeVersions(versions, into: &out)
            writeBytes(Array(reason.utf8), into: &out)
        case .catchUpRequest(let from, let digest, let held):
            out.append(5)
            writeBytes(Array(from.utf8), into: &out)
            writeDigest(digest, into: &out)
            writeHeld(held, into: &out)
        case .catchUpPage(let page):
            out.append(6)
            writeBytes(Array(page.from.utf8), into: &out)
            out.append(page.isLast ? 1 : 0)
            writeVarint(page.remainingEntries, into: &out)
            writeVarint(page.remainingBytes, into: &out)
            writeVarint(UInt64(page.spans.count), into: &out)
            for (writer, span) in page.spans.sorted(by: { $0.key < $1.key }) {
                writeWriter(writer, into: &out)
                writeUInt64(span.after.rawValue, into: &out)
                writeUInt64(span.through.rawValue, into: &out)
            }
            writeEntries(page.entries, into: &out)
        case .event(let from, let id, let event):
            out.append(7)
            writeBytes(Array(from.utf8), into: &out)
            writeUInt64(id, into: &out)
            writeUInt64(event.time, into: &out)
            out.append(event.coalesce ? 1 : 0)
            writeBytes(Array(event.name.utf8), into: &out)
            writeBytes(event.payload, into: &out)
        case .queryResponse(let response):
            out.append(8)
            writeBytes(Array(response.from.utf8), into: &out)
            out += [UInt8(response.id >> 24), UInt8(response.id >> 16 & 0xff), UInt8(response.id >> 8 & 0xff), UInt8(response.id & 0xff)]
            writeUInt64(response.time, into: &out)
            out.append(response.isAck ? 1 : 0)
            writeBytes(response.payload, into: &out)
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> ReplicationFrame {
        guard bytes.count >= 4, bytes[0] == magic[0], bytes[1] == magic[1] else { throw WireError(.malformed, "not a replication frame") }
        guard bytes[2] == magic[2] else {
            throw WireError(
                .malformed, "a replication frame of format \(bytes[2]); this node speaks format \(magic[2]) (run one Rumor release on every node)")
        }
        var reader = ByteReader(buffer: bytes, offset: 4)
        let frame: ReplicationFrame
        switch bytes[3] {
        case 1:
            _ = try reader.readByte()
            let flags = try reader.readByte()
            guard flags & ~7 == 0 else { throw WireError(.malformed, "unknown push flags \(flags)") }
            let after = flags & 2 != 0 ? HybridTimestamp(rawValue: try reader.readUInt64()) : nil
            var relay = PushRelay.none
            if flags & 4 != 0 {
                let length = Int(try reader.readByte())
                guard length == 4 || length == 16 else { throw WireError(.malformed, "a range end of \(length) address bytes") }
                var ip: [UInt8] = []
                for _ in 0..<length { ip.append(try reader.readByte()) }
                let port = UInt16(try reader.readByte()) << 8 | UInt16(try reader.readByte())
                relay = .range(end: NodeAddress(ip: ip, port: port))
            }
            frame = .push(entries: try readEntries(&reader), relay: relay, acknowledge: flags & 1 != 0, after: after)
        case 2:
            let from = try reader.readString()
            let digest = try readDigest(&reader)
            let held = try readHeld(&reader)
            let fingerprint = reader.remaining >= 8 ? try reader.readUInt64() : nil
            let flags = reader.remaining >= 1 ? try reader.readByte() : 0
            guard flags & ~1 == 0 else { throw WireError(.malformed, "unknown pull request flags \(flags)") }
            frame = .pullRequest(from: from, digest: digest, held: held, fingerprint: fingerprint, complete: flags & 1 != 0)
        case 3:
            let from = try reader.readString()
            let wall = try reader.readUInt64()
            let digest = try readDigest(&reader)
            let held = try readHeld(&reader)
            let entries = try readEntries(&reader)
            let fingerprint = reader.remaining >= 8 ? try reader.readUInt64() : nil
            frame = .pullAnswer(from: from, wallMilliseconds: wall, entries: entries, digest: digest, held: held, fingerprint: fingerprint)
        case 4:
            let from = try reader.readString()
            frame = .acknowledgement(from: from, versions: try readVersions(&reader))
        case 9:
            let from = try reader.readString()
            let versions = try readVersions(&reader)
            frame = .refusal(from: from, versions: versions, reason: try reader.readString())
        case 5:
            let from = try reader.readString()
            let digest = try readDigest(&reader)
            frame = .catchUpRequest(from: from, digest: digest, held: try readHeld(&reader))
        case 6:
            let from = try reader.readString()
            let flags = try reader.readByte()
            guard flags & ~1 == 0 else { throw WireError(.malformed, "unknown catch-up page flags \(flags)") }
            let remainingEntries = try reader.readVarint()
            let remainingBytes = try reader.readVarint()
            let count = try reader.readCount(minimumItemBytes: 25)
            var spans: [Writer: KeyValueStore.WriterSpan] = [:]
            for _ in 0..<count {
                let writer = try readWriter(&reader)
                let after = HybridTimestamp(rawValue: try reader.readUInt64())
                spans[writer] = KeyValueStore.WriterSpan(after: after, through: HybridTimestamp(rawValue: try reader.readUInt64()))
            }
            frame = .catchUpPage(
                CatchUpPage(
                    from: from, entries: try readEntries(&reader), spans: spans, remainingEntries: remainingEntries,
                    remainingBytes: remainingBytes, isLast: flags & 1 != 0))
        case 7:
            let from = try reader.readString()
            let id = try reader.readUInt64()
            let time = try reader.readUInt64()
            let flags = try reader.readByte()
            guard flags & ~1 == 0 else { throw WireError(.malformed, "unknown event flags \(flags)") }
            let name = try reader.readString()
            let payload = try reader.readBytes()
            frame = .event(from: from, id: id, SerfUserEvent(time: time, name: name, payload: payload, coalesce: flags & 1 != 0))
        case 8:
            let from = try reader.readString()
            var id: UInt32 = 0
            for _ in 0..<4 { id = id << 8 | UInt32(try reader.readByte()) }
            let time = try reader.readUInt64()
            let flags = try reader.readByte()
            guard flags & ~1 == 0 else { throw WireError(.malformed, "unknown query response flags \(flags)") }
            frame = .queryResponse(SerfQueryResponse(time: time, id: id, from: from, isAck: flags & 1 != 0, payload: try reader.readBytes()))
        default:
            throw WireError(.malformed, "unknown replication frame kind \(bytes[3])")
        }
        guard reader.offset == bytes.count else { throw WireError(.malformed, "trailing bytes after a replication frame") }
        return frame
    }

    private static func writeVersions(_ versions: [Version], into out: inout [UInt8]) {
        writeVarint(UInt64(versions.count), into: &out)
        for version in versions {
            writeUInt64(version.timestamp.rawValue, into: &out)
            writeWriter(version.writer, into: &out)
        }
    }

    private static func readVersions(_ reader: inout ByteReader) throws(WireError) -> [Version] {
        let count = try reader.readCount(minimumItemBytes: 17)
        var versions: [Version] = []
        versions.reserveCapacity(count)
        for _ in 0..<count {
            let timestamp = HybridTimestamp(rawValue: try reader.readUInt64())
            versions.append(Version(timestamp: timestamp, writer: try readWriter(&reader)))
        }
        return versions
    }

    private static func writeEntries(_ entries: [Entry], into out: inout [UInt8]) {
        writeVarint(UInt64(entries.count), into: &out)
        for entry in entries {
            // A value kept on disk is loaded by the driver first: sending it as a tombstone would delete the key.
            precondition(!entry.isValueOnDisk, "an entry whose value is on disk reached the codec")
            writeBytes(Array(entry.key.utf8), into: &out)
            var flags: UInt8 = 0
            if entry.isTombstone { flags |= 1 }
            if entry.expiresAtMilliseconds != nil { flags |= 2 }
            if entry.ephemeral { flags |= 4 }
            out.append(flags)
            writeUInt64(entry.version.timestamp.rawValue, into: &out)
            writeWriter(entry.version.writer, into: &out)
            if let expiry = entry.expiresAtMilliseconds { writeUInt64(expiry, into: &out) }
            if let value = entry.value { writeBytes(value, into: &out) }
        }
    }

    private static func readEntries(_ reader: inout ByteReader) throws(WireError) -> [Entry] {
        // key length, flags, timestamp, writer name length and generation: 19 bytes at the very least.
        let count = try reader.readCount(minimumItemBytes: 19)
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            let key = try reader.readString()
            guard !key.isEmpty else { throw WireError(.malformed, "entry without a key") }
            let flags = try reader.readByte()
            guard flags & ~7 == 0 else { throw WireError(.malformed, "unknown entry flags \(flags)") }
            let timestamp = HybridTimestamp(rawValue: try reader.readUInt64())
            let writer = try readWriter(&reader)
            let expiry = flags & 2 != 0 ? try reader.readUInt64() : nil
            let value = flags & 1 != 0 ? nil : try reader.readBytes()
            entries.append(
                Entry(
                    key: key, value: value, version: Version(timestamp: timestamp, writer: writer),
                    expiresAtMilliseconds: expiry, ephemeral: flags & 4 != 0))
        }
        return entries
    }

    private static func writeWriter(_ writer: Writer, into out: inout [UInt8]) {
        writeBytes(Array(writer.name.utf8), into: &out)
        writeUInt64(writer.generation, into: &out)
    }

    private static func readWriter(_ reader: inout ByteReader) throws(WireError) -> Writer {
        let name = try reader.readString()
        guard !name.isEmpty else { throw WireError(.malformed, "a writer without a name") }
        return Writer(name: name, generation: try reader.readUInt64())
    }

    private static func writeDigest(_ digest: Digest, into out: inout [UInt8]) {
        writeVarint(UInt64(digest.count), into: &out)
        for (writer, timestamp) in digest.sorted(by: { $0.key < $1.key }) {
            writeWriter(writer, into: &out)
            writeUInt64(timestamp.rawValue, into: &out)
        }
    }

    private static func readDigest(_ reader: inout ByteReader) throws(WireError) -> Digest {
        let count = try reader.readCount(minimumItemBytes: 17)
        var digest: Digest = [:]
        for _ in 0..<count {
            let writer = try readWriter(&reader)
            digest[writer] = HybridTimestamp(rawValue: try reader.readUInt64())
        }
        return digest
    }

    private static func writeHeld(_ held: HeldWrites, into out: inout [UInt8]) {
        writeVarint(UInt64(held.count), into: &out)
        for (writer, stamps) in held.sorted(by: { $0.key < $1.key }) {
            writeWriter(writer, into: &out)
            writeVarint(UInt64(stamps.count), into: &out)
            for stamp in stamps { writeUInt64(stamp.rawValue, into: &out) }
        }
    }

    private static func readHeld(_ reader: inout ByteReader) throws(WireError) -> HeldWrites {
        let count = try reader.readCount(minimumItemBytes: 10)
        var held: HeldWrites = [:]
        for _ in 0..<count {
            let writer = try readWriter(&reader)
            let stamps = try reader.readCount(minimumItemBytes: 8)
            var list: [HybridTimestamp] = []
            list.reserveCapacity(stamps)
            for _ in 0..<stamps { list.append(HybridTimestamp(rawValue: try reader.readUInt64())) }
            held[writer] = list
        }
        return held
    }

    private static func writeVarint(_ value: UInt64, into out: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    private static func writeBytes(_ bytes: [UInt8], into out: inout [UInt8]) {
        writeVarint(UInt64(bytes.count), into: &out)
        out += bytes
    }

    private static func writeUInt64(_ value: UInt64, into out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }
}

/// Reads the replication frame primitives, checking every length first.
private struct ByteReader {
    let buffer: [UInt8]
    var offset: Int

    var remaining: Int { buffer.count - offset }

    mutating func readByte() throws(WireError) -> UInt8 {
        guard offset < buffer.count else { throw WireError(.truncated) }
        defer { offset += 1 }
        return buffer[offset]
    }

    mutating func readVarint() throws(WireError) -> UInt64 {
        var result: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            let byte = try readByte()
            result |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte & 0x80 == 0 { return result }
        }
        throw WireError(.malformed, "varint too long")
    }

    /// A count of items each at least `minimumItemBytes` long: more than the bytes left allow is a lie.
    mutating func readCount(minimumItemBytes: Int) throws(WireError) -> Int {
        let value = try readVarint()
        guard value <= UInt64(remaining / minimumItemBytes) else { throw WireError(.truncated, "count \(value) exceeds the frame") }
        return Int(value)
    }

    mutating func readBytes() throws(WireError) -> [UInt8] {
        let length = try readVarint()
        guard length <= UInt64(remaining) else { throw WireError(.truncated, "length \(length) exceeds the frame") }
        defer { offset += Int(length) }
        return Array(buffer[offset..<offset + Int(length)])
    }

    mutating func readString() throws(WireError) -> String {
        let raw = try readBytes()
        guard let text = String(validating: raw, as: UTF8.self) else { throw WireError(.malformed, "string is not UTF-8") }
        return text
    }

    mutating func readUInt64() throws(WireError) -> UInt64 {
        guard remaining >= 8 else { throw WireError(.truncated) }
        var value: UInt64 = 0
        for byte in buffer[offset..<offset + 8] { value = value << 8 | UInt64(byte) }
        offset += 8
        return value
    }
}
