/// The membership messages Rumor exchanges, one type per memberlist message.
///
/// These are domain values: the core reasons about them and never sees bytes. `RumorWire` maps
/// each one to and from HashiCorp memberlist's wire format (message type byte + msgpack body),
/// so field meanings follow memberlist's `net.go` exactly.

/// A node's address and port: an IP address (4 or 16 bytes, network order), or a Pilot virtual
/// address (6 bytes: `u16` network, `u32` node) when the swarm gossips over Pilot. memberlist's
/// wire format carries the address as raw bytes, so either fits in its `Addr` fields.
public struct NodeAddress: Hashable, Sendable, CustomStringConvertible {
    /// Up to 16 address bytes, big-endian in two words and zero-padded, and their count: held
    /// inline, so hashing, comparing and copying an address touch no heap memory (addresses key
    /// the per-peer tables every datagram touches, 100k nodes deep in the simulator).
    private var high: UInt64 = 0
    private var low: UInt64 = 0
    public var port: UInt16
    /// How many bytes the address has. One of more than 16 (only a malformed one off the wire,
    /// refused by every use of it) keeps its first 16, and reads back zeros after them.
    private var count: UInt8 = 0

    public init(ip: [UInt8], port: UInt16) {
        self.port = port
        self.ip = ip
    }

    /// The raw address bytes: 4 for IPv4, 16 for IPv6, 6 for a Pilot address.
    public var ip: [UInt8] {
        get {
            (0..<Int(count)).map { index in
                index >= 16 ? 0 : UInt8(truncatingIfNeeded: index < 8 ? high >> (56 - 8 * index) : low >> (56 - 8 * (index - 8)))
            }
        }
        set {
            high = 0
            low = 0
            count = UInt8(clamping: newValue.count)
            for (index, byte) in newValue.prefix(16).enumerated() {
                if index < 8 {
                    high |= UInt64(byte) << (56 - 8 * index)
                } else {
                    low |= UInt64(byte) << (56 - 8 * (index - 8))
                }
            }
        }
    }

    /// How many address bytes (`ip.count` without building the array).
    public var ipLength: Int { Int(count) }

    /// Parses dotted IPv4 (`"127.0.0.1"`); returns nil for anything else.
    public init?(ipv4 text: Substring, port: UInt16) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard let byte = UInt8(part) else { return nil }
            bytes.append(byte)
        }
        self.init(ip: bytes, port: port)
    }

    /// An IPv4 address and port as one word, ordered as the address bytes then the port are.
    public var packedIPv4: UInt64? {
        guard count == 4 else { return nil }
        return high >> 16 | UInt64(port)
    }

    /// By address bytes (a prefix first), then port: a stable order for peer lists.
    static func precedes(_ lhs: NodeAddress, _ rhs: NodeAddress) -> Bool {
        // Zero padding keeps byte order; of two addresses equal once padded, one is a prefix of
        // the other, and the shorter comes first.
        return (lhs.high, lhs.low, lhs.count, lhs.port) < (rhs.high, rhs.low, rhs.count, rhs.port)
    }

    /// Whether an address of `count` bytes is one of the three kinds.
    public static func isValidLength(_ count: Int) -> Bool {
        count == 4 || count == 6 || count == 16
    }

    /// `host:port`, with IPv6 hosts in brackets (Pilot's `N:NNNN.HHHH.LLLL:port` for Pilot).
    public var description: String {
        "\(host):\(port)"
    }

    /// The textual IP address without the port.
    public var host: String {
        let ip = self.ip
        if ip.count == 4 {
            return ip.map(String.init).joined(separator: ".")
        }
        if ip.count == 16 {
            // RFC 5952: lowercase hex without leading zeros, the longest run of two or more zero
            // groups (the first, on a tie) written as "::".
            let groups = stride(from: 0, to: 16, by: 2).map { UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]) }
            var best: Range<Int>?
            var index = 0
            while index < groups.count {
                guard groups[index] == 0 else {
                    index += 1
                    continue
                }
                let start = index
                while index < groups.count, groups[index] == 0 { index += 1 }
                if index - start >= 2, index - start > (best?.count ?? 0) { best = start..<index }
            }
            func text(_ range: Range<Int>) -> String { groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
            guard let best else { return "[" + text(0..<8) + "]" }
            return "[" + text(0..<best.lowerBound) + "::" + text(best.upperBound..<8) + "]"
        }
        if ip.count == 6 {
            // Pilot's text form: the network in decimal, then network, node high and node low
            // 16 bits as 4 hex digits each.
            func hex(_ high: UInt8, _ low: UInt8) -> String {
                let digits = String(UInt16(high) << 8 | UInt16(low), radix: 16, uppercase: true)
                return String(repeating: "0", count: 4 - digits.count) + digits
            }
            return "\(UInt16(ip[0]) << 8 | UInt16(ip[1])):\(hex(ip[0], ip[1])).\(hex(ip[2], ip[3])).\(hex(ip[4], ip[5]))"
        }
        return "invalid(\(ip.count) bytes)"
    }
}

