import DequeModule
import NIOCore
import NIOPosix
import RumorWire

/// What went wrong talking to the pilot-daemon.
enum PilotError: Error, CustomStringConvertible {
    /// The daemon answered with an error frame.
    case daemon(String)
    /// The IPC socket closed (the daemon stopped or dropped this client).
    case disconnected
    /// No answer in time; the socket is closed, since a late answer would match the next request.
    case timedOut(String)
    /// A stream's reader fell this many bytes behind; the stream was closed.
    case overrun(Int)

    var description: String {
        switch self {
        case .daemon(let message): "pilot-daemon: \(message)"
        case .disconnected: "the pilot-daemon closed its IPC socket"
        case .timedOut(let what): "the pilot-daemon did not answer \(what) in time"
        case .overrun(let bytes): "a Pilot stream's reader fell \(bytes >> 20) MiB behind; the stream was closed"
        }
    }
}

/// One connection to the pilot-daemon's IPC socket (see docs/pilot-ipc.md).
///
/// The daemon has no request ids and answers concurrently, so a session keeps one request that
/// expects an answer in flight at a time and queues the rest; pushes (accepts, stream data,
/// datagrams, closes) go to `onPush` whatever is in flight. A session that carries one outgoing
/// stream (`dial`) keeps that stream's data for `nextChunk`.
///
/// A session never stops reading its socket: pilot-daemon 1.18 stalls a stream for good once
/// its write to a client blocks, even for 50 ms (docs/pilot-ipc.md). So the bytes a slow reader
/// has not taken yet wait here instead, up to `bufferedLimit`; past that the stream fails (a
/// catch-up then resumes from where it got, as after any lost stream).
final class PilotSession: Sendable {
    let channel: Channel
    private let handler: NIOLoopBound<PilotFrameHandler>

    /// The largest stream payload one `Send` frame carries (the body limit, less the command
    /// byte and the connection id, rounded down).
    static let sendChunk = 512 * 1024

