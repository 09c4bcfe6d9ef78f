import NIOCore
import NIOPosix

/// The gossip UDP socket: hands every received datagram to `onPacket`, in arrival order, and
/// sends datagrams without waiting.
final class PacketTransport: Sendable {
    let channel: Channel

    private init(channel: Channel) {
        self.channel = channel
    }

    /// Binds `host:port`. `onPacket` runs on the channel's event loop; it must not block.
    static func bind(
        host: String, port: Int, group: EventLoopGroup,
        onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void
    ) async throws -> PacketTransport {
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.maxMessagesPerRead, value: 16)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(InboundDatagrams(onPacket: onPacket))
                }
            }
            .bind(host: host, port: port)
            .get()
        return PacketTransport(channel: channel)
    }

    /// The bound local address.
    var localAddress: SocketAddress? { channel.localAddress }

    /// Sends one datagram; errors (unreachable peers and the like) are dropped, as UDP is lossy anyway.
    func send(_ bytes: [UInt8], to address: SocketAddress) {
        let buffer = channel.allocator.buffer(bytes: bytes)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
    }

    func close() async {
        try? await channel.close()
    }
}

private final class InboundDatagrams: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let onPacket: @Sendable ([UInt8], SocketAddress) -> Void

    init(onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void) {
        self.onPacket = onPacket
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        onPacket(Array(envelope.data.readableBytesView), envelope.remoteAddress)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP port-unreachable and similar surface here; UDP peers come and go, so ignore.
    }
}
