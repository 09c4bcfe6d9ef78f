import NIOCore
import NIOPosix
import RumorWire

/// The receiving end of a catch-up: one TCP connection, one request, then page after page.
///
/// Reads with backpressure: the next bytes are read only once `onMessage` has returned for the
/// messages before them (NIOAsyncChannel stops reading when its buffer is full), so a slow
/// receiver slows the sender instead of buffering the whole catch-up.
enum CatchUpClient {
    /// Connects to `address`, sends `request`, and hands each whole message that comes back to
    /// `onMessage` until it returns true (the last page). Throws when the connection fails or
    /// closes first, a message is malformed or too large, or nothing arrives for `idleTimeout`.
    static func run(
        _ request: [UInt8], to address: SocketAddress, group: EventLoopGroup, idleTimeout: TimeAmount, maximumBytes: Int,
        decode: @escaping StreamDecoder, isolation: isolated (any Actor)? = #isolation,
        onMessage: (StreamMessage) async throws -> Bool
    ) async throws {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(idleTimeout)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: request))
            var buffer = StreamMessageBuffer(maximumBytes: maximumBytes, decode: decode)
            for try await chunk in inbound {
                for message in try buffer.append(chunk.readableBytesView) where try await onMessage(message) { return }
            }
            throw StreamTransportError.closedEarly
        }
    }
}

/// Closes the connection when `IdleStateHandler` reports nothing read for its timeout.
private final class CloseWhenIdle: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
