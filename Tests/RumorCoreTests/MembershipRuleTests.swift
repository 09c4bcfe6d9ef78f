import Testing

@testable import RumorCore

/// One machine, fed events by hand: each SWIM/Lifeguard rule in isolation.
struct MembershipRuleTests {
    static let me = NodeAddress(ip: [10, 0, 0, 1], port: 7946)

    static func peer(_ index: Int) -> NodeAddress { NodeAddress(ip: [10, 0, 0, UInt8(index)], port: 7946) }

    /// A machine that knows `others` alive members named p2, p3, ….
    static func machine(others: Int, settings: MembershipSettings = .lan, protocolMax: UInt8 = 5) -> Membership {
        var machine = Membership(name: "me", address: me, settings: settings, seed: 1, now: .zero)
        var versions = ProtocolVersions.rumor
        versions.protocolMax = protocolMax
        for index in 2..<(2 + others) {
            _ = machine.receive(
                .alive(Alive(incarnation: 1, node: "p\(index)", address: peer(index), meta: [], versions: versions)),
                from: peer(index), now: .zero)
        }
        return machine
    }

    static func sends(_ directives: [MembershipDirective]) -> [(NodeAddress, [Message])] {
        directives.compactMap { if case .send(let to, let messages, _) = $0 { (to, messages) } else { nil } }
    }

    static func at(_ seconds: Double) -> Instant { Instant(nanoseconds: Int64(seconds * 1e9)) }

    @Test func membersAtPilotAddressesJoinAPilotNode_andOtherLengthsAreIgnored() {
        let local = NodeAddress(ip: [0, 0, 0, 0, 0, 1], port: 7946)
        var machine = Membership(name: "me", address: local, seed: 1, now: .zero)
        let pilot = NodeAddress(ip: [0, 0, 0, 0, 0, 9], port: 7946)
        _ = machine.receive(.alive(Alive(incarnation: 1, node: "on-pilot", address: pilot, meta: [], versions: .rumor)), from: pilot, now: .zero)
        #expect(machine.members["on-pilot"]?.address == pilot)
        for odd in [NodeAddress(ip: [1, 2, 3], port: 7946), Self.peer(2)] {
            _ = machine.receive(.alive(Alive(incarnation: 1, node: "odd", address: odd, meta: [], versions: .rumor)), from: pilot, now: .zero)
            #expect(machine.members["odd"] == nil)
        }
        var onIPv4 = Self.machine(others: 0)
        _ = onIPv4.receive(.alive(Alive(incarnation: 1, node: "on-pilot", address: pilot, meta: [], versions: .rumor)), from: Self.peer(2), now: .zero)
        #expect(onIPv4.members["on-pilot"] == nil, "an IPv4 socket cannot reach a Pilot address")
    }

    @Test func probeSendsPingAndWaitsProbeTimeout() {
        var machine = Self.machine(others: 1)
        let out = machine.timerFired(.probe, now: Self.at(1))
        let pings = Self.sends(out).flatMap(\.1).compactMap { if case .ping(let ping) = $0 { ping } else { nil } }
        #expect(pings.count == 1 && pings[0].target == "p2" && pings[0].sourceName == "me")
        #expect(out.contains(.startTimer(.probeTimeout(sequence: pings[0].sequenceNumber), after: .milliseconds(500))))
        #expect(out.contains(.startTimer(.probe, after: .seconds(1))))
    }

    @Test func anAckedProbe_reportsItsRoundTripOnce() {
        var machine = Self.machine(others: 1)
        let out = machine.timerFired(.probe, now: Self.at(1))
        guard case .send(_, let messages, _)? = out.first(where: { if case .send = $0 { true } else { false } }),
            case .ping(let ping)? = messages.first
        else {
            Issue.record("no ping: \(out)")
            return
        }
        let ack = Ack(sequenceNumber: ping.sequenceNumber, payload: [])
        let sentAt = Self.at(1)
        let answered = machine.receive(.ack(ack), from: Self.peer(2), now: sentAt + .milliseconds(3))
        #expect(answered.contains(.probeAnswered(roundTrip: .milliseconds(3))))
        #expect(!machine.receive(.ack(ack), from: Self.peer(2), now: sentAt + .milliseconds(4)).contains { if case .probeAnswered = $0 { true } else { false } })
    }

