import NIOCore
import NIOPosix
import RumorWire

/// Decodes one stream message from the bytes received so far; nil while incomplete.
typealias StreamDecoder = @Sendable ([UInt8]) throws -> (message: StreamMessage, consumed: Int)?

/// The bytes of a stream as they arrive, cut into whole messages: the one reader of every
/// stream (requests, answers, catch-up pages, over TCP or Pilot).
struct StreamMessageBuffer {
    private let maximumBytes: Int
    private let decode: StreamDecoder
    private var received: [UInt8] = []

    init(maximumBytes: Int, decode: @escaping StreamDecoder) {
        self.maximumBytes = maximumBytes
        self.decode = decode
    }

    /// Whether bytes of an unfinished message are held.
    var isEmpty: Bool { received.isEmpty }

    /// Appends `bytes`; returns the whole messages they complete, in order.
    /// - Throws: `StreamTransportError.tooLarge` when an unfinished message passes the maximum,
    ///   or the decoder's error for a malformed one.
    mutating func append(_ bytes: some Sequence<UInt8>) throws -> [StreamMessage] {
        received.append(contentsOf: bytes)
        var messages: [StreamMessage] = []
        var start = 0
        while start < received.count, let decoded = try decode(start == 0 ? received : Array(received[start...])) {
            start += decoded.consumed
            messages.append(decoded.message)
        }
        received.removeFirst(start)
        guard received.count <= maximumBytes else { throw StreamTransportError.tooLarge }
        return messages
    }
}

/// The gossip TCP listener: every connection carries one request (push-pull, ping, user message
/// or catch-up) that `onRequest` answers on the channel (once, or page after page for a
/// catch-up); then the connection is closed.
final class StreamListener: Sendable {
    let channel: Channel

    private init(channel: Channel) {
        self.channel = channel
    }

    static func bind(
        host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount, maximumBytes: Int,
        decode: @escaping StreamDecoder,
        onRequest: @escaping @Sendable (StreamMessage, SocketAddress?, Channel) async -> Void,
        onFailure: @escaping @Sendable (Error, SocketAddress?) -> Void,
        replyToFailure: @escaping @Sendable (Error) -> [UInt8]? = { _ in nil }
    ) async throws -> StreamListener {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let handler = StreamRequestHandler(
                        maximumBytes: maximumBytes, decode: decode, onRequest: onRequest, onFailure: onFailure,
                        replyToFailure: replyToFailure)
                    try child.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: timeout))
                    try child.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: host, port: port)
            .get()
        return StreamListener(channel: channel)
    }

    func close() async {
        try? await channel.close()
    }
}

/// Reads one request, hands it to the agent, which writes the answer; then closes.
private final class StreamRequestHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let onRequest: @Sendable (StreamMessage, SocketAddress?, Channel) async -> Void
    private let onFailure: @Sendable (Error, SocketAddress?) -> Void
    /// The answer to a request that could not be read, if any (memberlist answers one with an
    /// error response), written before the stream closes.
    private let replyToFailure: @Sendable (Error) -> [UInt8]?
    private var buffer: StreamMessageBuffer
    private var answered = false

    init(
        maximumBytes: Int, decode: @escaping StreamDecoder,
        onRequest: @escaping @Sendable (StreamMessage, SocketAddress?, Channel) async -> Void,
        onFailure: @escaping @Sendable (Error, SocketAddress?) -> Void,
        replyToFailure: @escaping @Sendable (Error) -> [UInt8]?
    ) {
        self.buffer = StreamMessageBuffer(maximumBytes: maximumBytes, decode: decode)
        self.onRequest = onRequest
        self.onFailure = onFailure
        self.replyToFailure = replyToFailure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        let peer = context.remoteAddress
        let request: StreamMessage
        do {
            guard let first = try buffer.append(unwrapInboundIn(data).readableBytesView).first else { return }
            request = first
        } catch {
            fail(error, peer: peer, context: context)
            return
        }
        answered = true
        let channel = context.channel
        let onRequest = self.onRequest
        Task {
            await onRequest(request, peer, channel)
            try? await channel.close()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if !answered { onFailure(StreamTransportError.timedOut, context.remoteAddress) }
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !answered, !buffer.isEmpty { onFailure(StreamTransportError.closedEarly, context.remoteAddress) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func fail(_ error: Error, peer: SocketAddress?, context: ChannelHandlerContext) {
        answered = true
        onFailure(error, peer)
        guard let reply = replyToFailure(error) else {
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: reply))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}

enum StreamTransportError: Error, CustomStringConvertible {
    case tooLarge
    case timedOut
    case closedEarly

    var description: String {
        switch self {
        case .tooLarge: "stream message exceeds the size limit"
        case .timedOut: "stream timed out"
        case .closedEarly: "peer closed the stream before a whole message arrived"
        }
    }
}

/// One request/answer exchange over a new TCP connection (push-pull, fallback ping).
enum StreamClient {
    /// Connects to `address`, writes `message` and closes, expecting no answer.
    static func send(_ message: [UInt8], to address: SocketAddress, group: EventLoopGroup, timeout: TimeAmount) async throws {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .connect(to: address)
            .get()
        defer { channel.close(promise: nil) }
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: message))
    }

    /// Connects to `address`, sends `request`, and returns the first whole message the peer sends
    /// back. Throws on connection failure, malformed answer, or when `timeout` passes.
    static func exchange(
        _ request: [UInt8], with address: SocketAddress, group: EventLoopGroup, timeout: TimeAmount,
        maximumBytes: Int, decode: @escaping StreamDecoder
    ) async throws -> StreamMessage {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .connect(to: address)
            .get()
        let promise = channel.eventLoop.makePromise(of: StreamMessage.self)
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(StreamTransportError.timedOut)
        }
        do {
            try await channel.pipeline.addHandler(
                ResponseHandler(promise: promise, maximumBytes: maximumBytes, decode: decode)
            ).get()
            try await channel.writeAndFlush(channel.allocator.buffer(bytes: request))
            let answer = try await promise.futureResult.get()
            deadline.cancel()
            try? await channel.close()
            return answer
        } catch {
            deadline.cancel()
            promise.fail(error)
            try? await channel.close()
            throw error
        }
    }
}

private final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<StreamMessage>
    private var buffer: StreamMessageBuffer

    init(promise: EventLoopPromise<StreamMessage>, maximumBytes: Int, decode: @escaping StreamDecoder) {
        self.promise = promise
        self.buffer = StreamMessageBuffer(maximumBytes: maximumBytes, decode: decode)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            if let message = try buffer.append(unwrapInboundIn(data).readableBytesView).first { promise.succeed(message) }
        } catch {
            promise.fail(error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(StreamTransportError.closedEarly)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
