extension Node {
    // MARK: - Network input

    /// A datagram from `sender` (the peer's gossip socket), decoded.
    public mutating func receive(_ messages: [NodeMessage], from sender: NodeAddress, at time: NodeTime) -> [NodeEffect] {
        // Answers go to the sender when a message names no reply address.
        if let problem = membership.addressRule.problem(with: sender) {
            return refusedAddress(AddressRefusal(address: sender, problem: problem, field: "datagram sender", sender: sender), at: time)
        }
        var out: [NodeEffect] = []
        for message in messages {
            switch message {
            case .membership(let message):
                out += effects(of: membership.receive(message, from: sender, now: time.now), at: time)
            case .replication(let frame):
                out += receive(frame, from: sender, viaStream: false, at: time)
            case .serf(let message):
                guard speaksSerf else { continue }
                out += receiveSerf(message, from: sender, at: time)
            }
        }
        return out
    }

    /// A request on a stream from `peer` (its client socket); returns the reply, if any.
    public mutating func answer(_ request: StreamRequest, from peer: NodeAddress, at time: NodeTime)
        -> (reply: StreamReply?, effects: [NodeEffect])
    {
        switch request {
        case .pushPull(let remote):
            guard pushPullLimiter.allow(peer.ip, now: time.now) else {
                let burst = local.limits.pushPullBurst, rate = local.limits.pushPullPerSecond
                guard remote.join else {
                    let refusal = refused(
                        .rateLimitedPushPull, "refusing a push-pull: its host is over the rate limit", peer: peer,
                        limit: "\(burst) at once, \(rate)/s per host")
                    return (nil, refusal)
                }
                // A join past the limit (many agents on one host joining at once) is answered
                // with a sample, which costs this node little; the joiner fetches the rest from
                // the members in it.
                var out = refused(
                    .rateLimitedPushPull, "answering a join with a sample: its host is over the push-pull rate limit",
                    peer: peer, limit: "\(burst) at once, \(rate)/s per host")
                let (reply, directives) = membership.receivePushPull(remote, from: peer, now: time.now, sampled: true)
                out += effects(of: directives, at: time)
                return (.pushPull(reply), out)
            }
            let (reply, directives) = membership.receivePushPull(remote, from: peer, now: time.now)
            return (.pushPull(reply), effects(of: directives, at: time))
        case .ping(let ping):
            guard ping.target.isEmpty || ping.target == name else {
                return (.error("ping for \(ping.target) reached \(name)"), [])
            }
            return (.ack(Ack(sequenceNumber: ping.sequenceNumber)), [])
        case .replication(let frame):
            return (nil, receive(frame, from: peer, viaStream: true, at: time))
        case .user(let payload):
            return (nil, effects(of: membership.receive(.user(payload), from: peer, now: time.now), at: time))
        }
    }

    /// A push-pull exchange the node asked for ended: `reply` is the peer's state, nil when the
    /// exchange failed.
    public mutating func pushPullFinished(
        _ reply: PushPull?, with peer: NodeAddress, join command: CommandID?, at time: NodeTime
    ) -> [NodeEffect] {
        var out: [NodeEffect] = []
        if let reply {
            counters.add(.pushPullCompleted)
            out += effects(of: membership.receivePushPullReply(reply, from: peer, now: time.now), at: time)
        } else {
            counters.add(.pushPullFailed)
        }
        if let command {
            out += joinAttemptEnded(command, contacted: reply != nil, at: time)
        }
        return out
    }

    /// A fallback stream ping ended.
    public mutating func streamPingFinished(sequence: UInt32, contacted: Bool, at time: NodeTime) {
        membership.streamPingFinished(sequence: sequence, contacted: contacted, now: time.now)
    }

    /// Counts a request refused by a rate limit and logs it: the 1st, 2nd, 4th, 8th… refusal of
    /// its kind, so a flood is visible in the log without flooding it.
    mutating func refused(_ counter: NodeCounter, _ message: String, peer: NodeAddress, limit: String) -> [NodeEffect] {
        guard counters.addPassingPowerOfTwo(counter) else { return [] }
        return [.log(NodeLog(.warning, message, ["peer": "\(peer)", "limit": limit, "refused_so_far": "\(counters[counter])"]))]
    }

    /// Counts a message dropped for an address it named (`AddressRule`) and logs it, paced
    /// (`LogPace`): the first at once, then at most one line per 10 s with the count since.
    mutating func refusedAddress(_ refusal: AddressRefusal, at time: NodeTime) -> [NodeEffect] {
        counters.add(.addressesRefused)
        guard let since = addressRefusalLog.note(now: time.now) else { return [] }
        return [
            .log(
                NodeLog(
                    .warning, "dropped a message naming an address this node may not send to",
                    [
                        "field": refusal.field, "address": "\(refusal.address)", "problem": "\(refusal.problem)",
                        "peer": "\(refusal.sender)", "refused_since_last_line": "\(since)",
                        "refused_total": "\(counters[.addressesRefused])",
                    ]))
        ]
    }

    // MARK: - Timers