    @Test func ackedProbe_keepsTargetAliveAndImprovesHealth() {
        var machine = Self.machine(others: 1)
        _ = machine.receive(.suspect(Suspect(incarnation: 1, node: "me", from: "p2")), from: Self.peer(2), now: Self.at(0.5))
        #expect(machine.healthScore == 1)
        let out = machine.timerFired(.probe, now: Self.at(1))
        let ping = Self.sends(out).flatMap(\.1).compactMap { if case .ping(let ping) = $0 { ping } else { nil } }.first!
        _ = machine.receive(.ack(Ack(sequenceNumber: ping.sequenceNumber)), from: Self.peer(2), now: Self.at(1.01))
        _ = machine.timerFired(.probe, now: Self.at(3))
        #expect(machine.members["p2"]?.state == .alive)
        #expect(machine.healthScore == 0)
    }

    @Test func unansweredProbe_goesIndirectThenSuspects() {
        var machine = Self.machine(others: 4)
        let out = machine.timerFired(.probe, now: Self.at(1))
        let (target, messages) = Self.sends(out)[0]
        guard case .ping(let ping) = messages[0] else { Issue.record("no ping"); return }
        let indirect = machine.timerFired(.probeTimeout(sequence: ping.sequenceNumber), now: Self.at(1.5))
        let requests = Self.sends(indirect).flatMap(\.1).compactMap { if case .indirectPing(let r) = $0 { r } else { nil } }
        #expect(requests.count == 3, "indirectChecks helpers are asked")
        #expect(requests.allSatisfy { $0.target == target && $0.wantsNack && $0.sequenceNumber == ping.sequenceNumber })
        #expect(indirect.contains { if case .streamPing(target, _, _) = $0 { true } else { false } }, "TCP fallback for protocol ≥ 3")
        let closing = machine.timerFired(.probe, now: Self.at(2))
        let name = ping.target
        #expect(machine.members[name]?.state == .suspect)
        #expect(closing.contains(.event(MemberEvent(kind: .suspected, member: machine.members[name]!))))
        #expect(machine.healthScore == 3, "3 expected nacks missing raise local health by 3")
    }

    @Test func nacksFromHelpers_spareLocalHealth() {
        var machine = Self.machine(others: 4)
        let out = machine.timerFired(.probe, now: Self.at(1))
        guard case .ping(let ping) = Self.sends(out)[0].1[0] else { return }
        _ = machine.timerFired(.probeTimeout(sequence: ping.sequenceNumber), now: Self.at(1.5))
        for helper in 0..<3 {
            _ = machine.receive(.nack(Nack(sequenceNumber: ping.sequenceNumber)), from: Self.peer(helper + 2), now: Self.at(1.9))
        }
        _ = machine.timerFired(.probe, now: Self.at(2))
        #expect(machine.healthScore == 0, "all helpers answered: the problem is the target, not us")
    }

    @Test func indirectAck_isRelayedWithTheRequestersSequence() {
        var machine = Self.machine(others: 2)
        let request = IndirectPing(
            sequenceNumber: 42, target: Self.peer(3), targetName: "p3", wantsNack: true, source: Self.peer(2), sourceName: "p2")
        let out = machine.receive(.indirectPing(request), from: Self.peer(2), now: Self.at(1))
        let (to, messages) = Self.sends(out)[0]
        guard case .ping(let relayed) = messages[0] else { Issue.record("no relayed ping"); return }
        #expect(to == Self.peer(3))
        let forwarded = machine.receive(.ack(Ack(sequenceNumber: relayed.sequenceNumber)), from: Self.peer(3), now: Self.at(1.1))
        let ack = Self.sends(forwarded).first { $0.0 == Self.peer(2) }?.1.first
        #expect(ack == .ack(Ack(sequenceNumber: 42)))
    }

