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
    private let socket: NIOLockedValueBox<OpenSocket>
    private let closing = NIOLockedValueBox(false)
    private let host: String
    /// The port bound at start, taken again by every rebind. Never read from a channel that may
    /// already have closed: a closed channel has no address, and port 0 would bind a random one.
    private let port: Int
    private let group: EventLoopGroup
    private let onPacket: @Sendable ([UInt8], SocketAddress) -> Void
    private let onReopen: @Sendable (any Error) -> Void

    private init(
        socket: OpenSocket, host: String, port: Int, group: EventLoopGroup, onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void,
        onReopen: @escaping @Sendable (any Error) -> Void
    ) {
        self.socket = NIOLockedValueBox(socket)
        self.host = host
        self.port = port
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
        let socket = try await open(host: host, port: port, group: group, onPacket: onPacket)
        guard let bound = socket.channel.localAddress?.port else {
            try? await socket.channel.close()
            throw ChannelError.inappropriateOperationForState
        }
        let transport = PacketTransport(
            socket: socket, host: host, port: bound, group: group, onPacket: onPacket, onReopen: onReopen)
        transport.watch(socket)
        return transport
    }

    /// A bound channel and the error that closes it, once one does.
    private struct OpenSocket: Sendable {
        var channel: Channel
        var failure: NIOLockedValueBox<(any Error)?>
    }

    private static func open(
        host: String, port: Int, group: EventLoopGroup, onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void
    ) async throws -> OpenSocket {
        let failure = NIOLockedValueBox<(any Error)?>(nil)
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
        return OpenSocket(channel: channel, failure: failure)
    }

    /// Binds again, on the same port, when `socket` closes without `close()` having been called
    /// (also when it closed before this was called).
    private func watch(_ socket: OpenSocket) {
        socket.channel.closeFuture.whenComplete { _ in
            self.reopen(replacing: socket, retryAfter: .milliseconds(10))
        }
    }

    /// Binds a fresh socket; when that fails, tries again after `delay` (doubling up to 1 s) on
    /// the event loop's timer, until it succeeds or `close()` is called.
    private func reopen(replacing socket: OpenSocket, retryAfter delay: Duration) {
        guard !closing.withLockedValue({ $0 }) else { return }
        Task {
            do {
                let fresh = try await Self.open(host: self.host, port: self.port, group: self.group, onPacket: self.onPacket)
                self.socket.withLockedValue { $0 = fresh }
                self.watch(fresh)
                self.onReopen(socket.failure.withLockedValue { $0 } ?? ChannelError.alreadyClosed)
            } catch {
                self.group.next().scheduleTask(in: .nanoseconds(delay.nanosecondsClamped)) {
                    self.reopen(replacing: socket, retryAfter: min(delay * 2, .seconds(1)))
                }
            }
        }
    }

    /// The bound local address.
    var localAddress: SocketAddress? { socket.withLockedValue { $0 }.channel.localAddress }

    /// Sends one datagram; errors (unreachable peers and the like) are dropped, as UDP is lossy
    /// anyway. A send error that closes the socket is kept for the reopen report.
    func send(_ bytes: [UInt8], to address: SocketAddress) {
        let socket = self.socket.withLockedValue { $0 }
        let buffer = socket.channel.allocator.buffer(bytes: bytes)
        socket.channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer)).whenFailure { error in
            // The first failure is the cause; later writes only find the channel closed.
            guard !(error is ChannelError) else { return }
            socket.failure.withLockedValue { if $0 == nil { $0 = error } }
        }
    }

    func close() async {
        closing.withLockedValue { $0 = true }
        try? await socket.withLockedValue { $0 }.channel.close()
    }

    /// For tests: closes the socket as a fatal send error would.
    func simulateFatalError() async {
        try? await socket.withLockedValue { $0 }.channel.close()
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