    private init(channel: Channel, handler: NIOLoopBound<PilotFrameHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects to the daemon's socket at `path`. `onPush` runs on the session's event loop and
    /// must not block; `onClose` runs once when the socket closes for any reason.
    /// - Throws: `AgentError` `pilot_unavailable`, saying why (no socket, daemon not running,
    ///   another user's daemon).
    static func connect(
        path: String, group: EventLoopGroup, onPush: (@Sendable (PilotIPC.Event) -> Void)? = nil,
        onClose: @escaping @Sendable () -> Void = {}
    ) async throws -> PilotSession {
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(PilotFrameHandler(onPush: onPush, onClose: onClose))
                    }
                }
                .connect(unixDomainSocketPath: path)
                .get()
            let handler = try await channel.pipeline.handler(type: PilotFrameHandler.self).map {
                NIOLoopBound($0, eventLoop: channel.eventLoop)
            }.get()
            return PilotSession(channel: channel, handler: handler)
        } catch {
            throw unavailable(path: path, error)
        }
    }

    static func unavailable(path: String, _ error: any Error) -> AgentError {
        let errno = (error as? IOError)?.errnoCode
        let reason =
            switch errno {
            case ENOENT: "no socket there (is pilot-daemon running?)"
            case ECONNREFUSED: "the socket is stale: the daemon that made it is not running"
            case EACCES, EPERM: "permission denied (the daemon runs as another user?)"
            default: "\(error)"
            }
        return AgentError(
            code: .pilotUnavailable, message: "cannot reach the Pilot daemon at \(path): \(reason)",
            hint: "start pilot-daemon (`pilotctl daemon start`), or pass --pilot-socket PATH (its -socket)")
    }

    /// Sends `frame` and waits for its answer (`expecting`, or an error frame).
    /// - Throws: `PilotError.daemon` with the daemon's message; `.timedOut` (and the session
    ///   closes); `.disconnected`.
    func request(_ frame: PilotIPC.Frame, expecting reply: PilotIPC.Command, timeout: TimeAmount) async throws -> PilotIPC.Frame {
        let promise = channel.eventLoop.makePromise(of: PilotIPC.Frame.self)
        let handler = self.handler
        let channel = self.channel
        channel.eventLoop.execute {
            handler.value.enqueue(frame, expecting: reply.rawValue, promise: promise)
        }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(PilotError.timedOut("\(PilotIPC.Command(rawValue: frame.command).map { "\($0)" } ?? "a request")"))
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        return try await promise.futureResult.get()
    }

    /// Writes a frame that gets no answer (send, send-to, close), in order with earlier writes;
    /// returns once it is on the socket.
    func write(_ frame: PilotIPC.Frame) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: frame.bytes))
    }

    /// Writes a frame that gets no answer without waiting (datagrams).
    func post(_ frame: PilotIPC.Frame) {
        channel.writeAndFlush(channel.allocator.buffer(bytes: frame.bytes), promise: nil)
    }

    /// Writes `bytes` on stream `connection`, in frames the daemon accepts.
    func send(_ bytes: [UInt8], on connection: UInt32) async throws {
        var start = 0
        repeat {
            let end = min(bytes.count, start + Self.sendChunk)
            try await write(PilotIPC.send(connection: connection, Array(bytes[start..<end])))
            start = end
        } while start < bytes.count
    }

    func close() {
        channel.close(promise: nil)
    }

    // MARK: - One outgoing stream

    /// Dials `address:port` and makes this session the stream's owner: its data then comes
    /// from `nextChunk`. Returns the connection id.
    /// - Throws: `PilotError.daemon` ("connection refused", "… registry: request failed" when the
    ///   peer does not trust us), `.timedOut`, `.disconnected`.
    func dial(_ address: PilotIPC.Address, port: UInt16, timeout: TimeAmount) async throws -> UInt32 {
        let reply = try await request(PilotIPC.dial(address, port: port), expecting: .dialOK, timeout: timeout)
        guard reply.payload.count == 4 else { throw PilotError.daemon("dial answer of \(reply.payload.count) bytes") }
        let connection = reply.payload.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let handler = self.handler
        try await channel.eventLoop.submit { handler.value.attach(connection) }.get()
        return connection
    }

    /// The stream's next bytes; nil once the peer closed it.
    /// - Throws: `StreamTransportError.timedOut` when nothing comes for `timeout`;
    ///   `PilotError.disconnected`.
    func nextChunk(timeout: TimeAmount) async throws -> [UInt8]? {
        let handler = self.handler
        let promise = channel.eventLoop.makePromise(of: [UInt8]?.self)
        channel.eventLoop.execute { handler.value.nextChunk(promise) }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { promise.fail(StreamTransportError.timedOut) }
        defer { deadline.cancel() }
        return try await promise.futureResult.get()
    }

    /// Waits (up to `timeout`) for the daemon to report the stream closed: after our own
    /// `close`, that means every byte before it went out.
    func waitForClose(timeout: TimeAmount) async {
        let handler = self.handler
        let promise = channel.eventLoop.makePromise(of: [UInt8]?.self)
        channel.eventLoop.execute { handler.value.waitForEnd(promise) }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { promise.succeed(nil) }
        defer { deadline.cancel() }
        _ = try? await promise.futureResult.get()
    }
}