    @Test func relayTimeout_nacksWhenAsked() {
        var machine = Self.machine(others: 2)
        let request = IndirectPing(sequenceNumber: 7, target: Self.peer(3), targetName: "p3", wantsNack: true, source: Self.peer(2))
        let out = machine.receive(.indirectPing(request), from: Self.peer(2), now: Self.at(1))
        guard case .ping(let relayed) = Self.sends(out)[0].1[0] else { return }
        let timeout = machine.timerFired(.relayTimeout(sequence: relayed.sequenceNumber), now: Self.at(1.5))
        #expect(Self.sends(timeout).first?.1.first == .nack(Nack(sequenceNumber: 7)))
    }

    @Test func pingForAnotherName_isNotAnswered() {
        var machine = Self.machine(others: 1)
        #expect(machine.receive(.ping(Ping(sequenceNumber: 1, target: "someone-else")), from: Self.peer(2), now: .zero).isEmpty)
        let answered = machine.receive(.ping(Ping(sequenceNumber: 2, target: "me")), from: Self.peer(2), now: .zero)
        #expect(Self.sends(answered).first?.1.first == .ack(Ack(sequenceNumber: 2)))
    }

    /// N = 5, lan: min = 4 × max(1, log10 5) × 1 s = 4 s, max = 6 × min = 24 s, k = 4 − 2 = 2.
    @Test func suspicionTimeout_startsAtMaxAndShrinksWithConfirmations() {
        var machine = Self.machine(others: 4)
        let start = machine.receive(.suspect(Suspect(incarnation: 1, node: "p2", from: "p3")), from: Self.peer(3), now: Self.at(10))
        #expect(start.contains(.startTimer(.suspicionTimeout(node: "p2"), after: .seconds(24))))
        let duplicate = machine.receive(.suspect(Suspect(incarnation: 1, node: "p2", from: "p3")), from: Self.peer(3), now: Self.at(11))
        #expect(duplicate.isEmpty, "the same accuser twice is not a confirmation")
        let first = machine.receive(.suspect(Suspect(incarnation: 1, node: "p2", from: "p4")), from: Self.peer(4), now: Self.at(11))
        // 24 − (log 2 / log 3) × 20 = 11.381… s from the start.
        #expect(first.contains(.startTimer(.suspicionTimeout(node: "p2"), after: .milliseconds(10_381))))
        let second = machine.receive(.suspect(Suspect(incarnation: 1, node: "p2", from: "p5")), from: Self.peer(5), now: Self.at(12))
        #expect(second.contains(.startTimer(.suspicionTimeout(node: "p2"), after: .seconds(2))), "reaches min = 4 s")
        _ = machine.timerFired(.suspicionTimeout(node: "p2"), now: Self.at(13.9))
        #expect(machine.members["p2"]?.state == .suspect, "not before the deadline")
        _ = machine.timerFired(.suspicionTimeout(node: "p2"), now: Self.at(14))
        #expect(machine.members["p2"]?.state == .dead)
    }

    @Test func suspicionWithFewMembers_usesMinimumTimeout() {
        var machine = Self.machine(others: 2)  // N = 3: N − 2 < k, so k = 0
        let out = machine.receive(.suspect(Suspect(incarnation: 1, node: "p2", from: "p3")), from: Self.peer(3), now: .zero)
        #expect(out.contains(.startTimer(.suspicionTimeout(node: "p2"), after: .seconds(4))))
    }

    @Test func suspectAboutLocalNode_isRefutedWithHigherIncarnation() {
        var machine = Self.machine(others: 2)
        _ = machine.receive(.suspect(Suspect(incarnation: 5, node: "me", from: "p2")), from: Self.peer(2), now: .zero)
        #expect(machine.localMember.incarnation == 6)
        #expect(machine.localMember.state == .alive)
        #expect(machine.healthScore == 1)
        let gossip = machine.timerFired(.gossip, now: Self.at(0.2))
        let alive = Self.sends(gossip).flatMap(\.1).contains {
            if case .alive(let alive) = $0 { alive.node == "me" && alive.incarnation == 6 } else { false }
        }
        #expect(alive, "the refutation is gossiped")
    }

    @Test func deadAboutLocalNode_isRefuted() {
        var machine = Self.machine(others: 2)
        _ = machine.receive(.dead(Dead(incarnation: 1, node: "me", from: "p2")), from: Self.peer(2), now: .zero)
        #expect(machine.localMember.state == .alive && machine.localMember.incarnation == 2)
    }

