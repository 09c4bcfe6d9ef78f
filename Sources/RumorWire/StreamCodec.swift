import RumorCore

/// One message on a TCP stream.
public enum StreamMessage: Sendable, Hashable {
    /// A full state exchange (join or periodic anti-entropy).
    case pushPull(PushPull)
    /// A fallback probe, answered by `.ack`.
    case ping(Ping)
    case ack(Ack)
    /// An application message sent reliably.
    case user([UInt8])
    /// The peer reports an error.
    case error(String)
}

/// Encodes and decodes stream messages as memberlist does: an optional label header, then
/// (optionally LZW-compressed) a type byte and its msgpack body. Push-pull bodies are a header
/// `{Nodes, UserStateLen, Join}`, `Nodes` node states, then `UserStateLen` raw bytes.
/// With a keyring, everything after the label is `[10] length(4, big-endian) encrypted(…)`,
/// the 5 header bytes and the label authenticated with it.
public struct StreamCodec: Sendable {
    public let label: String
    /// The encryption keys; when enabled, streams are sent encrypted and must arrive encrypted.
    public var keyring: Keyring
    /// With a keyring: whether streams must arrive encrypted (memberlist's `GossipVerifyIncoming`);
    /// false accepts plaintext ones too, while a plaintext swarm moves to encryption.
    public var verifyIncoming = true
    /// With a keyring: whether streams are sent encrypted (memberlist's `GossipVerifyOutgoing`).
    public var verifyOutgoing = true
    public let compression: Bool
    /// Largest stream message accepted, in bytes, compressed or not (memberlist's 20 MiB).
    public let maximumMessageSize: Int

    public init(label: String = "", keyring: Keyring = Keyring(), compression: Bool = true, maximumMessageSize: Int = 20 << 20) {
        self.label = label
        self.keyring = keyring
        self.compression = compression
        self.maximumMessageSize = maximumMessageSize
    }

    /// Encodes one stream message; `compress` overrides the codec's setting for it.
    public func encode(_ message: StreamMessage, compress: Bool? = nil) -> [UInt8] {
        var body: [UInt8]
        switch message {
        case .pushPull(let state):
            var writer = MessagePackWriter(reservingCapacity: 64 + state.nodes.count * 96 + state.userState.count)
            writer.writeByte(MessageType.pushPull.rawValue)
            writer.writeMapHeader(3)
            writer.writeKey("Join"); writer.writeBool(state.join)
            writer.writeKey("Nodes"); writer.writeSigned(Int64(state.nodes.count))
            writer.writeKey("UserStateLen"); writer.writeSigned(Int64(state.userState.count))
            for node in state.nodes {
                writer.writeMapHeader(7)
                writer.writeKey("Addr"); writer.writeRaw(node.address.ip)
                writer.writeKey("Incarnation"); writer.writeUnsigned(UInt64(node.incarnation))
                writer.writeKey("Meta"); writer.writeRawOrNil(node.meta)
                writer.writeKey("Name"); writer.writeString(node.name)
                writer.writeKey("Port"); writer.writeUnsigned(UInt64(node.address.port))
                writer.writeKey("State"); writer.writeSigned(Int64(node.state.rawValue))
                writer.writeKey("Vsn"); writer.writeRaw(node.versions.bytes)
            }
            body = writer.bytes + state.userState
        case .ping(let ping):
            body = MessageCodec.encode(.ping(ping))
        case .ack(let ack):
            body = MessageCodec.encode(.ack(ack))
        case .error(let text):
            body = MessageCodec.encode(.error(text))
        case .user(let payload):
            var writer = MessagePackWriter()
            writer.writeByte(MessageType.user.rawValue)
            writer.writeMapHeader(1)
            writer.writeKey("UserMsgLen"); writer.writeSigned(Int64(payload.count))
            body = writer.bytes + payload
        }
        if compress ?? compression { body = compressMessage(body) }
        if let key = keyring.primary, verifyOutgoing {
            let length = UInt32(GossipCipher.overhead + body.count)
            let header: [UInt8] = [
                MessageType.encrypt.rawValue, UInt8(length >> 24), UInt8((length >> 16) & 0xff),
                UInt8((length >> 8) & 0xff), UInt8(length & 0xff),
            ]
            body = header + GossipCipher.seal(body, key: key, authenticated: header + Array(label.utf8))
        }
        return labelHeader(label) + body
    }

    /// Decodes the first message in `buffer`. Returns nil while more bytes are needed; throws
    /// `WireError` for a foreign label, malformed bytes, or a message over the size limit.
    public func decode(_ buffer: [UInt8]) throws(WireError) -> (message: StreamMessage, consumed: Int)? {
        guard let start = try checkLabel(buffer, expected: label) else { return nil }
        guard start < buffer.count else { return nil }
        guard buffer[start] == MessageType.encrypt.rawValue else {
            guard !keyring.isEnabled || !verifyIncoming else {
                throw WireError(.notEncrypted, "a plaintext stream; this node requires encryption")
            }
            return try decodePlain(buffer, from: start)
        }
        guard keyring.isEnabled else { throw WireError(.encrypted, "an encrypted stream; this node has no keyring") }
        guard buffer.count >= start + 5 else { return nil }
        let header = Array(buffer[start..<(start + 5)])
        let length = Int(header[1]) << 24 | Int(header[2]) << 16 | Int(header[3]) << 8 | Int(header[4])
        guard length <= maximumMessageSize else {
            throw WireError(.tooLarge, "encrypted stream message of \(length) bytes exceeds \(maximumMessageSize)")
        }
        guard length >= GossipCipher.overhead else { throw WireError(.malformed, "encrypted stream message of \(length) bytes") }
        let end = start + 5 + length
        guard buffer.count >= end else { return nil }
        let plain = try GossipCipher.open(buffer[(start + 5)..<end], keyring: keyring, authenticated: header + Array(label.utf8))
        do throws(WireError) {
            guard let (message, _) = try decodePlain(plain, from: 0) else {
                throw WireError(.malformed, "encrypted stream message is incomplete")
            }
            return (message, end)
        } catch where error.code == .truncated {
            throw WireError(.malformed, "encrypted stream message is incomplete")
        }
    }

