/// Serf's layer on the node: what `SerfLayer` decides, as effects; the driver encodes the
/// messages and hands the bytes back to be gossiped with memberlist's own broadcasts.
extension Node {
    func effects(of directives: [SerfLayer.Directive]) -> [NodeEffect] {
        directives.map { directive in
            switch directive {
            case .broadcast(let message): .serfBroadcast(message)
            case .deliver(let event): .userEvent(event)
            }
        }
    }

    /// Queues an encoded Serf message (a `serfBroadcast` effect's) for gossip, as Serf queues
    /// its messages: piggybacked on packets, each sent `retransmitMultiplier × log10(N + 1)` times.
    public mutating func queueSerfBroadcast(_ bytes: [UInt8], at time: NodeTime) -> [NodeEffect] {
        effects(of: membership.queueBroadcast(.user(bytes), now: time.now), at: time)
    }

    /// Sends a user event to every node (Serf agents included); it is delivered here too.
    /// - Throws: `NodeError` `eventTooLarge` past Serf's 512 bytes of name and payload, or `left`.
    public mutating func sendEvent(name: String, payload: [UInt8], coalesce: Bool) throws(NodeError) -> (SerfUserEvent, [NodeEffect]) {
        guard !membership.hasLeft else {
            throw NodeError(.left, "this node has left the swarm", hint: "restart the agent to rejoin")
        }
        let (event, directives) = try serf.sendEvent(name: name, payload: payload, coalesce: coalesce)
        var out = effects(of: directives)
        // As writes are: straight to every member in a swarm up to the direct-push limit, so
        // the event reaches all in one hop (gossip still carries it, to repair losses).
        let others = membership.members.values.filter { $0.name != self.name && $0.state == .alive }
        if !others.isEmpty, others.count <= replication.settings.directPushLimit {
            out.append(.serfDirect(.userEvent(event), to: others.map(\.address).sorted()))
        }
        return (event, out)
    }
}
