import NIOCore
import NIOPosix
import RumorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension NodeAddress {
    /// The NIO socket address for this node address; nil when the IP is neither 4 nor 16 bytes.
    var socketAddress: SocketAddress? {
        guard ip.count == 4 || ip.count == 16 else { return nil }
        var buffer = ByteBuffer()
        buffer.writeBytes(ip)
        return try? SocketAddress(packedIPAddress: buffer, port: Int(port))
    }

    /// The node address of an IPv4/IPv6 socket address; nil for Unix sockets.
    init?(_ address: SocketAddress) {
        guard let port = address.port, let port = UInt16(exactly: port) else { return nil }
        switch address {
        case .v4(let v4):
            let bytes = withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
            self.init(ip: bytes, port: port)
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 peer it stands for.
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                self.init(ip: Array(bytes[12..<16]), port: port)
            } else {
                self.init(ip: bytes, port: port)
            }
        case .unixDomainSocket:
            return nil
        }
    }

    /// Resolves `host:port` (or `host`, with `defaultPort`) to a node address.
    /// - Throws: `AgentError` with code `bad_address` when the text is not an address or the host
    ///   does not resolve.
    static func resolve(_ text: String, defaultPort: Int) throws -> NodeAddress {
        let (host, port) = try splitHostPort(text, defaultPort: defaultPort)
        do {
            let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
            guard let node = NodeAddress(address) else { throw AgentError.badAddress(text) }
            return node
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError(
                code: .badAddress, message: "cannot resolve '\(host)': \(error)",
                hint: "give an IP address or a resolvable host name, e.g. 127.0.0.1:7946")
        }
    }
}

extension NodeAddress {
    /// Every address `host:port` names: an IP address is itself; a DNS name gives each of its
    /// IPv4 and IPv6 addresses once, in the resolver's order (memberlist joins them all).
    /// - Throws: `AgentError` `bad_address` when the text is not an address or the name does not
    ///   resolve.
    static func resolveAll(_ text: String, defaultPort: Int) throws -> [NodeAddress] {
        let (host, port) = try splitHostPort(text, defaultPort: defaultPort)
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = String(cString: gai_strerror(status))
            throw AgentError(
                code: .badAddress, message: "cannot resolve '\(host)': \(reason)",
                hint: "give an IP address or a resolvable host name, e.g. 127.0.0.1:7946")
        }
        defer { freeaddrinfo(list) }
        var addresses: [NodeAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let socket = current.pointee.ai_addr,
                let address = try? SocketAddress(socket, length: current.pointee.ai_addrlen),
                let node = NodeAddress(address), !addresses.contains(node)
            {
                addresses.append(node)
            }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw AgentError.badAddress(text) }
        return addresses
    }
}

extension SocketAddress {
    /// The address a `sockaddr` of `length` bytes holds (IPv4 or IPv6).
    init(_ pointer: UnsafeMutablePointer<sockaddr>, length: socklen_t) throws {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            self = pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
        case AF_INET6:
            self = pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
        default:
            throw AgentError.badAddress("address family \(pointer.pointee.sa_family)")
        }
    }
}

/// Splits `host:port`, `[v6]:port`, `host` into host and port; throws `bad_address`.
public func splitHostPort(_ text: String, defaultPort: Int) throws(AgentError) -> (host: String, port: Int) {
    var host = Substring(text)
    var portText: Substring?
    if host.hasPrefix("[") {
        guard let close = host.firstIndex(of: "]") else { throw AgentError.badAddress(text) }
        let rest = host[host.index(after: close)...]
        host = host[host.index(after: host.startIndex)..<close]
        if rest.hasPrefix(":") { portText = rest.dropFirst() } else if !rest.isEmpty { throw AgentError.badAddress(text) }
    } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
        portText = host[host.index(after: colon)...]
        host = host[..<colon]
    }
    guard !host.isEmpty else { throw AgentError.badAddress(text) }
    var port = defaultPort
    if let portText {
        guard let parsed = Int(portText), (0...65_535).contains(parsed) else { throw AgentError.badAddress(text) }
        port = parsed
    }
    return (String(host), port)
}

extension AgentError {
    static func badAddress(_ text: String) -> AgentError {
        AgentError(
            code: .badAddress, message: "'\(text)' is not a valid address",
            hint: "use HOST:PORT, e.g. 127.0.0.1:7946 or [::1]:7946")
    }
}

extension AddressRule {
    /// The rule for a UDP socket bound to `host`: its family (`::` is dual-stack, another IPv6
    /// address IPv6 only, anything else IPv4), and the broadcast addresses of this host's
    /// interfaces, so that a peer cannot aim gossip at a whole subnet.
    static func forSocket(boundTo host: String) -> AddressRule {
        let family: Family
        if host == "::" {
            family = .dualStack
        } else if host.contains(":") {
            family = .ipv6
        } else if !host.isEmpty, let address = try? SocketAddress.makeAddressResolvingHost(host, port: 0), case .v6 = address {
            family = .ipv6
        } else {
            family = .ipv4
        }
        var broadcasts: Set<[UInt8]> = []
        for device in (try? System.enumerateDevices()) ?? [] {
            // A /31 or /32 has no broadcast address (RFC 3021): both of a /31's are hosts.
            guard let address = device.broadcastAddress, case .v4 = address, let node = NodeAddress(address),
                let mask = device.netmask.flatMap(NodeAddress.init), mask.ip.count == 4,
                mask.ip.reduce(0, { $0 + $1.nonzeroBitCount }) < 31
            else { continue }
            broadcasts.insert(node.ip)
        }
        return AddressRule(family: family, broadcasts: broadcasts)
    }
}
