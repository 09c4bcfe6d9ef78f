/// Which addresses a node may send to when a peer names them: an indirect probe's target, a
/// ping's reply address, a member's address in `alive` or a push-pull, a Serf query's reply
/// address or a relay's destination.
///
/// A peer's word is not enough to aim the node's gossip socket: an address of the wrong
/// family, port 0, a broadcast, multicast or unspecified address fails the send (EINVAL,
/// EACCES) or reaches hosts that never asked. The membership machine checks every address it
/// takes from the wire against this rule and drops the message (or the member record) naming
/// one that fails, reporting `MembershipDirective.addressRefused`; the driver's transport
/// checks again before each send.
public struct AddressRule: Sendable, Hashable {
    /// The kinds of address the node's transport can reach.
    public enum Family: Sendable, Hashable, CustomStringConvertible {
        /// An IPv4 socket: 4-byte addresses only.
        case ipv4
        /// An IPv6 socket bound to one IPv6 address: 16-byte addresses only.
        case ipv6
        /// An IPv6 socket bound to `::`: 4-byte and 16-byte addresses.
        case dualStack
        /// The Pilot overlay: 6-byte Pilot addresses only.
        case pilot

        /// Whether the family takes addresses of `count` bytes (no allocation: this runs for
        /// every datagram).
        public func takes(length count: Int) -> Bool {
            switch self {
            case .ipv4: count == 4
            case .ipv6: count == 16
            case .dualStack: count == 4 || count == 16
            case .pilot: count == 6
            }
        }

        public var description: String {
            switch self {
            case .ipv4: "IPv4"
            case .ipv6: "IPv6"
            case .dualStack: "IPv4/IPv6"
            case .pilot: "Pilot"
            }
        }
    }

    public var family: Family
    /// The directed broadcast addresses of the host's subnets (e.g. 10.0.0.255 for 10.0.0.0/24),
    /// as the driver reads them from its interfaces; 255.255.255.255 is refused whatever this
    /// holds. Default: none.
    public var broadcasts: Set<[UInt8]>

    public init(family: Family, broadcasts: Set<[UInt8]> = []) {
        self.family = family
        self.broadcasts = broadcasts
    }

    /// The rule for a node whose own address is `local`: the family its address is of (4 bytes
    /// IPv4, 16 IPv6, 6 Pilot; any other length, IPv4).
    public init(for local: NodeAddress) {
        switch local.ipLength {
        case 16: self.init(family: .ipv6)
        case 6: self.init(family: .pilot)
        default: self.init(family: .ipv4)
        }
    }

    /// Why `address` may not be sent to; nil when it may.
    public func problem(with address: NodeAddress) -> AddressProblem? {
        // Length and port first: they need no copy of the address bytes.
        let length = address.ipLength
        guard family.takes(length: length) else { return .wrongLength(length, family) }
        guard address.port != 0 else { return .portZero }
        let ip = address.ip
        switch length {
        case 4: return Self.problem(ipv4: ip[0], ip[1], ip[2], ip[3], broadcasts: broadcasts)
        case 16: return Self.problem(ipv6: ip, broadcasts: broadcasts)
        default: return ip.allSatisfy { $0 == 0 } ? .unspecified : nil
        }
    }

    /// Whether `address` may be sent to.
    public func allows(_ address: NodeAddress) -> Bool { problem(with: address) == nil }

    private static func problem(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, broadcasts: Set<[UInt8]>) -> AddressProblem? {
        // 0.0.0.0/8: "this host on this network" (RFC 1122 §3.2.1.3), never a destination.
        if a == 0 { return .unspecified }
        if a >= 224, a <= 239 { return .multicast }
        if a == 255, b == 255, c == 255, d == 255 { return .broadcast }
        if !broadcasts.isEmpty, broadcasts.contains([a, b, c, d]) { return .broadcast }
        return nil
    }

    private static func problem(ipv6 ip: [UInt8], broadcasts: Set<[UInt8]>) -> AddressProblem? {
        if ip[0] == 0xff { return .multicast }
        if ip.allSatisfy({ $0 == 0 }) { return .unspecified }
        // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address it maps.
        if ip[0..<10].allSatisfy({ $0 == 0 }), ip[10] == 0xff, ip[11] == 0xff {
            return problem(ipv4: ip[12], ip[13], ip[14], ip[15], broadcasts: broadcasts)
        }
        return nil
    }
}

/// Why an address taken from the wire was refused (see `AddressRule`).
public enum AddressProblem: Sendable, Hashable, CustomStringConvertible {
    /// The address has a length the node's transport cannot reach (e.g. 16 bytes on IPv4).
    case wrongLength(Int, AddressRule.Family)
    case portZero
    /// 0.0.0.0 (0.0.0.0/8), `::`, or an all-zero Pilot address.
    case unspecified
    /// 255.255.255.255 or a subnet's broadcast address.
    case broadcast
    /// 224.0.0.0/4 or ff00::/8.
    case multicast

    /// A short name, for counters and log fields: `wrong_length`, `port_zero`, …
    public var name: String {
        switch self {
        case .wrongLength: "wrong_length"
        case .portZero: "port_zero"
        case .unspecified: "unspecified"
        case .broadcast: "broadcast"
        case .multicast: "multicast"
        }
    }

    public var description: String {
        switch self {
        case .wrongLength(let count, let family): "an address of \(count) bytes, and this node reaches \(family) addresses"
        case .portZero: "port 0"
        case .unspecified: "an unspecified address"
        case .broadcast: "a broadcast address"
        case .multicast: "a multicast address"
        }
    }
}

/// An address a message named that `AddressRule` refused: the message (or member record) was
/// dropped, nothing else changed.
public struct AddressRefusal: Sendable, Hashable {
    /// The refused address.
    public var address: NodeAddress
    public var problem: AddressProblem
    /// What named it: "indirect ping target", "alive address", ….
    public var field: String
    /// Who sent the message (the datagram's or stream's peer).
    public var sender: NodeAddress

    public init(address: NodeAddress, problem: AddressProblem, field: String, sender: NodeAddress) {
        self.address = address
        self.problem = problem
        self.field = field
        self.sender = sender
    }
}
