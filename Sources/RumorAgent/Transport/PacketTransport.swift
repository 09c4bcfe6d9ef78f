import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The gossip UDP socket: hands every received datagram to `onPacket`, in arrival order, and
/// sends datagrams without waiting.
///
/// NIO closes a datagram channel on a send error it deems fatal (EPERM from a local firewall
/// rule, for one); the socket is then bound again on the same port, so one refused datagram
/// cannot silence the node's UDP for good.
final class PacketTransport: Sendable {
    private let channel: NIOLockedValueBox<Channel>
    private let closing = NIOLockedValueBox(false)
    private let host: String
    private let group: EventLoopGroup
    private let onPacket: @Sendable ([UInt8], SocketAddress) -> Void
    private let onReopen: @Sendable (any Error) -> Void

    private init(
        channel: Channel, host: String, group: EventLoopGroup, onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void,
        onReopen: @escaping @Sendable (any Error) -> Void
    ) {
        self.channel = NIOLockedValueBox(channel)
        self.host = host
        self.group = group
        self.onPacket = onPacket
        self.onReopen = onReopen
    }

    /// Binds `host:port`. `onPacket` runs on the channel's event loop; it must not block.
    /// `onReopen` reports each time the socket had to be bound again (with why it closed).
    static func bind(
        host: String, port: Int, group: EventLoopGroup,
        onReopen: @escaping @Sendable (any Error) -> Void = { _ in },
        onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void
    ) async throws -> PacketTransport {
        let channel = try await open(host: host, port: port, group: group, onPacket: onPacket)
        let transport = PacketTransport(channel: channel, host: host, group: group, onPacket: onPacket, onReopen: onReopen)
        transport.watch(channel)
        return transport
    }

    private static func open(
        host: String, port: Int, group: EventLoopGroup, onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void
    ) async throws -> Channel {
        try await DatagramBootstrap(group: group)
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
    }

    /// Rebinds when `channel` closes without `close()` having been called.
    private func watch(_ channel: Channel) {
        let port = channel.localAddress?.port ?? 0
        let failure = NIOLockedValueBox<(any Error)?>(nil)
        channel.pipeline.addHandler(CloseReason(failure: failure)).whenComplete { _ in }
        channel.closeFuture.whenComplete { _ in
            guard !self.closing.withLockedValue({ $0 }) else { return }
            Task {
                var delay = Duration.milliseconds(10)
                while !self.closing.withLockedValue({ $0 }) {
                    do {
                        let fresh = try await Self.open(host: self.host, port: port, group: self.group, onPacket: self.onPacket)
                        self.channel.withLockedValue { $0 = fresh }
                        self.onReopen(failure.withLockedValue { $0 } ?? ChannelError.alreadyClosed)
                        self.watch(fresh)
                        return
                    } catch {
                        try? await Task.sleep(for: delay)
                        delay = min(delay * 2, .seconds(1))
                    }
                }
            }
        }
    }

    /// The bound local address.
    var localAddress: SocketAddress? { channel.withLockedValue { $0 }.localAddress }

    /// Sends one datagram; errors (unreachable peers and the like) are dropped, as UDP is lossy anyway.
    func send(_ bytes: [UInt8], to address: SocketAddress) {
        let channel = self.channel.withLockedValue { $0 }
        let buffer = channel.allocator.buffer(bytes: bytes)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
    }

    func close() async {
        closing.withLockedValue { $0 = true }
        try? await channel.withLockedValue { $0 }.close()
    }

    /// For tests: closes the socket as a fatal send error would.
    func simulateFatalError() async {
        try? await channel.withLockedValue { $0 }.close()
    }
}

/// Remembers the error that closed the channel, for the reopen report.
private final class CloseReason: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let failure: NIOLockedValueBox<(any Error)?>

    init(failure: NIOLockedValueBox<(any Error)?>) {
        self.failure = failure
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failure.withLockedValue { $0 = error }
        context.fireErrorCaught(error)
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