    @Test func aliveWithHigherIncarnation_clearsSuspicion_olderIsIgnored() {
        var machine = Self.machine(others: 3)
        _ = machine.receive(.suspect(Suspect(incarnation: 1, node: "p2", from: "p3")), from: Self.peer(3), now: .zero)
        let same = Alive(incarnation: 1, node: "p2", address: Self.peer(2), meta: [], versions: .rumor)
        _ = machine.receive(.alive(same), from: Self.peer(2), now: Self.at(1))
        #expect(machine.members["p2"]?.state == .suspect, "equal incarnation does not refute")
        var newer = same
        newer.incarnation = 2
        let out = machine.receive(.alive(newer), from: Self.peer(2), now: Self.at(1))
        #expect(machine.members["p2"]?.state == .alive)
        #expect(out.contains { if case .event(let e) = $0 { e.kind == .recovered } else { false } })
        _ = machine.timerFired(.suspicionTimeout(node: "p2"), now: Self.at(100))
        #expect(machine.members["p2"]?.state == .alive, "the old suspicion timer no longer applies")
    }

    @Test func deadFromTheNodeItself_meansLeft_staleAndUnknownAreIgnored() {
        var machine = Self.machine(others: 3)
        _ = machine.receive(.dead(Dead(incarnation: 0, node: "p2", from: "p3")), from: Self.peer(3), now: .zero)
        #expect(machine.members["p2"]?.state == .alive, "stale incarnation")
        #expect(machine.receive(.dead(Dead(incarnation: 9, node: "ghost", from: "p3")), from: Self.peer(3), now: .zero).isEmpty)
        _ = machine.receive(.dead(Dead(incarnation: 1, node: "p2", from: "p2")), from: Self.peer(2), now: .zero)
        #expect(machine.members["p2"]?.state == .left)
        _ = machine.receive(.dead(Dead(incarnation: 1, node: "p3", from: "p4")), from: Self.peer(4), now: .zero)
        #expect(machine.members["p3"]?.state == .dead)
    }

    @Test func healthScore_isClampedAndScalesTheProbeInterval() {
        var machine = Self.machine(others: 1)
        for incarnation in 1...20 {
            _ = machine.receive(.suspect(Suspect(incarnation: UInt32(incarnation * 10), node: "me", from: "p2")), from: Self.peer(2), now: .zero)
        }
        #expect(machine.healthScore == 7, "0 ..< awarenessMaxMultiplier")
        let out = machine.timerFired(.probe, now: Self.at(1))
        #expect(out.contains(.startTimer(.probe, after: .seconds(8))))
    }

    @Test func retransmitLimit_followsMemberlistFormula() {
        let settings = MembershipSettings.lan
        #expect(settings.retransmitLimit(memberCount: 1) == 4)
        #expect(settings.retransmitLimit(memberCount: 9) == 4)
        #expect(settings.retransmitLimit(memberCount: 10) == 8)
        #expect(settings.retransmitLimit(memberCount: 100) == 12)
        #expect(settings.scaledPushPullInterval(memberCount: 32) == .seconds(30))
        #expect(settings.scaledPushPullInterval(memberCount: 64) == .seconds(60))
    }

    @Test func news_isGossipedAtOnce_thenWithinTheSpacing_andSpendsTheSameRetransmitBudget() {
        var settings = MembershipSettings.lan  // eager gossip is on by default; 10 ms spacing here
        settings.eagerGossipSpacing = .milliseconds(10)
        var machine = Self.machine(others: 4, settings: settings)
        _ = machine.timerFired(.flushGossip, now: Self.at(0.5))  // the flush the set-up's burst scheduled
        func copies(_ directives: [MembershipDirective], of node: String) -> Int {
            Self.sends(directives).flatMap(\.1).filter { if case .alive(let alive) = $0 { alive.node == node } else { false } }.count
        }
        let news = Alive(incarnation: 1, node: "late", address: Self.peer(9), meta: [], versions: .rumor)
        let first = machine.receive(.alive(news), from: Self.peer(9), now: Self.at(1))
        #expect(copies(first, of: "late") == 3, "sent to gossipNodes members at once, not at the next gossip round")
        let soon = Alive(incarnation: 1, node: "later", address: Self.peer(10), meta: [], versions: .rumor)
        let second = machine.receive(.alive(soon), from: Self.peer(10), now: Self.at(1.004))
        #expect(copies(second, of: "later") == 0)
        #expect(second.contains(.startTimer(.flushGossip, after: .milliseconds(6))))
        let flushed = machine.timerFired(.flushGossip, now: Self.at(1.010))
        #expect(copies(flushed, of: "later") == 3)
        var total = copies(first, of: "late") + copies(second, of: "late") + copies(flushed, of: "late")
        for round in 1...10 {
            total += copies(machine.timerFired(.gossip, now: Self.at(1.010 + Double(round) * 0.2)), of: "late")
        }
        let limit = MembershipSettings.lan.retransmitLimit(memberCount: 7)
        #expect(total == limit, "eager gossip spends the retransmit budget sooner, not more of it")
    }

