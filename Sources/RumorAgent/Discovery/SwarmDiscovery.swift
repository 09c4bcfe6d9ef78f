#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RumorCore
import RumorWire

/// Finds the nodes of a swarm on the local network by its name, with no seed address
/// (`--discover`): multicast DNS as Serf's `-discover` speaks it (docs/serf-wire.md §10). The
/// node answers questions for `_serf_SWARM._tcp.local.` with its gossip address, and asks that
/// question itself (at start, then every 5 s while it knows no other node, every 60 s after);
/// every address answered is handed to `onFound`. Another swarm's nodes answer another name,
/// so they are never found.
final class SwarmDiscovery: Sendable {
    let service: String
    private let channel: Channel
    private let group: SocketAddress

    private init(service: String, channel: Channel, group: SocketAddress) {
        self.service = service
        self.channel = channel
        self.group = group
    }

    /// Opens the mDNS socket (port 5353, shared with any other responder on the host), joins
    /// the group of the advertised address's family, and starts answering.
    /// - Throws: `AgentError` `bind_failed` when the socket or the group cannot be had.
    static func start(
        swarm: String, nodeName: String, advertised: NodeAddress, group: EventLoopGroup, logger: Logger,
        onFound: @escaping @Sendable ([NodeAddress]) -> Void
    ) async throws -> SwarmDiscovery {
        let service = MDNS.service(swarm: swarm)
        let label = String(nodeName.map { $0 == "." ? "-" : $0 }.prefix(63))
        let answer = MDNS.answer(
            service: service, instance: label, host: label + ".local.", port: advertised.port, addresses: [advertised.ip],
            text: "Serf '\(swarm)' cluster")
        let isIPv6 = advertised.ip.count == 16
        do {
            let multicastGroup = try SocketAddress(ipAddress: isIPv6 ? MDNS.groupV6 : MDNS.groupV4, port: Int(MDNS.port))
            let channel = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            MDNSHandler(service: service, answer: answer, logger: logger, onFound: onFound))
                    }
                }
                .bind(host: isIPv6 ? "::" : "0.0.0.0", port: Int(MDNS.port))
                .get()
            guard let multicast = channel as? MulticastChannel else { throw ChannelError.operationUnsupported }
            do {
                try await multicast.joinGroup(multicastGroup).get()
            } catch {
                try? await channel.close()
                throw error
            }
            logger.info("discovering the swarm by name", metadata: ["service": "\(service)", "group": "\(multicastGroup)"])
            return SwarmDiscovery(service: service, channel: channel, group: multicastGroup)
        } catch {
            throw AgentError(
                code: .bindFailed, message: "cannot open multicast DNS for --discover (port \(MDNS.port)): \(error)",
                hint: "the host needs a multicast route (ip route add 224.0.0.0/4 dev IFACE); or join with --join HOST:PORT")
        }
    }

    /// Asks the network for the swarm's nodes; answers reach `onFound`.
    func browse() {
        let query = MDNS.query(for: service, id: UInt16.random(in: 1 ... .max))
        let buffer = channel.allocator.buffer(bytes: query)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: group, data: buffer), promise: nil)
    }

    func close() async {
        try? await channel.close()
    }
}

/// Answers questions for the swarm's service and reports the instances in answers.
private final class MDNSHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let service: String
    let answer: [UInt8]
    let logger: Logger
    let onFound: @Sendable ([NodeAddress]) -> Void

    init(service: String, answer: [UInt8], logger: Logger, onFound: @escaping @Sendable ([NodeAddress]) -> Void) {
        self.service = service
        self.answer = answer
        self.logger = logger
        self.onFound = onFound
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let message = try? MDNS.decode(Array(envelope.data.readableBytesView)) else { return }
        if message.asks(for: service) {
            // As Serf's responder: unicast, to where the question came from.
            let buffer = context.channel.allocator.buffer(bytes: answer)
            context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)), promise: nil)
        } else if message.isResponse {
            let found = message.instances(of: service).map { NodeAddress(ip: $0.ip, port: $0.port) }
            if !found.isEmpty { onFound(found) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("multicast DNS socket error", metadata: ["error": "\(error)"])
    }
}
