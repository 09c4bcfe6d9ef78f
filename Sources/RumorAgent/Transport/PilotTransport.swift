import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RumorCore
import RumorWire

/// Gossip over the Pilot overlay network, through the local pilot-daemon's IPC socket: datagrams
/// as Pilot datagrams to the swarm's Pilot port, streams as Pilot connections to it.
///
/// Three kinds of IPC sockets (docs/pilot-ipc.md explains why): the *listener* binds the port,
/// takes the datagrams sent to it and the streams dialled to it; the *control* socket carries
/// lookups, trust, tags, health checks and outgoing datagrams; each outgoing stream has a socket of
/// its own (closing it closes the stream). Each long-lived socket is opened again on its own
/// when it closes (a control request that times out retires only the control socket, so streams
/// on the listener go on); when the daemon goes away both are, with backoff, the port is bound
/// again, and `onRecovered` reported.
///
/// Peers must trust each other before any traffic flows: sending to a node not yet trusted
/// asks the daemon for a handshake with it, and the trust list is polled every 2 s (which also
/// makes the daemon fetch handshakes other nodes sent us, so theirs complete in about a second).
final class PilotTransport: GossipTransport {
    struct Settings: Sendable {
        var socketPath: String
        var port: UInt16
        var swarm: String
        var streamTimeout: TimeAmount
        var maximumStreamBytes: Int
    }

    /// A stream another node dialled to our port: its bytes until a whole request is in.
    struct InboundStream {
        var peer: NodeAddress
        var buffer: StreamMessageBuffer
        var answered = false
    }

    struct State {
        var control: PilotSession?
        var listener: PilotSession?
        var address: PilotIPC.Address
        var closing = false
        var reopeningControl = false
        var reopeningListener = false
        /// Nodes the daemon lists as trusted (either direction).
        var trusted: Set<UInt32> = []
        /// When we last asked each node for a handshake.
        var asked: [UInt32: ContinuousClock.Instant] = [:]
        var inbound: [UInt32: InboundStream] = [:]
        /// Bytes of streams whose accept has not come yet (the daemon pushes from several
        /// goroutines, so data can overtake it): at most `earlyLimit` streams.
        var early: [UInt32: [UInt8]] = [:]
    }

    private static let earlyLimit = 64

    let settings: Settings
    private let group: EventLoopGroup
    private let decode: StreamDecoder
    private let handlers: TransportHandlers
    let logger: Logger
    let state: NIOLockedValueBox<State>
    private let maintenance = NIOLockedValueBox<Task<Void, Never>?>(nil)

    /// How long a control request may take (a registry lookup included).
    static let requestTimeout = TimeAmount.seconds(10)
    /// How long `resolveSeed` waits for a peer to grant trust.
    static let trustTimeout = Duration.seconds(30)

    private init(settings: Settings, group: EventLoopGroup, decode: @escaping StreamDecoder, handlers: TransportHandlers, logger: Logger, address: PilotIPC.Address) {
        self.settings = settings
        self.group = group
        self.decode = decode
        self.handlers = handlers
        self.logger = logger
        self.state = NIOLockedValueBox(State(address: address))
    }

    /// Connects to the daemon, binds the port, tags the node with its swarm, and starts the
    /// trust poll and health check.
    /// - Throws: `AgentError`: `pilot_unavailable` (no daemon at the socket), `bind_failed` (the
    ///   port is taken on this daemon).
    static func start(
        settings: Settings, group: EventLoopGroup, decode: @escaping StreamDecoder, handlers: TransportHandlers, logger: Logger
    ) async throws -> PilotTransport {
        let transport = PilotTransport(
            settings: settings, group: group, decode: decode, handlers: handlers, logger: logger,
            address: PilotIPC.Address(network: 0, node: 0))
        do {
            try await transport.connect()
        } catch {
            await transport.close()
            throw error
        }
        await transport.tagSwarm()
        transport.maintenance.withLockedValue { $0 = Task { await transport.maintain() } }
        return transport
    }

    /// Opens the control and listener sockets, learns our address, binds the port.
    private func connect() async throws {
        try await openControl()
        do {
            try await openListener()
        } catch {
            state.withLockedValue { $0.control }?.close()
            throw error
        }
        try? await pollTrust()
    }