    @Test func gossipTimer_stopsWhileNothingIsQueued_andRestartsWithNews() {
        var settings = MembershipSettings.lan
        settings.eagerGossipSpacing = nil
        var machine = Self.machine(others: 2, settings: settings)
        var round = 0
        var out: [MembershipDirective] = []
        repeat {
            round += 1
            out = machine.timerFired(.gossip, now: Self.at(Double(round) * 0.2))
        } while out.contains(.startTimer(.gossip, after: settings.gossipInterval)) && round < 50
        #expect(round < 50 && machine.pendingBroadcasts == 0, "an idle node stops ticking")
        let news = Alive(incarnation: 1, node: "late", address: Self.peer(9), meta: [], versions: .rumor)
        let rearmed = machine.receive(.alive(news), from: Self.peer(9), now: Self.at(20))
        #expect(rearmed.contains(.startTimer(.gossip, after: settings.gossipInterval)))
    }

    @Test func broadcast_isSentRetransmitLimitTimesThenDropped() {
        var settings = MembershipSettings.lan
        settings.eagerGossipSpacing = nil
        var machine = Self.machine(others: 2, settings: settings)  // N = 3 → limit 4
        var copies = 0
        for round in 0..<10 {
            let out = machine.timerFired(.gossip, now: Self.at(Double(round) * 0.2))
            copies += Self.sends(out).flatMap(\.1).filter {
                if case .alive(let alive) = $0 { alive.node == "p2" } else { false }
            }.count
        }
        #expect(copies == 4)
        #expect(machine.pendingBroadcasts == 0)
    }

    @Test func newerNewsAboutAMember_replacesQueuedNews() {
        var machine = Self.machine(others: 3)
        let before = machine.pendingBroadcasts
        _ = machine.receive(.suspect(Suspect(incarnation: 1, node: "p2", from: "p3")), from: Self.peer(3), now: .zero)
        _ = machine.receive(.dead(Dead(incarnation: 1, node: "p2", from: "p3")), from: Self.peer(3), now: .zero)
        #expect(machine.pendingBroadcasts == before, "suspect and dead replaced p2's alive")
    }

    @Test func packets_stayWithinTheBudget() {
        var settings = MembershipSettings.lan
        settings.packetBudget = 600
        var machine = Self.machine(others: 40, settings: settings)
        let out = machine.timerFired(.gossip, now: .zero)
        for (_, messages) in Self.sends(out) {
            #expect(messages.reduce(2) { $0 + $1.estimatedWireSize + 2 } <= 600)
        }
    }

    @Test func gossip_goesToRecentlyDeadButNotToLeft() {
        var machine = Self.machine(others: 2)
        _ = machine.receive(.dead(Dead(incarnation: 1, node: "p2", from: "p3")), from: Self.peer(3), now: .zero)
        _ = machine.receive(.dead(Dead(incarnation: 1, node: "p3", from: "p3")), from: Self.peer(3), now: .zero)
        let soon = Self.sends(machine.timerFired(.gossip, now: Self.at(1))).map(\.0)
        #expect(soon == [Self.peer(2)], "dead p2 still hears gossip (to refute); left p3 does not")
        _ = machine.updateMeta([1], now: Self.at(40))
        #expect(Self.sends(machine.timerFired(.gossip, now: Self.at(40))).isEmpty, "not after gossipToTheDeadTime")
    }

