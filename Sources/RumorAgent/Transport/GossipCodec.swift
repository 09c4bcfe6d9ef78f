import RumorCore
import RumorWire

/// Turns what the agent exchanges with peers into bytes and back: membership packets and
/// streams (memberlist's format), with Rumor's replication frames lifted out of the user
/// messages that carry them, so each frame is decoded once, here. Owns the keyring both
/// directions encrypt with.
struct GossipCodec: Sendable {
    private(set) var packets: PacketCodec
    private(set) var streams: StreamCodec
    /// Largest replication frame sent in a packet; larger ones go over a stream.
    let packetFrameBytes: Int
    /// Whether Serf's messages are lifted out of user messages (`--protocol serf`).
    let speaksSerf: Bool

    /// Largest stream message accepted (memberlist's `maxPushStateBytes`).
    static let maximumStreamBytes = 20 << 20

    init(configuration: AgentConfiguration, keyring: Keyring) {
        let compression = configuration.membership.enableCompression
        packets = PacketCodec(label: configuration.swarm, keyring: keyring, compression: compression)
        streams = StreamCodec(
            label: configuration.swarm, keyring: keyring, compression: compression, maximumMessageSize: Self.maximumStreamBytes)
        packets.verifyIncoming = configuration.encryptionVerifiesIncoming
        packets.verifyOutgoing = configuration.encryptionVerifiesOutgoing
        streams.verifyIncoming = configuration.encryptionVerifiesIncoming
        streams.verifyOutgoing = configuration.encryptionVerifiesOutgoing
        packetFrameBytes = configuration.replication.packetPushBytes
        speaksSerf = configuration.gossipProtocol == .serf
    }

    var keyring: Keyring {
        get { packets.keyring }
        set {
            packets.keyring = newValue
            streams.keyring = newValue
        }
    }

    /// `off`, `on`, or the step of a move to encryption this node is in (see `AgentInfo.encryption`).
    var encryptionMode: String {
        if !packets.keyring.isEnabled { return "off" }
        if !packets.verifyOutgoing { return "sending-plaintext" }
        if !packets.verifyIncoming { return "accepting-plaintext" }
        return "on"
    }

    /// Whether this node refuses plaintext (so keyring requests it gets came encrypted).
    var requiresEncryption: Bool { packets.keyring.isEnabled && packets.verifyIncoming }

    /// A received packet: its messages, how many compound parts were cut off, and the
    /// replication frames that failed to decode (dropped, the rest kept).
    func decodePacket(_ bytes: [UInt8]) throws(WireError) -> (messages: [NodeMessage], truncatedParts: Int, badFrames: [WireError]) {
        let decoded = try packets.decode(bytes)
        var messages: [NodeMessage] = []
        messages.reserveCapacity(decoded.messages.count)
        var badFrames: [WireError] = []
        for message in decoded.messages {
            if case .user(let payload) = message, ReplicationCodec.isFrame(payload) {
                do {
                    messages.append(.replication(try ReplicationCodec.decode(payload)))
                } catch {
                    badFrames.append(error)
                }
            } else if speaksSerf, case .user(let payload) = message, SerfCodec.isMessage(payload) {
                do {
                    messages.append(.serf(try SerfCodec.decode(payload)))
                } catch {
                    badFrames.append(error)
                }
            } else {
                messages.append(.membership(message))
            }
        }
        return (messages, decoded.truncatedParts, badFrames)
    }

    /// How a datagram leaves: one UDP packet, or a one-way stream when a frame is too large.
    enum Outgoing {
        case packet([UInt8])
        case stream([UInt8])
    }

    func encode(_ datagram: Datagram) -> Outgoing {
        switch datagram {
        case .membership(let messages, let checksum):
            return .packet(packets.encode(messages, checksum: checksum))
        case .replication(let frame):
            let bytes = ReplicationCodec.encode(frame)
            if bytes.count <= packetFrameBytes {
                return .packet(packets.encode([.user(bytes)], compress: false))
            }
            return .stream(streams.encode(.user(bytes), compress: false))
        }
    }

    /// A stream request for the node; nil for a message that asks nothing (ack, error) or a
    /// keyring frame (answered by the agent, not the node).
    func request(_ message: StreamMessage) throws(WireError) -> StreamRequest? {
        switch message {
        case .pushPull(let state): return .pushPull(state)
        case .ping(let ping): return .ping(ping)
        case .user(let payload) where ReplicationCodec.isFrame(payload): return .replication(try ReplicationCodec.decode(payload))
        case .user(let payload) where KeyringCodec.isFrame(payload): return nil
        case .user(let payload): return .user(payload)
        case .ack, .error: return nil
        }
    }

    func encode(_ reply: StreamReply) -> [UInt8] {
        switch reply {
        case .pushPull(let state): streams.encode(.pushPull(state))
        case .ack(let ack): streams.encode(.ack(ack))
        case .error(let text): streams.encode(.error(text))
        }
    }
}