    /// Opens the control socket and learns this node's address from the daemon.
    private func openControl() async throws {
        let path = settings.socketPath
        let control = try await PilotSession.connect(path: path, group: group, onClose: { [weak self] in self?.controlLost() })
        do {
            let info = try await control.request(PilotIPC.Frame(.info), expecting: .infoOK, timeout: Self.requestTimeout)
            guard let json = try? JSONSerialization.jsonObject(with: Data(info.payload)) as? [String: Any],
                let text = json["address"] as? String, let address = PilotIPC.Address(text)
            else { throw PilotError.daemon("an info answer without an address") }
            let before = state.withLockedValue { state in
                defer {
                    state.control = control
                    state.address = address
                }
                return state.address
            }
            if before.node != 0, before != address {
                logger.error(
                    "the Pilot daemon came back with another address: peers still reach this node at the old one",
                    metadata: ["was": "\(before)", "now": "\(address)"])
            }
        } catch {
            control.close()
            throw PilotSession.unavailable(path: path, error)
        }
    }

    /// Opens the listener socket and binds the swarm's port on it.
    private func openListener() async throws {
        let path = settings.socketPath
        let listener = try await PilotSession.connect(
            path: path, group: group, onPush: { [weak self] event in self?.pushed(event) }, onClose: { [weak self] in self?.listenerLost() })
        do {
            _ = try await listener.request(PilotIPC.bind(port: settings.port), expecting: .bindOK, timeout: Self.requestTimeout)
        } catch PilotError.daemon(let message) {
            listener.close()
            throw AgentError(
                code: .bindFailed, message: "cannot bind Pilot port \(settings.port): \(message)",
                hint: "another program (another agent?) holds that port on this daemon: pick another with --pilot-port")
        } catch {
            listener.close()
            throw PilotSession.unavailable(path: path, error)
        }
        state.withLockedValue {
            $0.listener = listener
            $0.inbound = [:]
            $0.early = [:]
        }
    }

    var boundAddress: NodeAddress {
        NodeAddress(ip: state.withLockedValue { $0.address }.bytes, port: settings.port)
    }

    // MARK: - Datagrams

    @discardableResult
    func send(_ bytes: [UInt8], to address: NodeAddress) -> SendOutcome {
        guard let target = Self.pilotAddress(address) else { return .dropped(.address("not_pilot")) }
        guard let control = state.withLockedValue({ $0.control }) else { return .dropped(.closed) }
        askTrustIfNeeded(target.node)
        control.post(PilotIPC.sendTo(target, port: address.port, bytes))
        return .sent
    }

    /// Pushes on the listener: datagrams to our port, streams dialled to it.
    private func pushed(_ event: PilotIPC.Event) {
        switch event {
        case .datagram(let from, _, let toPort, let bytes):
            // Every client of the daemon sees every datagram; ours are those to our port. Each
            // comes from a fresh source port, so replies go to the swarm's port.
            guard toPort == settings.port else { return }
            handlers.onPacket(bytes, NodeAddress(ip: from.bytes, port: settings.port))
        case .accepted(let port, let connection, let from, let fromPort):
            guard port == settings.port else { return }
            let peer = NodeAddress(ip: from.bytes, port: fromPort)
            let early = state.withLockedValue { state in
                state.inbound[connection] = InboundStream(
                    peer: peer, buffer: StreamMessageBuffer(maximumBytes: settings.maximumStreamBytes, decode: decode))
                return state.early.removeValue(forKey: connection)
            }
            let timeout = settings.streamTimeout
            group.next().scheduleTask(in: timeout) { [weak self] in self?.expireInbound(connection) }
            if let early { receivedOnInbound(connection, early) }
        case .received(let connection, let bytes):
            receivedOnInbound(connection, bytes)
        case .closed(let connection):
            let stream = state.withLockedValue { state in
                state.early[connection] = nil
                return state.inbound.removeValue(forKey: connection)
            }
            if let stream, !stream.answered, !stream.buffer.isEmpty {
                handlers.onFailure(StreamTransportError.closedEarly, stream.peer)
            }
        }
    }

    private func receivedOnInbound(_ connection: UInt32, _ bytes: [UInt8]) {
        enum Next {
            case wait
            case request(StreamMessage, NodeAddress)
            case fail(any Error, NodeAddress)
        }
        let maximum = settings.maximumStreamBytes
        let next: Next = state.withLockedValue { state in
            guard var stream = state.inbound[connection] else {
                let held = state.early[connection]?.count
                if (held ?? 0) + bytes.count <= maximum, held != nil || state.early.count < Self.earlyLimit {
                    state.early[connection, default: []] += bytes
                }
                return .wait
            }
            guard !stream.answered else { return .wait }
            defer { state.inbound[connection] = stream }
            do {
                guard let request = try stream.buffer.append(bytes).first else { return .wait }
                stream.answered = true
                return .request(request, stream.peer)
            } catch {
                stream.answered = true
                return .fail(error, stream.peer)
            }
        }
        guard let listener = state.withLockedValue({ $0.listener }) else { return }
        switch next {
        case .wait:
            return
        case .fail(let error, let peer):
            handlers.onFailure(error, peer)
            listener.post(PilotIPC.close(connection: connection))
        case .request(let request, let peer):
            let writer = StreamReplyWriter { bytes in try await listener.send(bytes, on: connection) }
            Task {
                await self.handlers.onRequest(request, peer, writer)
                try? await listener.write(PilotIPC.close(connection: connection))
            }
        }
    }

