import RumorCore

/// A decoded UDP packet.
public struct DecodedPacket: Sendable, Hashable {
    public var messages: [Message]
    /// Compound parts announced but cut off by the end of the packet.
    public var truncatedParts: Int
}

/// Encodes and decodes UDP packets as memberlist does: one message or a compound of up to 255,
/// optionally LZW-compressed, optionally behind a CRC32, encrypted when a keyring is set,
/// optionally prefixed by a label: `[label header] [encrypted( [crc] [compressed] body )]`.
public struct PacketCodec: Sendable {
    /// The swarm label; "" sends unlabelled packets and accepts only unlabelled ones.
    public let label: String
    /// The encryption keys; when enabled, every packet sent is encrypted with the primary key
    /// and every packet received must decrypt with one of them (the label is authenticated).
    public var keyring: Keyring
    /// With a keyring: whether every packet received must be encrypted (memberlist's
    /// `GossipVerifyIncoming`). False while a plaintext swarm moves to encryption: packets that
    /// no key opens are then read as plaintext.
    public var verifyIncoming = true
    /// With a keyring: whether packets are sent encrypted (memberlist's `GossipVerifyOutgoing`).
    /// False only in the first step of moving a plaintext swarm to encryption.
    public var verifyOutgoing = true
    /// Compress outgoing packets (only when that makes them smaller). Incoming compressed
    /// packets are always accepted.
    public let compression: Bool
    /// Largest decompressed size accepted.
    public let maximumDecompressedSize: Int

    public init(label: String = "", keyring: Keyring = Keyring(), compression: Bool = true, maximumDecompressedSize: Int = 1 << 20) {
        self.label = label
        self.keyring = keyring
        self.compression = compression
        self.maximumDecompressedSize = maximumDecompressedSize
    }

    /// Encodes `messages` (at most 255) into one packet; `compress: false` skips the compression
    /// attempt (replication frames are mostly incompressible and sent often).
    public func encode(_ messages: [Message], checksum: Bool = false, compress: Bool? = nil) -> [UInt8] {
        var body: [UInt8]
        if messages.count == 1 {
            body = MessageCodec.encode(messages[0])
        } else {
            let parts = messages.prefix(255).map(MessageCodec.encode)
            body = [MessageType.compound.rawValue, UInt8(parts.count)]
            body.reserveCapacity(2 + parts.reduce(0) { $0 + 2 + $1.count })
            for part in parts {
                body.append(UInt8(part.count >> 8))
                body.append(UInt8(part.count & 0xff))
            }
            for part in parts { body += part }
        }
        if compress ?? compression {
            let compressed = compressMessage(body)
            if compressed.count < body.count { body = compressed }
        }
        if checksum {
            let crc = CRC32.checksum(body)
            body = [MessageType.hasCRC.rawValue, UInt8(crc >> 24), UInt8((crc >> 16) & 0xff), UInt8((crc >> 8) & 0xff), UInt8(crc & 0xff)] + body
        }
        if let key = keyring.primary, verifyOutgoing {
            body = GossipCipher.seal(body, key: key, authenticated: Array(label.utf8))
        }
        return labelHeader(label) + body
    }

    /// Decodes a packet. Throws `WireError` for a foreign label, bad checksum or malformed bytes;
    /// cut-off compound parts are counted, not thrown.
    public func decode(_ packet: [UInt8]) throws(WireError) -> DecodedPacket {
        let start = try checkLabel(packet, expected: label)
        guard let start else { throw WireError(.truncated, "label header cut off") }
        var result = DecodedPacket(messages: [], truncatedParts: 0)
        if keyring.isEnabled {
            let plain: [UInt8]
            do throws(WireError) {
                plain = try GossipCipher.open(packet[start...], keyring: keyring, authenticated: Array(label.utf8))
            } catch where !verifyIncoming {
                do throws(WireError) {
                    try decodeBody(packet, start..<packet.count, depth: 0, into: &result)
                    return result
                } catch _ {
                    throw error
                }
            } catch where error.code == .malformed && packet.count > start && packet[start] > 1 {
                throw WireError(.notEncrypted, "a plaintext packet; this node requires encryption")
            }
            try decodeBody(plain, 0..<plain.count, depth: 0, into: &result)
            return result
        }
        do throws(WireError) {
            try decodeBody(packet, start..<packet.count, depth: 0, into: &result)
        } catch {
            // memberlist's encrypted packets start with encryption version 0 or 1 (also the
            // ping and indirect-ping types): call such a failure by its likely cause.
            if packet.count >= start + GossipCipher.overhead, packet[start] <= 1 {
                throw WireError(.encrypted, "an encrypted packet (or a malformed ping); this node has no keyring")
            }
            throw error
        }
        return result
    }