    @Test func pushPullMerge_treatsRemoteDeadAsSuspicionOnly() {
        var machine = Self.machine(others: 1)
        let remote = PushPull(
            join: false,
            nodes: [
                PushNodeState(name: "p2", address: Self.peer(2), meta: [], incarnation: 1, state: .dead, versions: .rumor),
                PushNodeState(name: "new", address: Self.peer(9), meta: [], incarnation: 3, state: .alive, versions: .rumor),
                PushNodeState(name: "gone", address: Self.peer(8), meta: [], incarnation: 3, state: .alive, versions: .rumor),
            ])
        _ = machine.receivePushPullReply(remote, from: Self.peer(2), now: .zero)
        #expect(machine.members["p2"]?.state == .suspect)
        #expect(machine.members["new"]?.state == .alive)
        let leftState = PushPull(join: false, nodes: [
            PushNodeState(name: "gone", address: Self.peer(8), meta: [], incarnation: 3, state: .left, versions: .rumor)
        ])
        _ = machine.receivePushPullReply(leftState, from: Self.peer(2), now: .zero)
        #expect(machine.members["gone"]?.state == .left)
    }

    @Test func leave_announcesAndCompletesAfterRetransmits() {
        var machine = Self.machine(others: 2)
        _ = machine.leave(now: .zero)
        #expect(machine.localMember.state == .left)
        var completed = false
        var announced = 0
        for round in 1...10 where !completed {
            let out = machine.timerFired(.gossip, now: Self.at(Double(round) * 0.2))
            announced += Self.sends(out).flatMap(\.1).filter { $0 == .dead(Dead(incarnation: 1, node: "me", from: "me")) }.count
            completed = out.contains(.leaveCompleted)
        }
        #expect(completed && announced == 4)
        let probe = machine.timerFired(.probe, now: Self.at(5))
        #expect(Self.sends(probe).isEmpty, "no probing after leave")
    }

    @Test func leaveAlone_completesAtOnce() {
        var machine = Membership(name: "me", address: Self.me, seed: 1, now: .zero)
        #expect(machine.leave(now: .zero) == [.leaveCompleted])
    }

    @Test func deadMembers_areReapedAfterGossipToTheDeadTime() {
        var machine = Self.machine(others: 2)
        _ = machine.receive(.dead(Dead(incarnation: 1, node: "p2", from: "p3")), from: Self.peer(3), now: .zero)
        var reaped = false
        for second in 1...40 {
            let out = machine.timerFired(.probe, now: Self.at(Double(second)))
            reaped = reaped || out.contains { if case .event(let e) = $0 { e.kind == .reaped } else { false } }
        }
        #expect(reaped && machine.members["p2"] == nil)
    }

    @Test func sameSeedAndEvents_giveIdenticalDirectives_otherSeedsDiffer() {
        func trace(seed: UInt64) -> [MembershipDirective] {
            var machine = Membership(name: "me", address: Self.me, seed: seed, now: .zero)
            var out = machine.start(now: .zero)
            for index in 2...30 {
                out += machine.receive(
                    .alive(Alive(incarnation: 1, node: "p\(index)", address: Self.peer(index), meta: [], versions: .rumor)),
                    from: Self.peer(index), now: .zero)
            }
            for step in 1...20 {
                out += machine.timerFired(.probe, now: Self.at(Double(step)))
                out += machine.timerFired(.gossip, now: Self.at(Double(step) + 0.5))
            }
            return out
        }
        #expect(trace(seed: 5) == trace(seed: 5))
        #expect(trace(seed: 5) != trace(seed: 6))
    }
}

/// Reconnect (partition healing) without a connection flood at dead addresses, and the rules that
/// let a healed partition become one swarm in seconds.
struct ReconnectRuleTests {
    /// A machine that knows `alive` alive members and `dead` members it holds dead.
    static func machine(alive: Int, dead: Int, seed: UInt64) -> Membership {
        var machine = Membership(name: "me", address: MembershipRuleTests.me, seed: seed, now: .zero)
        for index in 2..<(2 + alive + dead) {
            _ = machine.receive(
                .alive(Alive(incarnation: 1, node: "p\(index)", address: MembershipRuleTests.peer(index), meta: [], versions: .rumor)),
                from: MembershipRuleTests.peer(index), now: .zero)
        }
        for index in (2 + alive)..<(2 + alive + dead) {
            _ = machine.receive(.dead(Dead(incarnation: 1, node: "p\(index)", from: "p2")), from: MembershipRuleTests.peer(2), now: .zero)
        }
        return machine
    }