    /// Closes an inbound stream that did not bring a whole request in time.
    private func expireInbound(_ connection: UInt32) {
        let (stream, listener) = state.withLockedValue { state -> (InboundStream?, PilotSession?) in
            guard let stream = state.inbound[connection], !stream.answered else { return (nil, nil) }
            state.inbound[connection] = nil
            return (stream, state.listener)
        }
        guard let stream else { return }
        handlers.onFailure(StreamTransportError.timedOut, stream.peer)
        listener?.post(PilotIPC.close(connection: connection))
    }

    // MARK: - Streams

    /// Opens a socket of its own and dials `address` on it.
    private func dial(_ address: NodeAddress, timeout: TimeAmount) async throws -> (PilotSession, UInt32) {
        guard let target = Self.pilotAddress(address) else { throw AgentError.badPilotAddress("\(address)") }
        guard state.withLockedValue({ $0.listener != nil }) else { throw PilotError.disconnected }
        askTrustIfNeeded(target.node)
        let session = try await PilotSession.connect(path: settings.socketPath, group: group)
        do {
            return (session, try await session.dial(target, port: address.port, timeout: timeout))
        } catch {
            session.close()
            throw error
        }
    }

    func sendStream(_ message: [UInt8], to address: NodeAddress, timeout: TimeAmount) async throws {
        let (session, connection) = try await dial(address, timeout: timeout)
        defer { session.close() }
        try await session.send(message, on: connection)
        // The close goes out after the data; once the daemon reports the stream closed, the
        // socket can go without taking unsent bytes with it.
        try await session.write(PilotIPC.close(connection: connection))
        await session.waitForClose(timeout: timeout)
    }

    func exchange(
        _ request: [UInt8], with address: NodeAddress, timeout: TimeAmount, maximumBytes: Int, decode: @escaping StreamDecoder
    ) async throws -> StreamMessage {
        let deadline = NIODeadline.now() + timeout
        let (session, connection) = try await dial(address, timeout: timeout)
        defer { session.close() }
        try await session.send(request, on: connection)
        var buffer = StreamMessageBuffer(maximumBytes: maximumBytes, decode: decode)
        while true {
            guard let chunk = try await session.nextChunk(timeout: deadline - .now()) else {
                throw StreamTransportError.closedEarly
            }
            if let message = try buffer.append(chunk).first { return message }
        }
    }

    func receivePages(
        _ request: [UInt8], from address: NodeAddress, idleTimeout: TimeAmount, maximumBytes: Int,
        decode: @escaping StreamDecoder, isolation: isolated (any Actor)?,
        onMessage: (StreamMessage) async throws -> Bool
    ) async throws {
        let (session, connection) = try await dial(address, timeout: idleTimeout)
        defer { session.close() }
        try await session.send(request, on: connection)
        var buffer = StreamMessageBuffer(maximumBytes: maximumBytes, decode: decode)
        while let chunk = try await session.nextChunk(timeout: idleTimeout) {
            for message in try buffer.append(chunk) where try await onMessage(message) { return }
        }
        throw StreamTransportError.closedEarly
    }

    // MARK: - Losing and finding the daemon

