import Logging
import Metrics
import NIOCore
import RumorCore
import RumorWire

/// The agent's own counters (sockets, decoding, storage), reported by `rumor info` beside the
/// node's protocol counters.
struct AgentCounters: Sendable {
    private(set) var values: [String: UInt64] = [:]

    mutating func add(_ name: String, _ amount: UInt64 = 1) {
        values[name, default: 0] &+= amount
    }
}

/// The counter suffix for a dropped packet or stream: `dropped_<reason>`.
func dropReason(_ error: WireError) -> String {
    if case .labelMismatch = error.code { return "label" }
    return "\(error.code)"
}

/// Keeps noisy conditions from flooding the log: a warning once per peer and reason for
/// traffic that will keep coming (a foreign swarm, a wrong key), and at most one line per 10 s
/// for UDP socket rebinds and for each reason a datagram was not sent. Counters keep counting
/// everything.
struct LogThrottle: Sendable {
    private var warned: Set<String> = []
    private var recoveryLogged: (at: Instant, since: Int)?
    /// Per peer host whose answers this node cannot read (a keyring mismatch): when it was last logged.
    private var unreadableLogged: [String: Instant] = [:]
    /// Per send-failure reason: when it was last logged, and failures since.
    private var sendFailuresLogged: [String: (at: Instant, since: Int)] = [:]

    private static let warnings = [
        "label": "ignoring packets from another swarm",
        "decrypt": "ignoring traffic no installed key decrypts (wrong key?)",
        "not_encrypted": "ignoring unencrypted traffic (this swarm is encrypted)",
        "encrypted": "ignoring encrypted traffic (this node has no keyring; start it with --encrypt)",
        "too_large": "refusing a message over the size limit (a replicated state too large for one message cannot reach this node that way)",
    ]

    /// Logs dropped input: a warning once per host for the reasons above, debug otherwise.
    mutating func dropped(_ error: Error, reason: String, from peer: NodeAddress?, swarm: String, logger: Logger) {
        let peerText = peer.map { "\($0)" } ?? "?"
        guard let warning = Self.warnings[reason] else {
            logger.debug("dropped malformed input", metadata: ["peer": "\(peerText)", "error": "\(error)"])
            return
        }
        let host = peer?.host ?? peerText
        if warned.insert("\(reason) \(host)").inserted {
            logger.warning("\(warning)", metadata: ["peer": "\(peerText)", "swarm": "\(swarm)", "error": "\(error)"])
        }
    }

    /// Logs a message not sent for its size: once per peer.
    mutating func tooLargeToSend(bytes: Int, limit: Int, to peer: String, logger: Logger) {
        guard warned.insert("too_large_to_send \(peer)").inserted else { return }
        logger.warning(
            "not sending a replication message larger than a stream may carry: the peer cannot catch up this way",
            metadata: ["peer": "\(peer)", "bytes": "\(bytes)", "limit": "\(limit)"])
    }

    /// Logs a datagram not sent: at most one line per reason every 10 s, with the count since.
    mutating func sendFailed(_ failure: SendFailure, to peer: NodeAddress, now: Instant, logger: Logger) {
        if let logged = sendFailuresLogged[failure.name], now - logged.at < .seconds(10) {
            sendFailuresLogged[failure.name]?.since += 1
            return
        }
        let since = (sendFailuresLogged[failure.name]?.since ?? 0) + 1
        sendFailuresLogged[failure.name] = (now, 0)
        logger.warning(
            "a datagram was not sent; only it is lost, the gossip socket stays open",
            metadata: ["peer": "\(peer)", "reason": "\(failure)", "failures_since_last_line": "\(since)"])
    }

    /// Logs a peer whose answers cannot be used (a wrong or missing key, an error answered): at
    /// most once a minute per host.
    mutating func peerUnreadable(message: String, hint: String, peer: NodeAddress, now: Instant, logger: Logger) {
        if let logged = unreadableLogged[peer.host], now - logged < .seconds(60) { return }
        if unreadableLogged.count >= 1024 { unreadableLogged = unreadableLogged.filter { now - $0.value < .seconds(60) } }
        unreadableLogged[peer.host] = now
        logger.warning("\(message)", metadata: ["peer": "\(peer)", "hint": "\(hint)"])
    }

    mutating func transportRecovered(after error: any Error, transport: TransportKind, now: Instant, logger: Logger) {
        if let logged = recoveryLogged, now - logged.at < .seconds(10) {
            recoveryLogged?.since += 1
            return
        }
        let message: Logger.Message =
            switch transport {
            case .udp: "the gossip UDP socket broke and was bound again on the same port"
            case .pilot: "reconnected to the Pilot daemon after losing it (restarted?): port bound again, gossip resumes"
            }
        logger.warning(
            message, metadata: ["error": "\(error)", "times_since_last_logged": "\((recoveryLogged?.since ?? 0) + 1)"])
        recoveryLogged = (now, 0)
    }
}
