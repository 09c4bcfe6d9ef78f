/// A node's tags (`KEY=VALUE` pairs) in its memberlist metadata, in one of two formats: Serf's
/// (a `0xFF` byte, then a msgpack map of strings: what Serf agents read and write) or Rumor's
/// plain one for swarms with Go memberlist nodes (`k=v,k=v` text). Pure, bounded: metadata is at
/// most 512 bytes.
public enum NodeTags {
    /// The first byte of Serf-format tags.
    public static let serfMagic: UInt8 = 0xFF

    /// How a node writes its tags.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        /// Serf's format (readable by Serf agents).
        case serf
        /// `k=v,k=v` text (for swarms with plain Go memberlist nodes).
        case text
    }

    /// The metadata for `tags`; keys in byte order, so equal tags give equal bytes.
    public static func encode(_ tags: [String: String], as format: Format) -> [UInt8] {
        let sorted = tags.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        switch format {
        case .text:
            return Array(sorted.map { "\($0.key)=\($0.value)" }.joined(separator: ",").utf8)
        case .serf:
            var out: [UInt8] = [serfMagic]
            appendHeader(count: sorted.count, fix: 0x80, sixteen: 0xde, thirtyTwo: 0xdf, to: &out)
            for (key, value) in sorted {
                appendString(key, to: &out)
                appendString(value, to: &out)
            }
            return out
        }
    }

    /// The tags in `meta`: Serf's format when it starts with the magic byte (nil when that map
    /// is malformed); else `k=v,k=v` text when every item is one; else, as Serf reads any other
    /// metadata, the whole of it as the `role` tag.
    public static func decode(_ meta: [UInt8]) -> [String: String]? {
        guard meta.first == serfMagic else { return decodeText(meta) }
        var reader = Reader(bytes: meta, offset: 1)
        guard let count = reader.mapHeader() else { return nil }
        var tags: [String: String] = [:]
        for _ in 0..<count {
            guard let key = reader.string(), let value = reader.string() else { return nil }
            tags[key] = value
        }
        return tags
    }

    private static func decodeText(_ meta: [UInt8]) -> [String: String] {
        let text = String(decoding: meta, as: UTF8.self)
        var tags: [String: String] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else { return ["role": text] }
            tags[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return tags
    }

    private static func appendString(_ text: String, to out: inout [UInt8]) {
        // go-msgpack's "raw" family, as Serf writes strings.
        let bytes = Array(text.utf8)
        if bytes.count < 32 {
            out.append(0xa0 | UInt8(bytes.count))
        } else {
            out.append(0xda)
            out += [UInt8(bytes.count >> 8 & 0xff), UInt8(bytes.count & 0xff)]
        }
        out += bytes
    }

    private static func appendHeader(count: Int, fix: UInt8, sixteen: UInt8, thirtyTwo: UInt8, to out: inout [UInt8]) {
        if count < 16 {
            out.append(fix | UInt8(count))
        } else {
            out.append(sixteen)
            out += [UInt8(count >> 8 & 0xff), UInt8(count & 0xff)]
        }
    }

    /// Reads the msgpack subset tags use: a map header and strings (raw, str8, bin).
    private struct Reader {
        let bytes: [UInt8]
        var offset: Int

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func length(_ size: Int) -> Int? {
            guard bytes.count - offset >= size else { return nil }
            defer { offset += size }
            return bytes[offset..<offset + size].reduce(0) { $0 << 8 | Int($1) }
        }

        mutating func mapHeader() -> Int? {
            guard let lead = byte() else { return nil }
            switch lead {
            case 0x80...0x8f: return Int(lead & 0x0f)
            case 0xde: return length(2)
            case 0xdf: return length(4)
            default: return nil
            }
        }

        mutating func string() -> String? {
            guard let lead = byte() else { return nil }
            let count: Int?
            switch lead {
            case 0xa0...0xbf: count = Int(lead & 0x1f)
            case 0xd9, 0xc4: count = length(1)
            case 0xda, 0xc5: count = length(2)
            case 0xdb, 0xc6: count = length(4)
            default: return nil
            }
            guard let count, bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return String(validating: bytes[offset..<offset + count], as: UTF8.self)
        }
    }
}
