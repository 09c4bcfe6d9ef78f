#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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

    /// Sends one datagram, without waiting; lost when the peer cannot be reached. A datagram the
    /// transport or the system refuses is dropped, alone, and said so: the transport stays open.
    @discardableResult
    func send(_ bytes: [UInt8], to address: NodeAddress) -> SendOutcome

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
    /// What to answer on a stream that failed before a whole request arrived, before closing
    /// it (nil: nothing). Runs on a transport thread; must not block.
    var replyToFailure: @Sendable (any Error) -> [UInt8]? = { _ in nil }
}

/// Writes an answer on a stream; each write returns once the bytes are handed to the
/// transport, so a writer that awaits it never gets ahead of a slow reader by more than the
/// buffers in between (the backpressure of a catch-up).
struct StreamReplyWriter: Sendable {
    let write: @Sendable ([UInt8]) async throws -> Void
}

/// What became of one datagram handed to the transport.
enum SendOutcome: Sendable, Hashable {
    /// Handed to the system.
    case sent
    /// The send buffer was full: queued, sent once the socket is writable.
    case queued
    case dropped(SendFailure)
}

/// Why a datagram was not sent; the socket stays open unless `broken`.
enum SendFailure: Sendable, Hashable, CustomStringConvertible {
    /// The system refused this one datagram (the errno: EINVAL, EACCES, EPERM, ENETUNREACH…).
    case refused(CInt)
    /// The descriptor is gone (EBADF): the socket is being bound again.
    case broken(CInt)
    /// The socket is being bound again, or closed.
    case closed
    /// The address is not one this transport sends to (`AddressRule`).
    case address(String)

    /// A short name for counters: the errno's symbol (`einval`), `closed`, `address_<problem>`.
    var name: String {
        switch self {
        case .refused(let code), .broken(let code): Self.errnoName(code)
        case .closed: "closed"
        case .address(let problem): "address_\(problem)"
        }
    }

    var description: String {
        switch self {
        case .refused(let code): "\(Self.errnoName(code).uppercased()): \(String(cString: strerror(code)))"
        case .broken(let code): "the socket broke: \(Self.errnoName(code).uppercased()): \(String(cString: strerror(code)))"
        case .closed: "the socket is being bound again"
        case .address(let problem): "the address is \(problem)"
        }
    }

    static func errnoName(_ code: CInt) -> String {
        switch code {
        case EINVAL: "einval"
        case EACCES: "eacces"
        case EPERM: "eperm"
        case ENETUNREACH: "enetunreach"
        case EHOSTUNREACH: "ehostunreach"
        case EADDRNOTAVAIL: "eaddrnotavail"
        case EAFNOSUPPORT: "eafnosupport"
        case EMSGSIZE: "emsgsize"
        case ENOBUFS: "enobufs"
        case ECONNREFUSED: "econnrefused"
        case EBADF: "ebadf"
        case ENOTSOCK: "enotsock"
        default: "errno_\(code)"
        }
    }
}
