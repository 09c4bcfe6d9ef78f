/// SWIM failure detection: the probe round, direct and indirect probes, and the answers to
/// other members' probes.
/// - SeeAlso: SWIM (Das et al., 2002) §3.1 and §4.3; Lifeguard (Dadgar et al., 2018) §IV-A.
extension Membership {
    mutating func startProbe(now: Instant, into out: inout [MembershipDirective]) {
        guard let target = advanceToNextProbeTarget(now: now, into: &out) else { return }
        let sequence = advanceSequence()
        let local = localMember
        let ping = Ping(sequenceNumber: sequence, target: target.name, source: local.address, sourceName: localName)
        probe = ProbeInFlight(sequence: sequence, target: target.name, sentAt: now)
        var messages: [Message] = [.ping(ping)]
        if target.state != .alive {
            // A suspect is told directly, so it can refute at once.
            messages.append(.suspect(Suspect(incarnation: target.incarnation, node: target.name, from: localName)))
        }
        send(messages, to: target.address, checksum: target.versions.acceptsChecksums, into: &out)
        out.append(.startTimer(.probeTimeout(sequence: sequence), after: probeTimeout(for: target.address)))
    }

    /// How long a probe of the member at `address` waits for its ack before asking others:
    /// the member's retransmission timeout (`RoundTripTimes`), never less than `probeTimeout`
    /// (memberlist's, which Serf and Go nodes use too). nil: a typical member.
    func probeTimeout(for address: NodeAddress?) -> Duration {
        roundTrips.timeout(for: address, floor: settings.probeTimeout, cap: settings.probeTimeout)
    }

    /// Time from one probe to the next when probing the member at `address` (nil: a typical
    /// member): `probeInterval`, stretched on a slow network so that the round still holds the
    /// direct probe's timeout and an indirect probe after it (two typical round trips more,
    /// through a helper).
    func probePeriod(for address: NodeAddress?) -> Duration {
        let indirect = roundTrips.network.map { $0.retransmissionTimeout * 2 } ?? .zero
        return max(settings.probeInterval, probeTimeout(for: address) + indirect)
    }

    /// The next member in probe order that is neither us nor dead/left, reshuffling (and reaping
    /// long-dead members) each time the order is exhausted.
    private mutating func advanceToNextProbeTarget(now: Instant, into out: inout [MembershipDirective]) -> Member? {
        var checked = 0
        while checked <= probeOrder.count {
            if probeIndex >= probeOrder.count {
                resetProbeOrder(now: now, into: &out)
                probeIndex = 0
                checked += 1
                continue
            }
            let name = probeOrder[probeIndex]
            probeIndex += 1
            checked += 1
            if name != localName, let member = members[name], !member.isDeadOrLeft {
                return member
            }
        }
        return nil
    }

    private mutating func resetProbeOrder(now: Instant, into out: inout [MembershipDirective]) {
        var kept: [String] = []
        kept.reserveCapacity(probeOrder.count)
        for name in probeOrder {
            guard let member = members[name] else { continue }
            if name != localName, member.isDeadOrLeft, now - member.stateChanged > settings.gossipToTheDeadTime {
                members[name] = nil
                suspicions[name] = nil
                roundTrips.forget(member.address)
                coordinates?.forget(peer: name)
                out.append(.event(MemberEvent(kind: .reaped, member: member)))
            } else {
                kept.append(name)
            }
        }
        kept.shuffle(using: &random)
        probeOrder = kept
    }

    /// The direct probe got no ack in `probeTimeout`: ask others to probe indirectly, and try a
    /// stream ping in case only UDP is failing.
    mutating func handleProbeTimeout(sequence: UInt32, now: Instant, into out: inout [MembershipDirective]) {
        guard var current = probe, current.sequence == sequence, !current.acknowledged,
            let target = members[current.target]
        else { return }
        let helpers = drawRandomMembers(settings.indirectChecks) {
            $0.state == .alive && $0.name != target.name
        }
        let local = localMember
        current.timedOut = true
        roundTrips.noAnswer(from: target.address)
        for helper in helpers {
            let wantsNack = helper.versions.supportsNacks
            if wantsNack { current.expectedNacks += 1 }
            let request = IndirectPing(
                sequenceNumber: sequence, target: target.address, targetName: target.name, wantsNack: wantsNack,
                source: local.address, sourceName: localName)
            send([.indirectPing(request)], to: helper.address, checksum: helper.versions.acceptsChecksums, into: &out)
        }
        probe = current
        if target.versions.acceptsStreamPings {
            let ping = Ping(sequenceNumber: sequence, target: target.name, source: local.address, sourceName: localName)
            let remaining = awareness.scale(probePeriod(for: target.address)) - probeTimeout(for: target.address)
            out.append(.streamPing(to: target.address, ping: ping, deadline: now + remaining))
        }
    }