/// The six protocol version bytes memberlist carries in `alive` and push-pull node states, in
/// wire order: protocol min, max, current, delegate min, max, current.
public struct ProtocolVersions: Hashable, Sendable {
    public var protocolMin: UInt8
    public var protocolMax: UInt8
    public var protocolCurrent: UInt8
    public var delegateMin: UInt8
    public var delegateMax: UInt8
    public var delegateCurrent: UInt8

    public init(
        protocolMin: UInt8, protocolMax: UInt8, protocolCurrent: UInt8,
        delegateMin: UInt8, delegateMax: UInt8, delegateCurrent: UInt8
    ) {
        self.protocolMin = protocolMin
        self.protocolMax = protocolMax
        self.protocolCurrent = protocolCurrent
        self.delegateMin = delegateMin
        self.delegateMax = delegateMax
        self.delegateCurrent = delegateCurrent
    }

    /// memberlist's supported range: ProtocolVersionMin 1 ... ProtocolVersionMax 5, speaking 2
    /// (`ProtocolVersion2Compatible`, memberlist's default). Delegate versions are 0, as for a
    /// plain memberlist node: memberlist's `verifyProtocol` requires every node's delegate
    /// version to fall inside every other node's delegate range.
    public static let rumor = ProtocolVersions(
        protocolMin: 1, protocolMax: 5, protocolCurrent: 2,
        delegateMin: 0, delegateMax: 0, delegateCurrent: 0
    )

    /// What a Serf 0.9 agent announces: memberlist's range as above, and Serf's protocol as the
    /// delegate version (2 ... 5, speaking 5), so Serf agents admit the node (docs/serf-wire.md §12).
    public static let serf = ProtocolVersions(
        protocolMin: 1, protocolMax: 5, protocolCurrent: 2,
        delegateMin: 2, delegateMax: 5, delegateCurrent: 5
    )

    // What a peer may be sent, by the highest protocol version it understands (`protocolMax`,
    // memberlist's `PMax`). memberlist's version table is the comment on `ProtocolVersionMax` in
    // `net.go`: 3 added stream (TCP) pings, 4 added nacks in indirect probes, 5 added the packet
    // CRC; each feature is used with a peer whose `PMax` reaches its version.

    /// The peer answers a ping sent over a stream, so a probe that got no UDP ack can fall back to
    /// one (protocol version 3; memberlist's `probeNode`: `node.PMax >= 3`).
    public var acceptsStreamPings: Bool { protocolMax >= 3 }

    /// The peer sends a nack when an indirect probe it relays gets no ack in time, so the
    /// requester can count missing nacks against its own health (protocol version 4; memberlist's
    /// `probeNode`: `peer.PMax >= 4`).
    /// - SeeAlso: Lifeguard (Dadgar et al., 2018) §IV-A.
    public var supportsNacks: Bool { protocolMax >= 4 }

    /// The peer checks a CRC-32 on packets (the `hasCrc` message type), so packets to it carry one
    /// (protocol version 5; memberlist's `rawSendMsgPacket`: `node.PMax >= 5`).
    public var acceptsChecksums: Bool { protocolMax >= 5 }

    /// The wire form: six bytes.
    public var bytes: [UInt8] {
        [protocolMin, protocolMax, protocolCurrent, delegateMin, delegateMax, delegateCurrent]
    }

    /// Reads the wire form; missing bytes count as 0, as memberlist does for short vectors.
    public init(bytes: [UInt8]) {
        func at(_ index: Int) -> UInt8 { index < bytes.count ? bytes[index] : 0 }
        self.init(
            protocolMin: at(0), protocolMax: at(1), protocolCurrent: at(2),
            delegateMin: at(3), delegateMax: at(4), delegateCurrent: at(5)
        )
    }
}

/// A member's state as memberlist numbers it on the wire (`NodeStateType`).
public enum MemberState: Int, Sendable, Hashable, CustomStringConvertible {
    case alive = 0
    case suspect = 1
    case dead = 2
    case left = 3

    public var description: String {
        switch self {
        case .alive: "alive"
        case .suspect: "suspect"
        case .dead: "dead"
        case .left: "left"
        }
    }
}

/// `ping`: a direct probe. `target` lets the receiver reject probes meant for a previous node at
/// its address.
public struct Ping: Hashable, Sendable {
    public var sequenceNumber: UInt32
    /// The name of the node this ping is meant for (memberlist `Node`); may be empty.
    public var target: String
    /// Where to send the ack, when the sender is behind a relay (memberlist `SourceAddr/Port`).
    public var source: NodeAddress?
    /// The sender's name (memberlist `SourceNode`); empty when not given.
    public var sourceName: String