    public mutating func timerFired(_ timer: NodeTimer, at time: NodeTime) -> [NodeEffect] {
        switch timer {
        case .membership(let timer):
            return effects(of: membership.timerFired(timer, now: time.now), at: time)
        case .antiEntropy:
            let peers = replicationPeers()
            return updateClockFence(at: time)
                + effects(
                    of: replication.antiEntropyTimerFired(
                        peers: peers, wallMilliseconds: time.wallMilliseconds, roundTrips: membership.roundTrips),
                    at: time)
        case .pullRetry:
            // Usually the pull was answered: no retry, and no peer list to build.
            guard replication.pullRetryPending else { return [] }
            let peers = replicationPeers()
            return effects(of: replication.pullRetryTimerFired(peers: peers, roundTrips: membership.roundTrips), at: time)
        case .relayRetry:
            let peers = replicationPeers()
            return effects(of: replication.relayTimerFired(peers: peers, now: time.now, roundTrips: membership.roundTrips), at: time)
        case .replicaWaits:
            replicaWaitTimerArmed = false
            var out = checkReplicaWaits(repairing: true, at: time)
            if !replicaWaits.isEmpty {
                replicaWaitTimerArmed = true
                out.append(.startTimer(.replicaWaits, after: replicaRepairInterval))
            }
            return out
        case .leaveTimeout:
            return completeLeave()
        case .leaveAfterIntent:
            guard !membership.hasLeft else { return [] }
            return effects(of: membership.leave(now: time.now), at: time)
        case .save:
            saveTimerArmed = false
            return flushSaves()
        case .joinFollowUp:
            // Two exchanges, one and three delays after the join: the second catches those who
            // joined during the first (a join storm lasts a moment).
            joinFollowUps += 1
            var out = effects(of: membership.followUpJoin(excluding: lastJoinSeeds, now: time.now), at: time)
            if joinFollowUps == 1 { out.append(.startTimer(.joinFollowUp, after: membership.settings.joinFollowUpDelay * 2)) }
            return out
        case .joinRetry:
            // Stale once a join has succeeded since it was armed.
            guard joinRetryArmed, !membership.hasLeft else { return [] }
            joinRetryArmed = false
            return [.retryJoin]
        case .queryDeadline(let query):
            return serf.queries.end(query) ? [.queryEnded(query)] : []
        case .readyTimeout:
            return readyTimerFired(at: time)
        }
    }

    // MARK: - Membership

    /// The node's part of membership: what the machine asked for, plus member events (ephemeral
    /// values, replication peers, logs), conflicts and the end of a leave.
    mutating func effects(of directives: [MembershipDirective], at time: NodeTime) -> [NodeEffect] {
        var out: [NodeEffect] = []
        out.reserveCapacity(directives.count)
        for directive in directives {
            switch directive {
            case .send(let address, let messages, let checksum):
                out.append(.send(.membership(messages, checksum: checksum), to: address))
            case .startTimer(let timer, let delay):
                out.append(.startTimer(.membership(timer), after: delay))
            case .pushPull(let address, let state):
                out.append(.pushPull(state, to: address, join: nil))
            case .streamPing(let address, let ping, let deadline):
                out.append(.streamPing(ping, to: address, deadline: deadline))
            case .deliver:
                counters.add(.userMessagesReceived)
            case .event(let event):
                out += report(event, at: time)
            case .conflict(let existing, let claimed):
                counters.add(.nameConflicts)
                out.append(
                    .log(
                        NodeLog(
                            .warning, "name conflict: another node claims a known name",
                            [
                                "name": existing.name, "known": "\(existing.address)", "claimed": "\(claimed.address)",
                            ])))
            case .leaveCompleted:
                out += completeLeave()
            case .probeAnswered(let roundTrip):
                out.append(.probeAnswered(roundTrip: roundTrip))
            case .addressRefused(let refusal):
                out += refusedAddress(refusal, at: time)
            case .coordinateRejected(let node, let rejection):
                if counters.addPassingPowerOfTwo(.coordinatesRejected) {
                    out.append(
                        .log(
                            NodeLog(
                                .warning, "a peer's network coordinate was refused (logged at the 1st, 2nd, 4th… refusal)",
                                ["member": node, "reason": "\(rejection)", "count": "\(counters[.coordinatesRejected])"])))
                }
            }
        }
        return out
    }

    /// A member changed: its ephemeral values appear or vanish, replication peers change, and
    /// the change is logged and counted.
    private mutating func report(_ event: MemberEvent, at time: NodeTime) -> [NodeEffect] {
        if !local.fixedPeers { peerCache = nil }
        peerNameCache = nil
        let member = event.member
        var out: [NodeEffect] = []
        switch event.kind {
        case .failed, .left, .reaped: out += touch(replication.member(member.name, runs: nil))
        case .joined, .recovered, .updated: out += touch(replication.member(member.name, runs: Self.runningWriter(of: member)))
        case .suspected: break
        }
        counters.add(NodeCounter.memberEvents(event.kind))
        let metadata = ["member": member.name, "address": "\(member.address)", "incarnation": "\(member.incarnation)"]
        let level: NodeLog.Level =
            switch event.kind {
            case .failed: .warning
            case .reaped: .debug
            default: .info
            }
        out.append(.log(NodeLog(level, "member \(event.kind.rawValue)", metadata)))
        out.append(.memberEvent(event))
        return out
    }
}