    /// Decodes a plaintext (possibly compressed) message starting at `start`.
    private func decodePlain(_ buffer: [UInt8], from start: Int) throws(WireError) -> (message: StreamMessage, consumed: Int)? {
        guard start < buffer.count else { return nil }
        do throws(WireError) {
            var reader = MessagePackReader(buffer, offset: start)
            if buffer[start] == MessageType.compress.rawValue {
                _ = try reader.readByte()
                let inner = try readCompressed(&reader, limit: maximumMessageSize)
                var innerReader = MessagePackReader(inner)
                do throws(WireError) {
                    let message = try decodeBody(&innerReader)
                    return (message, reader.offset)
                } catch where error.code == .truncated {
                    throw WireError(.malformed, "compressed stream message is incomplete")
                }
            }
            let message = try decodeBody(&reader)
            return (message, reader.offset)
        } catch where error.code == .truncated {
            guard buffer.count <= maximumMessageSize else {
                throw WireError(.tooLarge, "stream message exceeds \(maximumMessageSize) bytes")
            }
            return nil
        }
    }

    private func decodeBody(_ reader: inout MessagePackReader) throws(WireError) -> StreamMessage {
        let typeByte = try reader.readByte()
        switch MessageType(rawValue: typeByte) {
        case .pushPull:
            return .pushPull(try decodePushPull(&reader))
        case .user:
            var length: Int64 = -1
            try reader.readMap { reader, key throws(WireError) in
                guard key == "UserMsgLen" else { return false }
                length = try reader.readInteger()
                return true
            }
            guard length >= 0, length <= Int64(maximumMessageSize) else {
                throw WireError(.tooLarge, "user message of \(length) bytes")
            }
            return .user(Array(try reader.take(Int(length))))
        case .ping, .ack, .error:
            // These bodies are one msgpack map: find its end, then decode it as a packet message.
            let start = reader.offset - 1
            try reader.skip()
            switch try MessageCodec.decode(reader.bytes, start..<reader.offset) {
            case .ping(let ping): return .ping(ping)
            case .ack(let ack): return .ack(ack)
            case .error(let text): return .error(text)
            default: throw WireError(.malformed, "unexpected stream message")
            }
        case .encrypt:
            throw WireError(.encrypted)
        case .some(let other):
            throw WireError(.malformed, "message type \(other.rawValue) is not a stream message")
        case nil:
            throw WireError(.unknownMessageType(typeByte))
        }
    }

    private func decodePushPull(_ reader: inout MessagePackReader) throws(WireError) -> PushPull {
        var nodeCount: Int64 = 0
        var userStateLength: Int64 = 0
        var join = false
        try reader.readMap { reader, key throws(WireError) in
            switch key {
            case "Nodes": nodeCount = try reader.readInteger()
            case "UserStateLen": userStateLength = try reader.readInteger()
            case "Join": join = try reader.readBool()
            default: return false
            }
            return true
        }
        // Each node state takes well over 8 bytes; a count the size limit cannot hold is a lie.
        guard nodeCount >= 0, nodeCount <= Int64(maximumMessageSize / 8) else {
            throw WireError(.tooLarge, "push-pull claims \(nodeCount) nodes")
        }
        guard userStateLength >= 0, userStateLength <= Int64(maximumMessageSize) else {
            throw WireError(.tooLarge, "push-pull claims \(userStateLength) bytes of user state")
        }
        var nodes: [PushNodeState] = []
        nodes.reserveCapacity(min(Int(nodeCount), reader.remaining / 8 + 1))
        for _ in 0..<Int(nodeCount) {
            var name = ""
            var ip: [UInt8] = []
            var port: UInt16 = 0
            var meta: [UInt8] = []
            var incarnation: UInt32 = 0
            var state: Int64 = 0
            var versions: [UInt8] = []
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "Name": name = try reader.readString()
                case "Addr": ip = try reader.readBytes()
                case "Port": port = try reader.readInteger(as: UInt16.self)
                case "Meta": meta = try reader.readBytes()
                case "Incarnation": incarnation = try reader.readInteger(as: UInt32.self)
                case "State": state = try reader.readInteger()
                case "Vsn": versions = try reader.readBytes()
                default: return false
                }
                return true
            }
            guard !name.isEmpty else { throw WireError(.malformed, "node state without a name") }
            guard let memberState = MemberState(rawValue: Int(state)) else {
                throw WireError(.malformed, "unknown node state \(state)")
            }
            nodes.append(
                PushNodeState(
                    name: name, address: try MessageCodec.address(ip, port), meta: meta, incarnation: incarnation,
                    state: memberState, versions: ProtocolVersions(bytes: versions)))
        }
        let userState = Array(try reader.take(Int(userStateLength)))
        return PushPull(join: join, nodes: nodes, userState: userState)
    }
}