    /// Polls trust every 2 s and checks the daemon's health every 6 s, on the control socket
    /// (the listener's requests can wait behind a large stream write the daemon is pacing). A
    /// check the daemon does not answer in 10 s closes the socket (see `PilotSession.request`),
    /// which starts a reconnection.
    private func maintain() async {
        var round = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(2))
            round += 1
            guard let control = state.withLockedValue({ $0.control }) else { continue }
            do {
                try await trustList(on: control)
                if round % 3 == 0 {
                    _ = try await control.request(PilotIPC.Frame(.health), expecting: .healthOK, timeout: Self.requestTimeout)
                }
            } catch {
                logger.debug("Pilot daemon check failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The control socket closed (the daemon went away, or a request timed out): open it again.
    private func controlLost() {
        let start = state.withLockedValue { state -> Bool in
            state.control = nil
            guard !state.closing, !state.reopeningControl else { return false }
            state.reopeningControl = true
            return true
        }
        guard start else { return }
        logger.info("the control socket to the Pilot daemon closed: reopening", metadata: ["socket": "\(settings.socketPath)"])
        Task {
            await reopen(\.reopeningControl, isUp: { $0.control != nil }) { try await self.openControl() }
            await tagSwarm()
            try? await pollTrust()
        }
    }

    /// The listener closed (the daemon went away): the port and every inbound stream are gone;
    /// bind again, then report the recovery.
    private func listenerLost() {
        let start = state.withLockedValue { state -> Bool in
            state.listener = nil
            state.inbound = [:]
            state.early = [:]
            guard !state.closing, !state.reopeningListener else { return false }
            state.reopeningListener = true
            return true
        }
        guard start else { return }
        logger.warning("lost the Pilot daemon: reconnecting", metadata: ["socket": "\(settings.socketPath)"])
        Task {
            guard await reopen(\.reopeningListener, isUp: { $0.listener != nil }, { try await self.openListener() }) else { return }
            handlers.onRecovered(PilotError.disconnected)
        }
    }

    /// Runs `open` until it succeeds (backoff 200 ms doubling to 2 s) and the socket it opened
    /// is still up, or the transport closes; returns whether it succeeded. `flag` stays set
    /// meanwhile, so a socket lost during the attempt is reopened by this same loop.
    @discardableResult
    private func reopen(
        _ flag: WritableKeyPath<State, Bool>, isUp: @escaping @Sendable (State) -> Bool, _ open: () async throws -> Void
    ) async -> Bool {
        var delay = Duration.milliseconds(200)
        while !state.withLockedValue({ $0.closing }) {
            do {
                try await open()
                let done = state.withLockedValue { state -> Bool in
                    guard isUp(state) else { return false }
                    state[keyPath: flag] = false
                    return true
                }
                if done { return true }
            } catch {
                logger.debug("cannot reconnect to the Pilot daemon yet", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
        state.withLockedValue { $0[keyPath: flag] = false }
        return false
    }

    func simulateFailure() async {
        state.withLockedValue { $0.listener }?.close()
    }

    func close() async {
        let (control, listener) = state.withLockedValue { state in
            state.closing = true
            return (state.control, state.listener)
        }
        maintenance.withLockedValue { $0?.cancel() }
        if let listener {
            try? await listener.request(PilotIPC.unbind(port: settings.port), expecting: .unbindOK, timeout: .seconds(1))
            listener.close()
        }
        control?.close()
    }

    static func pilotAddress(_ address: NodeAddress) -> PilotIPC.Address? {
        PilotIPC.Address(bytes: address.ip)
    }
}

/// A seed for a Pilot swarm: `pilot:HOSTNAME[:PORT]` or `pilot:N:NNNN.HHHH.LLLL[:PORT]`.
public struct PilotSeed: Equatable, Sendable {
    public var hostname: String?
    public var address: PilotIPC.Address?
    public var port: UInt16

    /// - Throws: `AgentError` `bad_address` saying what is wrong.
    public init(_ text: String, defaultPort: UInt16) throws(AgentError) {
        guard text.hasPrefix("pilot:") else {
            throw AgentError(
                code: .badAddress, message: "'\(text)' is not a Pilot seed (this agent gossips over Pilot)",
                hint: "give pilot:HOSTNAME or pilot:ADDRESS, e.g. pilot:node-2 or pilot:0:0000.0000.0002")
        }
        var rest = Substring(text.dropFirst("pilot:".count))
        port = defaultPort
        // A trailing `:PORT` after an address (two colons) or after a hostname (one).
        let colons = rest.filter { $0 == ":" }.count
        if colons == 2 || (colons == 1 && PilotIPC.Address(rest) == nil), let colon = rest.lastIndex(of: ":") {
            guard let parsed = UInt16(rest[rest.index(after: colon)...]), parsed > 0 else { throw .badPilotAddress(text) }
            port = parsed
            rest = rest[..<colon]
        }
        if let address = PilotIPC.Address(rest) {
            self.address = address
        } else {
            let allowed = rest.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }
            guard !rest.isEmpty, rest.count <= 253, allowed, !rest.contains(":") else { throw .badPilotAddress(text) }
            hostname = String(rest)
        }
    }
}

extension AgentError {
    static func badPilotAddress(_ text: String) -> AgentError {
        AgentError(
            code: .badAddress, message: "'\(text)' is not a Pilot address",
            hint: "give pilot:HOSTNAME or pilot:N:NNNN.HHHH.LLLL, with :PORT if not the swarm's port (e.g. pilot:node-2, pilot:0:0000.0000.0002:7946)")
    }
}
