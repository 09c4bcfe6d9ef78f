import NIOCore
import RumorCore
import RumorWire

/// Where gossip travels: datagrams and one-request streams between nodes, addressed by
/// `NodeAddress`. UDP/TCP (`SocketTransport`) and the Pilot overlay (`PilotTransport`) implement
/// it; the agent above knows only this.
protocol GossipTransport: Sendable {
    /// The address this node is reached at as far as the transport knows it: the bound port
    /// for UDP/TCP (the host comes from the configuration), the whole address on Pilot.
    var boundAddress: NodeAddress { get async }

    /// Sends one datagram, without waiting; lost when the peer cannot be reached.
    func send(_ bytes: [UInt8], to address: NodeAddress)

    /// Opens a stream to `address`, writes `message` and closes, expecting no answer.
    func sendStream(_ message: [UInt8], to address: NodeAddress, timeout: TimeAmount) async throws

    /// Opens a stream to `address`, sends `request`, and returns the first whole message that
    /// comes back. Throws on connection failure, malformed answer, or when `timeout` passes.
    func exchange(
        _ request: [UInt8], with address: NodeAddress, timeout: TimeAmount, maximumBytes: Int, decode: @escaping StreamDecoder
    ) async throws -> StreamMessage

    /// Opens a stream to `address`, sends `request`, and hands each whole message that comes
    /// back to `onMessage` until it returns true, reading the next only once it has returned
    /// (backpressure). Throws when the stream fails or closes first, a message is malformed or
    /// too large, or nothing arrives for `idleTimeout`.
    func receivePages(
        _ request: [UInt8], from address: NodeAddress, idleTimeout: TimeAmount, maximumBytes: Int,
        decode: @escaping StreamDecoder, isolation: isolated (any Actor)?,
        onMessage: (StreamMessage) async throws -> Bool
    ) async throws

    /// Turns `text` (a seed given to `--join` or `rumor join`) into the addresses this transport
    /// can reach, doing whatever that takes (DNS, which can give several; a Pilot lookup and
    /// trust handshake).
    /// - Throws: `AgentError` with a code and hint when it cannot.
    func resolveSeed(_ text: String) async throws -> [NodeAddress]

    /// For tests: fails the transport as the network would (the UDP socket closing on a fatal
    /// error; the Pilot daemon's sockets dropping), so recovery can be checked.
    func simulateFailure() async

    func close() async
}

/// What a transport hands to the agent: everything that arrives, and what went wrong.
struct TransportHandlers: Sendable {
    /// A datagram. Runs on a transport thread; must not block.
    var onPacket: @Sendable ([UInt8], NodeAddress) -> Void
    /// A request that came on a stream; the agent answers through the writer (once, or page
    /// after page), then the stream closes.
    var onRequest: @Sendable (StreamMessage, NodeAddress?, StreamReplyWriter) async -> Void
    /// A stream that failed before a whole request arrived.
    var onFailure: @Sendable (any Error, NodeAddress?) -> Void
    /// The transport lost its network and got it back (UDP socket bound again, Pilot daemon
    /// reconnected); `error` says what was lost.
    var onRecovered: @Sendable (_ error: any Error) -> Void
}

/// Writes an answer on a stream; each write returns once the bytes are handed to the
/// transport, so a writer that awaits it never gets ahead of a slow reader by more than the
/// buffers in between (the backpressure of a catch-up).
struct StreamReplyWriter: Sendable {
    let write: @Sendable ([UInt8]) async throws -> Void
}
