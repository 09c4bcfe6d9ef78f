#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The gossip UDP socket: hands every received datagram to `onPacket`, in arrival order, and
/// sends datagrams without waiting.
///
/// Datagrams are sent with `sendto(2)` on a duplicate of the socket's descriptor, not through
/// NIO's write path, which closes a datagram channel on any send error but EMSGSIZE and
/// EHOSTUNREACH: one datagram a peer aimed at a bad address would otherwise silence the node's
/// UDP until the socket is bound again. A failing send (EINVAL, EACCES, EPERM, ENETUNREACH,
/// EADDRNOTAVAIL, …) drops that datagram and is reported to the caller (`SendOutcome`); a full
/// send buffer hands the datagram to NIO, which queues it until the socket is writable. The
/// socket is bound again only when it is really broken (the channel closed without `close()`,
/// or the descriptor is gone), after a delay that doubles while it keeps breaking.
final class PacketTransport: Sendable {
    private let state = NIOLockedValueBox(State())
    private let host: String
    /// The port bound at start, taken again by every rebind. Never read from a channel that may
    /// already have closed: a closed channel has no address, and port 0 would bind a random one.
    private let port: Int
    private let group: EventLoopGroup
    private let onPacket: @Sendable ([UInt8], SocketAddress) -> Void
    private let onReopen: @Sendable (any Error) -> Void

    private struct State {
        /// The open socket; nil while it is being bound again, or after `close()`.
        var socket: OpenSocket?
        var closing = false
        /// Why the socket last broke (reported with the reopen).
        var failure: (any Error)?
        /// When the socket was last bound again, and the delay before the next rebind.
        var lastReopen: NIODeadline?
        var backoff: TimeAmount = PacketTransport.firstReopenDelay
    }

    /// A bound channel (which reads) and a duplicate of its descriptor (which sends).
    private struct OpenSocket: Sendable {
        var channel: Channel
        var sender: CInt
        /// AF_INET or AF_INET6.
        var family: CInt
    }

    /// The first delay before binding again; doubled for each break within `stableAfter` of the
    /// last rebind, up to `maximumReopenDelay`.
    static let firstReopenDelay = TimeAmount.milliseconds(10)
    static let maximumReopenDelay = TimeAmount.seconds(5)
    static let stableAfter = TimeAmount.seconds(30)

    private init(
        socket: OpenSocket, host: String, port: Int, group: EventLoopGroup, onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void,
        onReopen: @escaping @Sendable (any Error) -> Void
    ) {
        self.state.withLockedValue { $0.socket = socket }
        self.host = host
        self.port = port
        self.group = group
        self.onPacket = onPacket
        self.onReopen = onReopen
    }

    /// Binds `host:port`. `onPacket` runs on the channel's event loop; it must not block.
    /// `onReopen` reports each time the socket had to be bound again (with why it broke).
    static func bind(
        host: String, port: Int, group: EventLoopGroup,
        onReopen: @escaping @Sendable (any Error) -> Void = { _ in },
        onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void
    ) async throws -> PacketTransport {
        let socket = try await open(host: host, port: port, group: group, onPacket: onPacket)
        guard let bound = socket.channel.localAddress?.port else {
            systemClose(socket.sender)
            try? await socket.channel.close()
            throw ChannelError.inappropriateOperationForState
        }
        let transport = PacketTransport(
            socket: socket, host: host, port: bound, group: group, onPacket: onPacket, onReopen: onReopen)
        transport.watch(socket)
        return transport
    }