    /// Closes the probe started one probe interval ago: on silence, suspect the target and adjust
    /// local health by how many nacks were missing (Lifeguard).
    mutating func finishProbe(now: Instant, into out: inout [MembershipDirective]) {
        guard let finished = probe else { return }
        probe = nil
        if finished.acknowledged || finished.contactedByStream {
            if finished.acknowledged { awareness.apply(-1) }
            return
        }
        if finished.expectedNacks > 0 {
            awareness.apply(max(0, finished.expectedNacks - finished.nacks))
        } else {
            awareness.apply(1)
        }
        guard let target = members[finished.target], target.state == .alive || target.state == .suspect else { return }
        handleSuspect(Suspect(incarnation: target.incarnation, node: target.name, from: localName), now: now, into: &out)
    }

    mutating func handlePing(_ ping: Ping, from sender: NodeAddress, into out: inout [MembershipDirective]) {
        // A ping for a previous node at our address must not be answered on its behalf.
        guard ping.target.isEmpty || ping.target == localName else { return }
        let replyTo = ping.source ?? sender
        guard admits(replyTo, ping.source == nil ? "ping sender" : "ping source address", from: sender, into: &out) else { return }
        let ack = Ack(sequenceNumber: ping.sequenceNumber, payload: coordinates?.ackPayload() ?? [])
        send([.ack(ack)], to: replyTo, checksum: memberAcceptsChecksums(ping.sourceName), into: &out)
    }

    mutating func handleIndirectPing(
        _ request: IndirectPing, from sender: NodeAddress, into out: inout [MembershipDirective]
    ) {
        let requester = request.source ?? sender
        guard admits(request.target, "indirect ping target", from: sender, into: &out),
            admits(requester, request.source == nil ? "indirect ping sender" : "indirect ping source address", from: sender, into: &out)
        else { return }
        let sequence = advanceSequence()
        let local = localMember
        relays[sequence] = Relay(
            requesterSequence: request.sequenceNumber, requester: requester, wantsNack: request.wantsNack)
        let ping = Ping(sequenceNumber: sequence, target: request.targetName, source: local.address, sourceName: localName)
        send([.ping(ping)], to: request.target, checksum: memberAcceptsChecksums(request.targetName), into: &out)
        out.append(.startTimer(.relayTimeout(sequence: sequence), after: probeTimeout(for: request.target)))
    }

    mutating func handleAck(_ ack: Ack, now: Instant, into out: inout [MembershipDirective]) {
        if let current = probe, current.sequence == ack.sequenceNumber {
            if !current.acknowledged {
                // The direct ack, before others were asked: an unambiguous sample.
                if !current.timedOut, let target = members[current.target] {
                    roundTrips.record(now - current.sentAt, to: target.address)
                }
                out.append(.probeAnswered(roundTrip: now - current.sentAt))
                observeCoordinate(in: ack, of: current, now: now, into: &out)
            }
            probe?.acknowledged = true
        } else if let relay = relays.removeValue(forKey: ack.sequenceNumber) {
            send(
                [.ack(Ack(sequenceNumber: relay.requesterSequence, payload: ack.payload))], to: relay.requester,
                into: &out)
        }
    }

    private mutating func advanceSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    private func memberAcceptsChecksums(_ name: String) -> Bool {
        guard !name.isEmpty, let member = members[name] else { return false }
        return member.versions.acceptsChecksums
    }

    /// Inserts a new member at a random place in the probe order, so newcomers are not all
    /// probed last (memberlist does the same).
    mutating func insertIntoProbeOrder(_ name: String) {
        probeOrder.append(name)
        let index = Int.random(in: 0..<probeOrder.count, using: &random)
        probeOrder.swapAt(index, probeOrder.count - 1)
    }
}