    public init(sequenceNumber: UInt32, target: String, source: NodeAddress? = nil, sourceName: String = "") {
        self.sequenceNumber = sequenceNumber
        self.target = target
        self.source = source
        self.sourceName = sourceName
    }
}

/// `indirectPingReq`: asks the receiver to probe `target` on the sender's behalf.
public struct IndirectPing: Hashable, Sendable {
    public var sequenceNumber: UInt32
    public var target: NodeAddress
    public var targetName: String
    /// True when the requester wants a nack if the target does not answer in time.
    public var wantsNack: Bool
    public var source: NodeAddress?
    public var sourceName: String

    public init(
        sequenceNumber: UInt32, target: NodeAddress, targetName: String, wantsNack: Bool,
        source: NodeAddress? = nil, sourceName: String = ""
    ) {
        self.sequenceNumber = sequenceNumber
        self.target = target
        self.targetName = targetName
        self.wantsNack = wantsNack
        self.source = source
        self.sourceName = sourceName
    }
}

/// `ackResp`: answers a ping.
public struct Ack: Hashable, Sendable {
    public var sequenceNumber: UInt32
    public var payload: [UInt8]

    public init(sequenceNumber: UInt32, payload: [UInt8] = []) {
        self.sequenceNumber = sequenceNumber
        self.payload = payload
    }
}

/// `nackResp`: an indirect prober could not reach the target in time (Lifeguard).
public struct Nack: Hashable, Sendable {
    public var sequenceNumber: UInt32

    public init(sequenceNumber: UInt32) {
        self.sequenceNumber = sequenceNumber
    }
}

/// `suspect`: `from` suspects `node` at `incarnation`.
public struct Suspect: Hashable, Sendable {
    public var incarnation: UInt32
    public var node: String
    public var from: String

    public init(incarnation: UInt32, node: String, from: String) {
        self.incarnation = incarnation
        self.node = node
        self.from = from
    }
}

/// `alive`: `node` is alive at `incarnation`; also how a node announces itself and its metadata.
public struct Alive: Hashable, Sendable {
    public var incarnation: UInt32
    public var node: String
    public var address: NodeAddress
    public var meta: [UInt8]
    public var versions: ProtocolVersions

    public init(incarnation: UInt32, node: String, address: NodeAddress, meta: [UInt8], versions: ProtocolVersions) {
        self.incarnation = incarnation
        self.node = node
        self.address = address
        self.meta = meta
        self.versions = versions
    }
}

/// `dead`: `from` declares `node` dead at `incarnation`. When `from == node` the node is leaving.
public struct Dead: Hashable, Sendable {
    public var incarnation: UInt32
    public var node: String
    public var from: String

    public init(incarnation: UInt32, node: String, from: String) {
        self.incarnation = incarnation
        self.node = node
        self.from = from
    }

    /// A node declaring itself dead is a graceful leave.
    public var isLeave: Bool { node == from }
}

/// One node in a push-pull exchange (`pushNodeState`).
public struct PushNodeState: Hashable, Sendable {
    public var name: String
    public var address: NodeAddress
    public var meta: [UInt8]
    public var incarnation: UInt32
    public var state: MemberState
    public var versions: ProtocolVersions

    public init(
        name: String, address: NodeAddress, meta: [UInt8], incarnation: UInt32,
        state: MemberState, versions: ProtocolVersions
    ) {
        self.name = name
        self.address = address
        self.meta = meta
        self.incarnation = incarnation
        self.state = state
        self.versions = versions
    }
}

/// A full state exchange over a stream (`pushPullHeader` + node states + user state).
public struct PushPull: Hashable, Sendable {
    /// True when the sender is joining (memberlist `Join`).
    public var join: Bool
    public var nodes: [PushNodeState]
    /// Opaque application state carried after the node states (memberlist `UserStateLen`).
    public var userState: [UInt8]

    public init(join: Bool, nodes: [PushNodeState], userState: [UInt8] = []) {
        self.join = join
        self.nodes = nodes
        self.userState = userState
    }
}

/// One membership message, as carried in a UDP packet (possibly inside a compound) or a stream.
public enum Message: Hashable, Sendable {
    case ping(Ping)
    case indirectPing(IndirectPing)
    case ack(Ack)
    case nack(Nack)
    case suspect(Suspect)
    case alive(Alive)
    case dead(Dead)
    /// An application message (memberlist `userMsg`), opaque to membership.
    case user([UInt8])
    /// A remote error report (memberlist `errResp`), sent on streams.
    case error(String)
}
