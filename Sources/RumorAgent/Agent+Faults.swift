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