    private func decodeBody(_ bytes: [UInt8], _ range: Range<Int>, depth: Int, into result: inout DecodedPacket) throws(WireError) {
        guard depth < 4 else { throw WireError(.malformed, "messages nested too deeply") }
        guard let first = range.first.map({ bytes[$0] }) else { throw WireError(.truncated, "empty message") }
        switch MessageType(rawValue: first) {
        case .hasCRC:
            guard range.count >= 5 else { throw WireError(.truncated, "CRC header cut off") }
            let base = range.lowerBound
            let expected = UInt32(bytes[base + 1]) << 24 | UInt32(bytes[base + 2]) << 16 | UInt32(bytes[base + 3]) << 8 | UInt32(bytes[base + 4])
            let rest = (base + 5)..<range.upperBound
            guard CRC32.checksum(bytes[rest]) == expected else { throw WireError(.badChecksum) }
            try decodeBody(bytes, rest, depth: depth + 1, into: &result)
        case .compress:
            var reader = MessagePackReader(bytes, offset: range.lowerBound + 1, end: range.upperBound)
            let inner = try readCompressed(&reader, limit: maximumDecompressedSize)
            try decodeBody(inner, 0..<inner.count, depth: depth + 1, into: &result)
        case .compound:
            guard range.count >= 2 else { throw WireError(.truncated, "compound count missing") }
            let count = Int(bytes[range.lowerBound + 1])
            var offset = range.lowerBound + 2
            guard range.upperBound - offset >= count * 2 else { throw WireError(.truncated, "compound lengths cut off") }
            var lengths: [Int] = []
            lengths.reserveCapacity(count)
            for _ in 0..<count {
                lengths.append(Int(bytes[offset]) << 8 | Int(bytes[offset + 1]))
                offset += 2
            }
            for (index, length) in lengths.enumerated() {
                guard range.upperBound - offset >= length else {
                    result.truncatedParts += count - index
                    return
                }
                try decodeBody(bytes, offset..<(offset + length), depth: depth + 1, into: &result)
                offset += length
            }
        case .encrypt:
            throw WireError(.encrypted)
        case .hasLabel:
            throw WireError(.malformed, "label header inside a packet")
        default:
            result.messages.append(try MessageCodec.decode(bytes, range))
        }
    }
}

/// `[244, length, label…]`, or nothing for "".
func labelHeader(_ label: String) -> [UInt8] {
    guard !label.isEmpty else { return [] }
    let bytes = Array(label.utf8.prefix(255))
    return [MessageType.hasLabel.rawValue, UInt8(bytes.count)] + bytes
}

/// Checks the label header of `bytes` against `expected`; returns the offset after it, or nil
/// when the header is not complete yet.
func checkLabel(_ bytes: [UInt8], expected: String) throws(WireError) -> Int? {
    guard let first = bytes.first else { return nil }
    guard first == MessageType.hasLabel.rawValue else {
        guard expected.isEmpty else { throw WireError(.labelMismatch(expected: expected, received: "")) }
        return 0
    }
    guard bytes.count >= 2 else { return nil }
    let length = Int(bytes[1])
    guard length > 0 else { throw WireError(.malformed, "empty label") }
    guard bytes.count >= 2 + length else { return nil }
    let received = String(decoding: bytes[2..<(2 + length)], as: UTF8.self)
    guard received == expected else { throw WireError(.labelMismatch(expected: expected, received: received)) }
    return 2 + length
}

/// `[9] + msgpack compress{Algo: 0, Buf: lzw(body)}`.
func compressMessage(_ body: [UInt8]) -> [UInt8] {
    var writer = MessagePackWriter(reservingCapacity: body.count / 2 + 16)
    writer.writeByte(MessageType.compress.rawValue)
    writer.writeMapHeader(2)
    writer.writeKey("Algo"); writer.writeUnsigned(0)
    writer.writeKey("Buf"); writer.writeRaw(LZW.compress(body))
    return writer.bytes
}

/// Reads the msgpack `compress{Algo, Buf}` body (after its type byte) and inflates it.
func readCompressed(_ reader: inout MessagePackReader, limit: Int) throws(WireError) -> [UInt8] {
    var algorithm: Int64 = 0
    var buffer: [UInt8] = []
    try reader.readMap { reader, key throws(WireError) in
        switch key {
        case "Algo": algorithm = try reader.readInteger()
        case "Buf": buffer = try reader.readBytes()
        default: return false
        }
        return true
    }
    guard algorithm == 0 else { throw WireError(.unsupportedCompression, "algorithm \(algorithm)") }
    do throws(WireError) {
        return try LZW.decompress(buffer[...], limit: limit)
    } catch where error.code == .truncated {
        throw WireError(.malformed, "compressed data ends early")
    }
}
