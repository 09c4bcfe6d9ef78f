import Logging
import Metrics
import NIOCore
import RumorCore
import RumorWire

/// Input the agent refuses and sockets that fail: counted always, logged without flooding.
extension Agent {
    func transportRecovered(after error: any Error) {
        counters.add(configuration.transport == .pilot ? "pilot_reconnected" : "udp_socket_reopened")
        logThrottle.transportRecovered(after: error, transport: configuration.transport, now: time.now, logger: logger)
    }

    /// A datagram the transport did not send (the system refused it, or its address): only it
    /// is lost, the socket stays open. Counted by reason, logged at most every 10 s per reason.
    func sendFailed(_ failure: SendFailure, to peer: NodeAddress) {
        counters.add("send_failed_\(failure.name)")
        Counter(label: "rumor_sends_failed", dimensions: [("reason", failure.name)]).increment()
        logThrottle.sendFailed(failure, to: peer, now: time.now, logger: logger)
    }

    /// For tests: fails the transport as the network would (see `GossipTransport.simulateFailure`).
    func simulateTransportFailure() async {
        await transport?.simulateFailure()
    }

    func streamFailed(_ error: Error, from peer: NodeAddress?) {
        if let wireError = error as? WireError {
            dropped(wireError, from: peer)
        } else if case .tooLarge = error as? StreamTransportError {
            dropped(WireError(.tooLarge, "a stream message over \(GossipCodec.maximumStreamBytes) bytes"), from: peer)
        } else {
            counters.add("streams_failed")
            logger.debug("stream failed", metadata: ["peer": "\(peer.map { "\($0)" } ?? "?")", "error": "\(error)"])
        }
    }

    /// A message for `peer` larger than any stream may carry: refused here, before the peer would
    /// refuse it, and logged (once per peer) with its size, so a state too large to send in one
    /// piece is seen in the log and not only in a counter.
    func refusedToSend(bytes: Int, to peer: NodeAddress) {
        counters.add("replication_too_large_to_send")
        logThrottle.tooLargeToSend(bytes: bytes, limit: GossipCodec.maximumStreamBytes, to: "\(peer)", logger: logger)
    }

    func dropped(_ error: Error, from peer: NodeAddress?) {
        let reason = (error as? WireError).map(dropReason) ?? "malformed"
        counters.add("dropped_\(reason)")
        Counter(label: "rumor_packets_dropped", dimensions: [("reason", reason)]).increment()
        logThrottle.dropped(error, reason: reason, from: peer, swarm: configuration.swarm, logger: logger)
    }
}

/// Keyring mismatches between peers, seen from both ends of a stream.
extension Agent {
    /// The answer to a stream whose request could not be read for a keyring mismatch (no key
    /// decrypts it, it is encrypted and this node has no keyring, or it is plaintext and this
    /// node requires encryption): an error response in this node's own encryption, as memberlist
    /// answers a stream it could not read. The peer then learns that this node answered and why,
    /// instead of seeing the stream close. nil for other failures (the stream just closes).
    nonisolated static func failureReply(to error: any Error, codec: GossipCodec) -> [UInt8]? {
        guard let error = error as? WireError else { return nil }
        switch error.code {
        case .decryptionFailed, .encrypted, .notEncrypted: return codec.encode(StreamReply.error("\(error)"))
        default: return nil
        }
    }

    /// A push-pull answer from `peer` (a seed when `joining`) that this node could not read for
    /// a keyring mismatch: logged with what to do, at most once a minute per peer host.
    func answerUnreadable(_ error: WireError, from peer: NodeAddress, joining: Bool) {
        let who = joining ? "seed" : "peer"
        let (message, hint): (String, String)
        switch error.code {
        case .decryptionFailed:
            message = "\(who) \(peer) answered, but its messages could not be decrypted with this node's keyring (wrong or missing key)"
            hint = "give this node the swarm's key: --encrypt KEY with a key the others hold (`rumor keys list` on a member lists them), or their keyring file"
        case .encrypted:
            message = "\(who) \(peer) answered with encrypted messages, but this node has no keyring (missing key)"
            hint = "start this node with --encrypt KEY, the swarm's key (`rumor keys list` on a member lists them)"
        case .notEncrypted:
            message = "\(who) \(peer) answered in plaintext, but this node accepts only encrypted gossip (the \(who) has no key)"
            hint = "give the \(who) the swarm's key, or move the swarm to encryption step by step (--encrypt-verify-incoming false first)"
        default:
            return
        }
        logThrottle.peerUnreadable(message: message, hint: hint, peer: peer, now: time.now, logger: logger)
    }
}
