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

    /// A Serf message from `sender`: queries and their answers go to `serf.queries` (they need
    /// this node's tags, address and clock), relays are passed on, the rest to `serf`. A query
    /// whose reply address, or a relay whose destination, `AddressRule` refuses is dropped.
    mutating func receiveSerf(_ message: SerfMessage, from sender: NodeAddress, at time: NodeTime) -> [NodeEffect] {
        switch message {
        case .query(let query):
            let replyTo = NodeAddress(ip: query.address, port: query.port)
            if let problem = membership.addressRule.problem(with: replyTo) {
                return refusedAddress(AddressRefusal(address: replyTo, problem: problem, field: "Serf query reply address", sender: sender), at: time)
            }
            return effects(of: serf.queries.receive(query, local: queryView, now: time.now), at: time)
        case .queryResponse(let response):
            return effects(of: serf.queries.receive(response, now: time.now), at: time)
        case .relay(let relay):
            if let problem = membership.addressRule.problem(with: relay.destination) {
                return refusedAddress(
                    AddressRefusal(address: relay.destination, problem: problem, field: "Serf relay destination", sender: sender), at: time)
            }
            // As Serf: passed on unread, once (relayed answers are never relayed again).
            return [.serfForward(relay.message, to: relay.destination)]
        case .join, .leave, .userEvent, .pushPull:
            return effects(of: serf.receive(message))
        }
    }

    /// Serf's push-pull state to send with a membership push-pull (nil when not speaking Serf).
    public var serfPushPullState: SerfPushPull? {
        guard speaksSerf else { return nil }
        return serf.pushPullState(leftMembers: membership.members.values.filter { $0.state == .left }.map(\.name).sorted())
    }

    /// A peer's Serf push-pull state, from the user state of a push-pull; `joining` when it
    /// answered this node's join (old events are then not replayed, as Serf's default).
    public mutating func mergeSerfState(_ state: SerfPushPull, joining: Bool) -> [NodeEffect] {
        guard speaksSerf else { return [] }
        return effects(of: serf.merge(state, joining: joining))
    }

    /// This node as a query sees it: its name, gossip address and tags.
    private var queryView: (name: String, address: NodeAddress, tags: [String: String]) {
        (name, membership.localMember.address, tags)
    }

    mutating func effects(of directives: [SerfQueries.Directive], at time: NodeTime) -> [NodeEffect] {
        var out: [NodeEffect] = []
        for directive in directives {
            switch directive {
            case .respond(let response, let address, let querier, let relayFactor):
                if address == membership.localMember.address {
                    // An answer to this node's own query: no need for the network.
                    out += effects(of: serf.queries.receive(response, now: time.now), at: time)
                    continue
                }
                // Beyond Serf: a response past Serf's 1024 bytes to a Rumor querier goes in a
                // Rumor frame (over a stream when large); a Serf querier cannot take it.
                if response.payload.count + response.from.utf8.count > SerfQueries.sizeLimit - 128,
                    let querierNode = membership.members[querier], Self.replicates(querierNode)
                {
                    out.append(.send(.replication(.queryResponse(response)), to: address))
                    continue
                }
                out.append(.serfDirect(.queryResponse(response), to: [address]))
                // Serf's relays: copies through random live members (memberlist protocol ≥ 5),
                // only when the swarm has more members than copies asked for.
                if relayFactor > 0, membership.members.count > Int(relayFactor) {
                    let relays = membership.members.values
                        .filter { $0.name != name && $0.state == .alive && $0.versions.protocolMax >= 5 }
                        .map(\.address).sorted()
                    let chosen = serf.queries.pick(Int(relayFactor), of: relays)
                    if !chosen.isEmpty {
                        out.append(.serfRelay(.queryResponse(response), destination: address, destinationName: querier, via: chosen))
                    }
                }
            case .deliver(let query):
                out.append(.query(query))
            case .deliverInternal(let query):
                out.append(.keyQuery(query))
            case .answered(let key, let response):
                out.append(.queryAnswered(key, response))
            case .broadcast(let query):
                out.append(.serfBroadcast(.query(query)))
            }
        }
        return out
    }

    /// Queues an encoded Serf message (a `serfBroadcast` effect's) for gossip, as Serf queues
    /// its messages: piggybacked on packets, each sent `retransmitMultiplier × log10(N + 1)` times.
    public mutating func queueSerfBroadcast(_ bytes: [UInt8], at time: NodeTime) -> [NodeEffect] {
        effects(of: membership.queueBroadcast(.user(bytes), now: time.now), at: time)
    }

    /// Live members other than this node, when few enough to reach each directly (as writes are):
    /// a user event or query then reaches all in one hop, and gossip repairs losses.
    private var directPushTargets: [NodeAddress] {
        let others = membership.members.values.filter { $0.name != self.name && $0.state == .alive }
        guard others.count <= replication.settings.directPushLimit else { return [] }
        return others.map(\.address).sorted()
    }

    /// Sends a user event: to every node (Serf agents included) by Serf's gossip, delivered
    /// here too; or, to the Rumor nodes named in `targets`, or past Serf's 512 bytes, straight to
    /// those nodes (over a stream when large), never gossiped.
    /// - Throws: `NodeError` `eventTooLarge` past the limits, `unknownNode` for a target that is
    ///   not a live Rumor member, or `left`.
    public mutating func sendEvent(name: String, payload: [UInt8], coalesce: Bool, targets: [String]? = nil)
        throws(NodeError) -> (SerfUserEvent, [NodeEffect])
    {
        try checkNotLeft()
        // Without Serf's layer (--protocol memberlist) events go straight to the Rumor nodes too.
        if targets != nil || !speaksSerf || name.utf8.count + payload.count > SerfLayer.eventSizeLimit {
            return try sendDirectEvent(name: name, payload: payload, coalesce: coalesce, targets: targets)
        }
        let (event, directives) = try serf.sendEvent(name: name, payload: payload, coalesce: coalesce)
        var out = effects(of: directives)
        let targets = directPushTargets
        if !targets.isEmpty { out.append(.serfDirect(.userEvent(event), to: targets)) }
        return (event, out)
    }

    private mutating func sendDirectEvent(name: String, payload: [UInt8], coalesce: Bool, targets: [String]?)
        throws(NodeError) -> (SerfUserEvent, [NodeEffect])
    {
        let rumorNodes = replicationMembers()
        var chosen = rumorNodes
        var includesSelf = targets == nil
        if let targets {
            let byName = Dictionary(rumorNodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            chosen = []
            for target in Set(targets).sorted() {
                if target == self.name {
                    includesSelf = true
                } else if let member = byName[target] {
                    chosen.append(member)
                } else {
                    throw NodeError(
                        .unknownNode, "'\(target)' is not a live Rumor member",
                        hint: "list them with `rumor members --status alive --tag rumor.kv=1` (Serf agents get only events to everyone, up to 512 bytes)")
                }
            }
        }
        let (event, id) = try serf.sendDirectEvent(name: name, payload: payload, coalesce: coalesce)
        counters.add(.directEventsSent)
        var out = chosen.map { NodeEffect.send(.replication(.event(from: self.name, id: id, event)), to: $0.address) }
        if includesSelf { out.append(.userEvent(event)) }
        if targets == nil, speaksSerf {
            let others = membership.members.values.filter { $0.name != self.name && $0.state == .alive && !Self.replicates($0) }.count
            if others > 0 {
                out.append(.log(NodeLog(
                    .warning, "event past Serf's 512 bytes sent to the Rumor nodes only; Serf agents do not get it",
                    ["event": name, "bytes": "\(name.utf8.count + payload.count)", "serf_agents": "\(others)"])))
            }
        }
        return (event, out)
    }

    /// A direct event from another Rumor node.
    mutating func receiveDirectEvent(_ event: SerfUserEvent, from sender: String, id: UInt64) -> [NodeEffect] {
        effects(of: serf.receiveDirect(event, from: sender, id: id))
    }

    /// Serf's default query timeout: gossip interval × 16 × ceil(log10(N + 1)), N the live members.
    public var defaultQueryTimeout: Duration {
        let alive = membership.members.values.filter { $0.state == .alive }.count
        var scale = 1
        var bound = 10
        while alive + 1 > bound {
            scale += 1
            bound *= 10
        }
        return membership.settings.gossipInterval * (SerfQueries.timeoutMultiplier * scale)
    }

    /// Sends a query to every node (Serf agents included) and collects the answers until its
    /// timeout (`queryAnswered` effects, then `queryEnded`). This node handles it too.
    /// - Throws: `NodeError` `left`.
    public mutating func sendQuery(
        name: String, payload: [UInt8], filters: [SerfFilter], wantsAck: Bool, relayFactor: UInt8, timeout: Duration?,
        at time: NodeTime
    ) throws(NodeError) -> (SerfQuery, [NodeEffect]) {
        try checkNotLeft()
        guard speaksSerf else {
            throw NodeError(
                .needsSerf, "queries are Serf's, and this node speaks plain memberlist (--protocol memberlist)",
                hint: "run the swarm with --protocol serf (the default) to use queries")
        }
        let timeout = timeout ?? defaultQueryTimeout
        let (query, directives) = serf.queries.start(
            name: name, payload: payload, filters: filters, wantsAck: wantsAck, relayFactor: relayFactor, timeout: timeout,
            from: queryView, now: time.now)
        var out = effects(of: directives, at: time)
        out.append(.startTimer(.queryDeadline(QueryID(query)), after: timeout))
        let targets = directPushTargets
        if !targets.isEmpty { out.append(.serfDirect(.query(query), to: targets)) }
        return (query, out)
    }

    /// Answers a query this node received (a handler's output, a key query's result), once and
    /// before its deadline; a refusal is logged.
    public mutating func respond(to query: QueryID, payload: [UInt8], at time: NodeTime) -> [NodeEffect] {
        do {
            let directive = try serf.queries.respond(to: query, payload: payload, from: name, now: time.now)
            return effects(of: [directive], at: time)
        } catch {
            return [.log(NodeLog(.warning, "query response not sent: \(error)", ["query": "\(query)"]))]
        }
    }

    private func checkNotLeft() throws(NodeError) {
        guard !membership.hasLeft else {
            throw NodeError(.left, "this node has left the swarm", hint: "restart the agent to rejoin")
        }
    }
}