    static func offers(_ machine: inout Membership, ticks: ClosedRange<Int>) -> [NodeAddress] {
        ticks.flatMap { tick in
            machine.timerFired(.reconnect, now: Instant(nanoseconds: Int64(tick) * 1_000_000_000)).compactMap { directive in
                if case .pushPull(let to, _) = directive { to } else { nil }
            }
        }
    }

    @Test func eachFailedMember_isOfferedOnceAtOnce_thenWithProbabilityFailedOverAlive() {
        var later = 0
        for seed: UInt64 in 1...20 {
            var machine = Self.machine(alive: 99, dead: 1, seed: seed)
            #expect(Self.offers(&machine, ticks: 1...1) == [MembershipRuleTests.peer(101)], "the first tick offers the new failure")
            later += Self.offers(&machine, ticks: 2...101).count
        }
        // Then 1 failed among 100 alive: 20 nodes × 100 ticks × 1/100 = 20 expected; offering
        // every tick, as memberlist-style reconnect did, would make 2,000.
        #expect(later >= 5 && later <= 45, "later offers: \(later)")
    }

    @Test func aHalfPartitionedSwarm_offersEveryTick() {
        var machine = Self.machine(alive: 2, dead: 3, seed: 7)
        #expect(Self.offers(&machine, ticks: 1...10).count == 10, "as many failed as alive: every tick offers")
    }

    @Test func suspectsAreToldOnReconnectTicks_soAReachableOneRefutes() {
        var machine = MembershipRuleTests.machine(others: 3)
        _ = machine.receive(.suspect(Suspect(incarnation: 1, node: "p3", from: "p2")), from: MembershipRuleTests.peer(2), now: .zero)
        let out = machine.timerFired(.reconnect, now: Instant(nanoseconds: 1_000_000_000))
        let told = MembershipRuleTests.sends(out).filter { to, messages in
            to == MembershipRuleTests.peer(3) && messages.contains { if case .suspect(let s) = $0 { s.node == "p3" } else { false } }
        }
        #expect(told.count == 1)
    }

    @Test func anAccusationOlderThanOurRefutation_isAnsweredWithOurAliveToTheAccuser() {
        var machine = MembershipRuleTests.machine(others: 2)
        _ = machine.receive(.suspect(Suspect(incarnation: 1, node: "me", from: "p2")), from: MembershipRuleTests.peer(2), now: .zero)
        let refuted = machine.localMember.incarnation
        #expect(refuted > 1)
        // p3 missed the refutation and still accuses us at the old incarnation.
        let out = machine.receive(.dead(Dead(incarnation: 1, node: "me", from: "p3")), from: MembershipRuleTests.peer(3), now: .zero)
        let answers = MembershipRuleTests.sends(out).filter { to, messages in
            to == MembershipRuleTests.peer(3) && messages.contains { if case .alive(let a) = $0 { a.node == "me" && a.incarnation == refuted } else { false } }
        }
        #expect(answers.count == 1)
        #expect(machine.localMember.incarnation == refuted, "a stale accusation is not refuted again")
    }
}

/// Joins that do not all go through one seed's full state.
struct JoinStormRuleTests {
    @Test func aSeedAnswersEightJoinsASecondInFull_thenWithASample() {
        var seed = MembershipRuleTests.machine(others: 30)
        let joiner = PushPull(join: true, nodes: [])
        let sizes = (0..<10).map { index in
            seed.receivePushPull(joiner, from: MembershipRuleTests.peer(200), now: Instant(nanoseconds: Int64(index) * 1_000_000)).reply.nodes.count
        }
        #expect(sizes == [31, 31, 31, 31, 31, 31, 31, 31, 17, 17], "the whole list, then this node and 16 random members")
        let later = seed.receivePushPull(joiner, from: MembershipRuleTests.peer(200), now: Instant(nanoseconds: 2_000_000_000))
        #expect(later.reply.nodes.count == 31, "the storm is over a second later")
        let plain = seed.receivePushPull(PushPull(join: false, nodes: []), from: MembershipRuleTests.peer(2), now: Instant(nanoseconds: 2_000_000_000))
        #expect(plain.reply.nodes.count == 31, "anti-entropy exchanges always get everything")
    }