/// The session's pipeline: frames in, replies matched to the request in flight, pushes out.
/// Confined to the channel's event loop.
private final class PilotFrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Request {
        var frame: PilotIPC.Frame
        var expected: UInt8
        var promise: EventLoopPromise<PilotIPC.Frame>
    }

    /// Unread stream bytes above which the stream fails (see `PilotSession`).
    static let bufferedLimit = 64 << 20

    private let onPush: (@Sendable (PilotIPC.Event) -> Void)?
    private let onClose: @Sendable () -> Void
    private var context: ChannelHandlerContext?
    /// Requests waiting; the first one is written and awaits its answer.
    private var requests = Deque<Request>()
    private var received: [UInt8] = []
    private var decoded = 0
    private var closed = false

    // The outgoing stream this session owns, if any.
    private var stream: UInt32?
    private var chunks = Deque<[UInt8]>()
    private var bufferedBytes = 0
    private var streamEnded = false
    /// The reader fell more than `bufferedLimit` behind.
    private var overrun = false
    private var reader: EventLoopPromise<[UInt8]?>?
    private var endWaiter: EventLoopPromise<[UInt8]?>?

    init(onPush: (@Sendable (PilotIPC.Event) -> Void)?, onClose: @escaping @Sendable () -> Void) {
        self.onPush = onPush
        self.onClose = onClose
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func enqueue(_ frame: PilotIPC.Frame, expecting reply: UInt8, promise: EventLoopPromise<PilotIPC.Frame>) {
        guard !closed, let context else {
            promise.fail(PilotError.disconnected)
            return
        }
        requests.append(Request(frame: frame, expected: reply, promise: promise))
        if requests.count == 1 {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame.bytes)), promise: nil)
        }
    }

    func attach(_ connection: UInt32) {
        stream = connection
    }

    /// Hands the reader every byte buffered so far at once (the daemon sends a stream in frames
    /// of about a kilobyte; decoding after each would redo the work a thousand times a page).
    func nextChunk(_ promise: EventLoopPromise<[UInt8]?>) {
        if !chunks.isEmpty {
            promise.succeed(takeBuffered())
        } else if streamEnded {
            if overrun {
                promise.fail(PilotError.overrun(Self.bufferedLimit))
            } else if closed {
                promise.fail(PilotError.disconnected)
            } else {
                promise.succeed(nil)
            }
        } else {
            reader = promise
        }
    }

    private func takeBuffered() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(bufferedBytes)
        while let chunk = chunks.popFirst() { bytes += chunk }
        bufferedBytes = 0
        return bytes
    }

    func waitForEnd(_ promise: EventLoopPromise<[UInt8]?>) {
        if streamEnded { promise.succeed(nil) } else { endWaiter = promise }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.append(contentsOf: unwrapInboundIn(data).readableBytesView)
        do {
            while let (frame, consumed) = try PilotIPC.decodeFrame(received[decoded...]) {
                decoded += consumed
                try handle(frame)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        flushPushes()
        if decoded == received.count {
            received.removeAll(keepingCapacity: received.capacity <= 1 << 16)
            decoded = 0
        } else if decoded > 1 << 16 {
            received.removeFirst(decoded)
            decoded = 0
        }
    }

    private func handle(_ frame: PilotIPC.Frame) throws {
        if let event = try PilotIPC.event(frame) {
            if let stream {
                deliver(event, on: stream)
            } else {
                queuePush(event)
            }
            return
        }
        guard let first = requests.first,
            frame.command == first.expected || frame.command == PilotIPC.Command.error.rawValue
        else { return }  // an answer to a request that timed out; the session is closing
        requests.removeFirst()
        if let message = PilotIPC.errorMessage(frame) {
            first.promise.fail(PilotError.daemon(message))
        } else {
            first.promise.succeed(frame)
        }
        if let next = requests.first, let context {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: next.frame.bytes)), promise: nil)
        }
    }

    /// Pushes of one read, stream data of the same connection back to back joined (the daemon
    /// sends streams in frames of about a kilobyte; a request decoded after each would be
    /// decoded a thousand times).
    private var pushes: [PilotIPC.Event] = []
    private var joining: (connection: UInt32, bytes: [UInt8])?

    private func queuePush(_ event: PilotIPC.Event) {
        if case .received(let connection, let bytes) = event {
            if joining?.connection == connection {
                joining?.bytes += bytes
                return
            }
            endJoining()
            joining = (connection, bytes)
        } else {
            endJoining()
            pushes.append(event)
        }
    }

    private func endJoining() {
        guard let joined = joining else { return }
        joining = nil
        pushes.append(.received(connection: joined.connection, bytes: joined.bytes))
    }

    private func flushPushes() {
        endJoining()
        let ready = pushes
        pushes.removeAll(keepingCapacity: true)
        for event in ready { onPush?(event) }
    }

    private func deliver(_ event: PilotIPC.Event, on stream: UInt32) {
        switch event {
        case .received(stream, let bytes):
            chunks.append(bytes)
            bufferedBytes += bytes.count
            if bufferedBytes > Self.bufferedLimit {
                chunks.removeAll()
                bufferedBytes = 0
                overrun = true
                context?.close(promise: nil)
            }
        case .closed(stream):
            endStream()
        default:
            break  // datagrams reach every client of the daemon; a stream session ignores them
        }
    }

    /// The bytes of one read go to a waiting reader together.
    func channelReadComplete(context: ChannelHandlerContext) {
        if let reader, !chunks.isEmpty {
            self.reader = nil
            reader.succeed(takeBuffered())
        }
        context.fireChannelReadComplete()
    }

    private func endStream() {
        streamEnded = true
        if let reader {
            self.reader = nil
            if !chunks.isEmpty {
                reader.succeed(takeBuffered())
            } else if overrun {
                reader.fail(PilotError.overrun(Self.bufferedLimit))
            } else if closed {
                reader.fail(PilotError.disconnected)
            } else {
                reader.succeed(nil)
            }
        }
        endWaiter?.succeed(nil)
        endWaiter = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        while let request = requests.popFirst() { request.promise.fail(PilotError.disconnected) }
        endStream()
        onClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
