import Logging
import NIOCore
import RumorCore
import RumorWire

/// The network effects that run on their own: datagrams (a one-way stream when a frame is too
/// large for a packet), push-pull exchanges and fallback pings, each reported to the node.
extension Agent {
    func send(_ datagram: Datagram, to address: NodeAddress) {
        guard let transport, !stopped else { return }
        switch codec.encode(withValues(datagram)) {
        case .packet(let bytes):
            switch transport.send(bytes, to: address) {
            case .sent, .queued:
                counters.add("packets_sent")
                counters.add("bytes_sent", UInt64(bytes.count))
            case .dropped(let failure):
                sendFailed(failure, to: address)
            }
        case .stream(let message):
            guard message.count <= GossipCodec.maximumStreamBytes else {
                refusedToSend(bytes: message.count, to: address)
                return
            }
            let timeout = TimeAmount.nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped)
            Task {
                do {
                    try await transport.sendStream(message, to: address, timeout: timeout)
                } catch {
                    self.countSendFailure(to: address, error: error)
                }
            }
        }
    }

    private func countSendFailure(to address: NodeAddress, error: any Error) {
        counters.add("replication_send_failed")
        logger.debug("replication stream failed", metadata: ["peer": "\(address)", "error": "\(error)"])
    }

    /// Runs one push-pull exchange and reports it to the node.
    func pushPull(_ state: PushPull, with address: NodeAddress, join: CommandID?) async {
        var state = state
        state.userState = serfUserState
        let started = ContinuousClock.now
        defer { metrics.pushPullSeconds.record(ContinuousClock.now - started) }
        var reply: PushPull?
        if let transport {
            let codec = self.codec.streams
            do {
                let answer = try await transport.exchange(
                    codec.encode(.pushPull(state)), with: address,
                    timeout: .nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped),
                    maximumBytes: GossipCodec.maximumStreamBytes, decode: { try codec.decode($0) })
                switch answer {
                case .pushPull(let remote): reply = remote
                case .error(let text):
                    logThrottle.peerUnreadable(
                        message: "\(join != nil ? "seed" : "peer") \(address) answered the push-pull with an error: \(text)",
                        hint: "see that node's log", peer: address, now: time.now, logger: logger)
                default: break
                }
            } catch {
                if let wireError = error as? WireError {
                    answerUnreadable(wireError, from: address, joining: join != nil)
                    dropped(wireError, from: address)
                }
                logger.debug("push-pull failed", metadata: ["peer": "\(address)", "error": "\(error)"])
            }
        }
        execute(node.pushPullFinished(reply, with: address, join: join, at: time))
        if let reply { mergeSerfState(reply.userState, joining: join != nil, from: address) }
    }

    /// Serf's push-pull state, encoded for a push-pull's user state (empty when not speaking Serf).
    var serfUserState: [UInt8] {
        node.serfPushPullState.map { SerfCodec.encode(.pushPull($0)) } ?? []
    }

    /// Merges the Serf state a peer sent in a push-pull's user state (missed events, intents).
    func mergeSerfState(_ bytes: [UInt8], joining: Bool, from peer: NodeAddress) {
        guard !bytes.isEmpty else { return }
        do {
            guard case .pushPull(let state) = try SerfCodec.decode(bytes) else {
                throw WireError(.malformed, "push-pull user state that is not Serf's state (type \(bytes[0]))")
            }
            execute(node.mergeSerfState(state, joining: joining))
        } catch {
            dropped(error, from: peer)
        }
    }

    func streamPing(_ ping: Ping, to address: NodeAddress, deadline: Instant) async {
        guard let transport else { return }
        let remaining = deadline - time.now
        guard remaining > .zero else { return }
        let codec = self.codec.streams
        var contacted = false
        if let answer = try? await transport.exchange(
            codec.encode(.ping(ping)), with: address, timeout: .nanoseconds(remaining.nanosecondsClamped),
            maximumBytes: 1 << 16, decode: { try codec.decode($0) }),
            case .ack(let ack) = answer
        {
            contacted = ack.sequenceNumber == ping.sequenceNumber
        }
        node.streamPingFinished(sequence: ping.sequenceNumber, contacted: contacted, at: time)
    }
}