    static func pushPulls(_ directives: [MembershipDirective]) -> [NodeAddress] {
        directives.compactMap { if case .pushPull(let to, _) = $0 { to } else { nil } }
    }

    /// A node that hears of `count` new members by gossip, one every `spacing` seconds from `start`.
    static func hear(_ count: Int, from start: Double, spacing: Double, into machine: inout Membership) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        for index in 0..<count {
            let address = NodeAddress(ip: [10, 1, UInt8(index / 256), UInt8(index % 256)], port: 7946)
            let alive = Alive(incarnation: 1, node: "j\(index)", address: address, meta: [], versions: .rumor)
            let now = MembershipRuleTests.at(start + Double(index) * spacing)
            out += machine.receive(.alive(alive), from: MembershipRuleTests.peer(2), now: now)
        }
        return out
    }

    @Test func afterAStormOfNewMembers_aNodeRunsOnePushPullOnceItHasPassed() {
        var machine = MembershipRuleTests.machine(others: 3)
        _ = machine.timerFired(.stormSettle, now: MembershipRuleTests.at(1))  // the set-up's own arrivals settle
        let heard = Self.hear(40, from: 10, spacing: 0.02, into: &machine)  // 50 a second for 0.8 s
        #expect(heard.filter { $0 == .startTimer(.stormSettle, after: .seconds(1)) }.count == 1, "one timer per storm")
        let early = machine.timerFired(.stormSettle, now: MembershipRuleTests.at(11.2))
        #expect(Self.pushPulls(early).isEmpty, "0.42 s after the last new member: not yet")
        #expect(early.contains { if case .startTimer(.stormSettle, let after) = $0 { after > .milliseconds(578) && after < .milliseconds(582) } else { false } })
        let settled = machine.timerFired(.stormSettle, now: MembershipRuleTests.at(11.8))
        #expect(Self.pushPulls(settled).count == 1)
        #expect(machine.timerFired(.stormSettle, now: MembershipRuleTests.at(13)).isEmpty, "once per storm")
    }

    @Test func aFewNewMembersASecond_areNoStorm() {
        var machine = MembershipRuleTests.machine(others: 3)
        _ = machine.timerFired(.stormSettle, now: MembershipRuleTests.at(1))
        let heard = Self.hear(30, from: 10, spacing: 0.2, into: &machine)  // 5 a second
        #expect(!heard.contains { $0 == .startTimer(.stormSettle, after: .seconds(1)) })
    }

    @Test func membersLearnedByPushPull_areNoStorm() {
        var machine = MembershipRuleTests.machine(others: 0)
        let nodes = (0..<100).map { index in
            PushNodeState(name: "j\(index)", address: MembershipRuleTests.peer(100 + index), meta: [], incarnation: 1, state: .alive, versions: .rumor)
        }
        let out = machine.receivePushPullReply(PushPull(join: false, nodes: nodes), from: MembershipRuleTests.peer(100), now: .zero)
        #expect(machine.memberCount == 101)
        #expect(!out.contains { $0 == .startTimer(.stormSettle, after: .seconds(1)) }, "our own join's answer is no storm")
    }

    @Test func aLongStorm_settlesEveryFiveDelays() {
        var machine = MembershipRuleTests.machine(others: 3)
        _ = machine.timerFired(.stormSettle, now: MembershipRuleTests.at(1))
        _ = Self.hear(600, from: 10, spacing: 0.01, into: &machine)  // 100 a second for 6 s
        var pushPullTimes: [Double] = []
        var now = 11.0
        while now < 20 {
            if !Self.pushPulls(machine.timerFired(.stormSettle, now: MembershipRuleTests.at(now))).isEmpty { pushPullTimes.append(now) }
            now += 0.5
        }
        #expect(pushPullTimes.first == 15.5, "five delays into the storm, while it lasts")
        #expect(pushPullTimes.last == 17, "and a second after it ended")
    }
}
