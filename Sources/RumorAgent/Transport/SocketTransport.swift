import NIOCore
import NIOPosix
import RumorCore
import RumorWire

/// Gossip over the host's network: datagrams on a UDP socket, streams as TCP connections, both
/// on the same port (memberlist's transport).
final class SocketTransport: GossipTransport {
    private let packets: PacketTransport
    private let listener: StreamListener
    private let group: EventLoopGroup
    let port: Int
    /// The addresses datagrams may go to: the socket's family, no broadcast, multicast,
    /// unspecified address or port 0.
    let addressRule: AddressRule

    private init(packets: PacketTransport, listener: StreamListener, group: EventLoopGroup, port: Int, addressRule: AddressRule) {
        self.packets = packets
        self.listener = listener
        self.group = group
        self.port = port
        self.addressRule = addressRule
    }

    /// Binds UDP on `host:port`, then TCP on the same port (the one the system chose for 0).
    /// - Throws: `BindFailure` naming the socket (UDP or TCP) that could not listen; none stays open.
    static func bind(
        host: String, port: Int, group: EventLoopGroup, streamTimeout: TimeAmount, maximumStreamBytes: Int,
        decode: @escaping StreamDecoder, handlers: TransportHandlers
    ) async throws -> SocketTransport {
        let packets: PacketTransport
        do {
            packets = try await PacketTransport.bind(host: host, port: port, group: group, onReopen: handlers.onRecovered) {
                bytes, sender in
                if let from = NodeAddress(sender) { handlers.onPacket(bytes, from) }
            }
        } catch {
            throw BindFailure(.gossipUDP, host: host, port: port, error: error)
        }
        let bound = packets.localAddress?.port ?? port
        do {
            let listener = try await StreamListener.bind(
                host: host, port: bound, group: group, timeout: streamTimeout, maximumBytes: maximumStreamBytes,
                decode: decode,
                onRequest: { request, peer, channel in
                    let writer = StreamReplyWriter { bytes in try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)) }
                    await handlers.onRequest(request, peer.flatMap(NodeAddress.init), writer)
                },
                onFailure: { error, peer in handlers.onFailure(error, peer.flatMap(NodeAddress.init)) },
                replyToFailure: handlers.replyToFailure)
            return SocketTransport(
                packets: packets, listener: listener, group: group, port: bound, addressRule: AddressRule.forSocket(boundTo: host))
        } catch {
            await packets.close()
            throw BindFailure(.gossipTCP, host: host, port: bound, error: error)
        }
    }

    var boundAddress: NodeAddress { NodeAddress(ip: [], port: UInt16(truncatingIfNeeded: port)) }

    /// Sends one datagram unless `addressRule` refuses the address (a last check: the node
    /// checks every address a peer names before it sends there).
    @discardableResult
    func send(_ bytes: [UInt8], to address: NodeAddress) -> SendOutcome {
        if let problem = addressRule.problem(with: address) { return .dropped(.address(problem.name)) }
        guard let target = address.socketAddress else { return .dropped(.address("not_ip")) }
        return packets.send(bytes, to: target)
    }

    func sendStream(_ message: [UInt8], to address: NodeAddress, timeout: TimeAmount) async throws {
        try await StreamClient.send(message, to: try Self.target(address), group: group, timeout: timeout)
    }

    func exchange(
        _ request: [UInt8], with address: NodeAddress, timeout: TimeAmount, maximumBytes: Int, decode: @escaping StreamDecoder
    ) async throws -> StreamMessage {
        try await StreamClient.exchange(
            request, with: try Self.target(address), group: group, timeout: timeout, maximumBytes: maximumBytes, decode: decode)
    }

    func receivePages(
        _ request: [UInt8], from address: NodeAddress, idleTimeout: TimeAmount, maximumBytes: Int,
        decode: @escaping StreamDecoder, isolation: isolated (any Actor)?,
        onMessage: (StreamMessage) async throws -> Bool
    ) async throws {
        try await CatchUpClient.run(
            request, to: try Self.target(address), group: group, idleTimeout: idleTimeout, maximumBytes: maximumBytes,
            decode: decode, isolation: isolation, onMessage: onMessage)
    }

    func resolveSeed(_ text: String) async throws -> [NodeAddress] {
        if text.hasPrefix("pilot:") {
            throw AgentError(
                code: .badAddress, message: "'\(text)' is a Pilot address but this agent gossips over UDP/TCP",
                hint: "start the agent with --transport pilot, or give HOST:PORT")
        }
        return try NodeAddress.resolveAll(text, defaultPort: 7946)
    }

    func simulateFailure() async {
        await packets.simulateFatalError()
    }

    func close() async {
        await packets.close()
        await listener.close()
    }

    private static func target(_ address: NodeAddress) throws -> SocketAddress {
        guard let target = address.socketAddress else { throw AgentError.badAddress("\(address)") }
        return target
    }
}