    /// Creates, configures and binds the socket, then hands it to NIO for reading, keeping a
    /// duplicate descriptor for sending.
    /// - Throws: `IOError` with the errno of the call that failed (`bind`: "Address already in use").
    private static func open(
        host: String, port: Int, group: EventLoopGroup, onPacket: @escaping @Sendable ([UInt8], SocketAddress) -> Void
    ) async throws -> OpenSocket {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family: CInt = if case .v6 = address { AF_INET6 } else { AF_INET }
        let descriptor = try makeSocket(family: family, boundTo: address)
        let sender = dup(descriptor)
        guard sender >= 0 else { throw failed(descriptor, "dup") }
        do {
            let channel = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                .channelOption(.maxMessagesPerRead, value: 16)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(InboundDatagrams(onPacket: onPacket))
                    }
                }
                .withBoundSocket(descriptor)
                .get()
            return OpenSocket(channel: channel, sender: sender, family: family)
        } catch {
            systemClose(sender)
            throw error
        }
    }

    /// A non-blocking UDP socket of `family` bound to `address` (SO_REUSEADDR, a 4 MiB send
    /// buffer or the system's most).
    private static func makeSocket(family: CInt, boundTo address: SocketAddress) throws -> CInt {
        #if canImport(Glibc)
        let descriptor = socket(family, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        #else
        let descriptor = socket(family, SOCK_DGRAM, 0)
        if descriptor >= 0 { _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) }
        #endif
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        var sendBuffer: CInt = 4 << 20
        let size = socklen_t(MemoryLayout<CInt>.size)
        guard setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, size) == 0 else {
            throw failed(descriptor, "setsockopt")
        }
        // A smaller buffer than asked is fine: a full one queues the datagram in NIO.
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &sendBuffer, size)
        guard address.withSockAddr({ pointer, size in systemBind(descriptor, pointer, socklen_t(size)) }) == 0 else {
            throw failed(descriptor, "bind")
        }
        return descriptor
    }

    /// The error of the call `reason` that failed on `descriptor`, which is closed.
    private static func failed(_ descriptor: CInt, _ reason: String) -> IOError {
        let code = errno
        systemClose(descriptor)
        return IOError(errnoCode: code, reason: reason)
    }

    /// Binds again, on the same port, when `socket`'s channel closes without `close()` having
    /// been called (also when it closed before this was called).
    private func watch(_ socket: OpenSocket) {
        socket.channel.closeFuture.whenComplete { result in
            let delay: TimeAmount? = self.state.withLockedValue { state in
                // The sending descriptor goes with the channel: kept open, it would hold the port.
                guard let current = state.socket, current.sender == socket.sender else { return nil }
                systemClose(current.sender)
                state.socket = nil
                if state.failure == nil, case .failure(let error) = result { state.failure = error }
                guard !state.closing else { return nil }
                let now = NIODeadline.now()
                if let last = state.lastReopen, now - last < Self.stableAfter {
                    state.backoff = min(state.backoff * 2, Self.maximumReopenDelay)
                } else {
                    state.backoff = Self.firstReopenDelay
                }
                return state.backoff
            }
            if let delay { self.reopen(after: delay, retryDelay: delay) }
        }
    }

    /// Binds a fresh socket after `delay`; when that fails, tries again after `retryDelay`
    /// doubled (up to `maximumReopenDelay`), until it succeeds or `close()` is called.
    private func reopen(after delay: TimeAmount, retryDelay: TimeAmount) {
        group.next().scheduleTask(in: delay) {
            guard !self.state.withLockedValue({ $0.closing }) else { return }
            Task {
                do {
                    let fresh = try await Self.open(host: self.host, port: self.port, group: self.group, onPacket: self.onPacket)
                    let (kept, failure) = self.state.withLockedValue { state -> (Bool, (any Error)?) in
                        guard !state.closing else { return (false, nil) }
                        state.socket = fresh
                        state.lastReopen = .now()
                        defer { state.failure = nil }
                        return (true, state.failure)
                    }
                    guard kept else {
                        systemClose(fresh.sender)
                        try? await fresh.channel.close()
                        return
                    }
                    self.watch(fresh)
                    self.onReopen(failure ?? ChannelError.alreadyClosed)
                } catch {
                    let next = min(retryDelay * 2, Self.maximumReopenDelay)
                    self.reopen(after: next, retryDelay: next)
                }
            }
        }
    }

    /// The bound local address.
    var localAddress: SocketAddress? { state.withLockedValue { $0.socket }?.channel.localAddress }

    /// Sends one datagram without waiting. A send the system refuses drops that datagram only;
    /// a broken descriptor closes the channel, which binds the socket again.
    @discardableResult
    func send(_ bytes: [UInt8], to address: SocketAddress) -> SendOutcome {
        let attempt = state.withLockedValue { state -> (SendOutcome, Channel?) in
            guard let socket = state.socket else { return (.dropped(.closed), nil) }
            var target = address
            if socket.family == AF_INET6, case .v4 = address, let mapped = Self.mapped(address) { target = mapped }
            if socket.family == AF_INET, case .v6 = address { return (.dropped(.refused(EAFNOSUPPORT)), nil) }
            // Under the lock: the descriptor cannot be closed (and its number reused) mid-call.
            var result: Int
            repeat {
                result = bytes.withUnsafeBytes { buffer in
                    target.withSockAddr { pointer, size in
                        sendto(socket.sender, buffer.baseAddress, buffer.count, CInt(MSG_DONTWAIT) | CInt(MSG_NOSIGNAL), pointer, socklen_t(size))
                    }
                }
            } while result < 0 && errno == EINTR
            guard result < 0 else { return (.sent, nil) }
            let code = errno
            switch code {
            case EAGAIN, EWOULDBLOCK:
                return (.queued, socket.channel)
            case EBADF, ENOTSOCK:
                state.failure = IOError(errnoCode: code, reason: "sendto")
                return (.dropped(.broken(code)), socket.channel)
            default:
                return (.dropped(.refused(code)), nil)
            }
        }
        switch attempt {
        case (.queued, let channel?):
            // NIO closes the channel if this write fails (the watch then binds again): keep why.
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: channel.allocator.buffer(bytes: bytes)))
                .whenFailure { error in
                    guard !(error is ChannelError) else { return }
                    self.state.withLockedValue { if $0.failure == nil { $0.failure = error } }
                }
        case (.dropped(.broken), let channel?):
            channel.close(promise: nil)
        default:
            break
        }
        return attempt.0
    }

    /// `address` (IPv4) as the IPv4-mapped IPv6 address an IPv6 socket sends to.
    private static func mapped(_ address: SocketAddress) -> SocketAddress? {
        guard case .v4(let v4) = address, let port = address.port else { return nil }
        var bytes: [UInt8] = Array(repeating: 0, count: 10) + [0xff, 0xff]
        bytes += withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        return try? SocketAddress(packedIPAddress: ByteBuffer(bytes: bytes), port: port)
    }

    func close() async {
        let socket = state.withLockedValue { state -> OpenSocket? in
            state.closing = true
            return state.socket
        }
        try? await socket?.channel.close()
    }

    /// For tests: closes the socket as a fatal error would.
    func simulateFatalError() async {
        try? await state.withLockedValue { $0.socket }?.channel.close()
    }
}

private func systemClose(_ descriptor: CInt) {
    #if canImport(Glibc)
    _ = Glibc.close(descriptor)
    #else
    _ = Darwin.close(descriptor)
    #endif
}

private func systemBind(_ descriptor: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> CInt {
    #if canImport(Glibc)
    Glibc.bind(descriptor, address, length)
    #else
    Darwin.bind(descriptor, address, length)
    #endif
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
