import Testing

@testable import RumorCore

/// Round-trip estimates (RFC 6298) and the timers derived from them.
struct RoundTripTests {
    static let a = NodeAddress(ip: [10, 0, 0, 1], port: 7946)
    static let b = NodeAddress(ip: [10, 0, 0, 2], port: 7946)

    @Test func theFilter_followsRFC6298() {
        var times = RoundTripTimes()
        times.record(.milliseconds(100), to: Self.a)
        let first = times.estimate(of: Self.a)!
        #expect(first.smoothed == .milliseconds(100) && first.variation == .milliseconds(50))
        #expect(first.retransmissionTimeout == .milliseconds(300), "SRTT + 4·RTTVAR")
        times.record(.milliseconds(200), to: Self.a)
        let second = times.estimate(of: Self.a)!
        #expect(second.variation == .microseconds(62_500), "¾·50 + ¼·|100 − 200|")
        #expect(second.smoothed == .microseconds(112_500), "⅞·100 + ⅛·200")
        #expect(second.retransmissionTimeout == .microseconds(362_500))
        // A steady round trip: the variation decays, the timeout approaches it (but stays G above).
        for _ in 0..<200 { times.record(.milliseconds(100), to: Self.a) }
        let steady = times.estimate(of: Self.a)!.retransmissionTimeout
        #expect(steady >= .milliseconds(101) && steady < .milliseconds(102))
    }

    @Test func anUnmeasuredPeer_takesTheNetworksEstimate_andNothingMeasured_theInitialSecondWithinBounds() {
        var times = RoundTripTimes()
        #expect(times.timeout(for: Self.b, floor: .milliseconds(20), cap: .seconds(5)) == .seconds(1), "RFC 6298's initial RTO")
        #expect(times.timeout(for: Self.b, floor: .milliseconds(20), cap: .milliseconds(300)) == .milliseconds(300))
        times.record(.milliseconds(40), to: Self.a)
        #expect(times.estimate(of: Self.b) == nil, "one sample (the nearest peer's, maybe) says little of the rest")
        for _ in 1..<RoundTripTimes.priorSamples { times.record(.milliseconds(40), to: Self.a) }
        #expect(times.estimate(of: Self.b) == times.network)
        #expect(times.timeout(for: Self.b, floor: .milliseconds(20), cap: .seconds(5)) == times.network!.retransmissionTimeout)
        #expect(times.oneWayDelay == .milliseconds(20))
        times.forget(Self.a)
        #expect(times.peers.isEmpty && times.network != nil, "the network keeps what it learned")
    }

    @Test func timeouts_backOff_withinTheFloorAndCap_andACapNeverCutsBelowTheRoundTrip() {
        var times = RoundTripTimes()
        times.record(.milliseconds(100), to: Self.a)  // RTO 300 ms
        #expect(times.timeout(for: Self.a, floor: .milliseconds(20), cap: .seconds(1)) == .milliseconds(300))
        #expect(times.timeout(for: Self.a, backOff: 1, floor: .milliseconds(20), cap: .seconds(1)) == .milliseconds(600))
        #expect(times.timeout(for: Self.a, backOff: 2, floor: .milliseconds(20), cap: .seconds(1)) == .seconds(1))
        #expect(times.timeout(for: Self.a, floor: .milliseconds(500), cap: .seconds(1)) == .milliseconds(500))
        #expect(times.timeout(for: Self.a, floor: .milliseconds(20), cap: .milliseconds(100)) == .milliseconds(300))
    }

    /// RFC 6298 §5.5: a timeout keeps the doubled value for later requests until a sample.
    @Test func anUnansweredRequest_doublesLaterTimeouts_untilASample() {
        var times = RoundTripTimes()
        times.record(.milliseconds(100), to: Self.a)  // RTO 300 ms
        times.noAnswer(from: Self.a)
        times.noAnswer(from: Self.a)
        #expect(times.timeout(for: Self.a, floor: .milliseconds(20), cap: .seconds(5)) == .milliseconds(1_200))
        times.noAnswer(from: Self.b)
        #expect(times.timeout(for: Self.b, floor: .milliseconds(20), cap: .seconds(5)) != .milliseconds(1_200), "per peer")
        times.record(.milliseconds(100), to: Self.a)
        #expect(times.estimate(of: Self.a)?.backOffs == 0)
    }

    @Test func theTable_isBounded_oldestFirst() {
        var times = RoundTripTimes()
        for index in 0..<(RoundTripTimes.capacity + 10) {
            let peer = NodeAddress(ip: [10, 1, UInt8(index >> 8 & 255), UInt8(index & 255)], port: UInt16(7000 + index % 1000))
            times.record(.milliseconds(1), to: peer)
        }
        #expect(times.peers.count <= RoundTripTimes.capacity)
        let newest = NodeAddress(ip: [10, 1, UInt8((RoundTripTimes.capacity + 9) >> 8 & 255), UInt8((RoundTripTimes.capacity + 9) & 255)], port: UInt16(7000 + (RoundTripTimes.capacity + 9) % 1000))
        #expect(times.peers[newest] != nil)
    }

    // MARK: - The broadcast tree

    /// On a 100 ms round trip a relay waits for its confirmation, where the fixed 20 ms of old
    /// sent it four more times before the first confirmation could arrive.
    @Test func aRelay_isNotSentAgainBeforeItsChildCouldConfirm() throws {
        var writer = ReplicationTests.treeNode("a", at: 1, seed: 1)
        let slow = ReplicationTests.roundTrips(100)
        let (entry, out) = try writer.write(
            key: "k", value: [1], wallMilliseconds: 1_000, peers: ReplicationTests.peers, now: ReplicationTests.at(0),
            roundTrips: slow)
        let children = ReplicationTests.pushes(out).map(\.to)
        #expect(out.contains(.startRelayTimer(after: .milliseconds(300))))
        for now: Int64 in [20, 60, 120, 299] {
            #expect(ReplicationTests.pushes(writer.relayTimerFired(peers: ReplicationTests.peers, now: ReplicationTests.at(now), roundTrips: slow)).isEmpty)
        }
        for child in children {
            #expect(writer.relayConfirmed(entry.version, by: child, now: ReplicationTests.at(110)) == .milliseconds(110))
        }
        #expect(writer.relaysAwaitingConfirmation == 0)
    }

    /// Karn's rule: a confirmation of a push sent twice is no sample.
    @Test func aConfirmationOfAResentPush_isNoSample() throws {
        var writer = ReplicationTests.treeNode("a", at: 1, seed: 1)
        let slow = ReplicationTests.roundTrips(100)
        let (entry, out) = try writer.write(
            key: "k", value: [1], wallMilliseconds: 1_000, peers: ReplicationTests.peers, now: ReplicationTests.at(0),
            roundTrips: slow)
        let child = ReplicationTests.pushes(out)[0].to
        let again = writer.relayTimerFired(peers: ReplicationTests.peers, now: ReplicationTests.at(300), roundTrips: slow)
        #expect(ReplicationTests.pushes(again).contains { $0.to == child })
        #expect(writer.relayConfirmed(entry.version, by: child, now: ReplicationTests.at(310)) == nil)
    }

    @Test func theTree_flattensAsTheNetworkSlows() {
        let settings = ReplicationSettings()
        #expect(Replication.levels(members: 1_000, fanout: 3) == 6, "3 + 9 + … + 729 ≥ 999")
        #expect(Replication.levels(members: 1_000, fanout: 32) == 2)
        #expect(Replication.levels(members: 10_000, fanout: 100) == 2)
        #expect(Replication.treeFanout(members: 1_000, oneWayDelay: nil, settings: settings) == 3, "nothing measured yet")
        let loopback = Replication.treeFanout(members: 1_000, oneWayDelay: .microseconds(50), settings: settings)
        #expect(loopback <= 8, "on loopback a level costs little: \(loopback)")
        for (members, delay) in [(1_000, 20), (1_000, 200), (10_000, 50), (10_000, 200)] {
            let fanout = Replication.treeFanout(members: members, oneWayDelay: .milliseconds(delay), settings: settings)
            #expect(Replication.levels(members: members, fanout: fanout) <= 2, "\(members) nodes at \(delay) ms: fanout \(fanout)")
            #expect(fanout <= settings.maximumFanout)
        }
    }

    /// While the tree is still delivering a write, anti-entropy leaves it out (a second copy),
    /// and vouches only for what it sends; once the tree had time, it repairs as before. The
    /// answerer's own writes always go: the puller may have joined after the tree pushed them.
    @Test func antiEntropy_leavesOutWritesTheTreeIsStillDelivering() throws {
        var writer = Replication(localName: "w", seed: 1)
        var relay = Replication(localName: "r", seed: 2)
        let puller = Replication(localName: "p", seed: 3)
        let (old, _) = try writer.write(key: "old", value: [1], wallMilliseconds: 1_000, peers: [])
        let (fresh, _) = try writer.write(key: "fresh", value: [2], wallMilliseconds: 5_000, peers: [])
        _ = relay.receivePush([old, fresh], from: Self.a, wallMilliseconds: 5_001, peers: [])
        let (own, _) = try relay.write(key: "own", value: [3], wallMilliseconds: 5_002, peers: [])
        let early = relay.answerPull(
            digest: puller.store.digest, from: "p", wallMilliseconds: 5_050, heldBack: .milliseconds(100))
        guard case .complete(let entries, let digest, _) = early else { Issue.record("a small delta is complete"); return }
        #expect(Set(entries.map(\.key)) == ["old", "own"])
        #expect((digest[writer.localWriter] ?? .zero) < fresh.version.timestamp, "not vouching for what it left out")
        let late = relay.answerPull(
            digest: puller.store.digest, from: "p", wallMilliseconds: 5_101, heldBack: .milliseconds(100))
        guard case .complete(let all, let full, _) = late else { Issue.record("a small delta is complete"); return }
        #expect(Set(all.map(\.key)) == ["old", "fresh", "own"] && full == relay.store.digest)
        // An answerer whose clock is behind (a second here, an hour alike) sees writes stamped
        // past it: their age says nothing of the tree, and they go.
        let behind = relay.answerPull(
            digest: puller.store.digest, from: "p", wallMilliseconds: 4_000, heldBack: .milliseconds(100))
        guard case .complete(let seen, _, _) = behind else { Issue.record("a small delta is complete"); return }
        #expect(Set(seen.map(\.key)) == ["old", "fresh", "own"])
    }

    // MARK: - Membership

    /// A probe of a member 1 s away waits for its ack past memberlist's 500 ms (which would
    /// suspect it on every probe), and the probe period stretches to hold an indirect probe.
    @Test func probes_waitForTheMembersRoundTrip() {
        var membership = Membership(name: "a", address: Self.a, seed: 1, now: .zero)
        #expect(membership.probeTimeout(for: Self.b) == .milliseconds(500), "nothing measured: memberlist's")
        #expect(membership.probePeriod(for: Self.b) == .seconds(1))
        for _ in 0..<10 { membership.roundTrips.record(.seconds(1), to: Self.b) }
        let timeout = membership.probeTimeout(for: Self.b)
        #expect(timeout > .seconds(1) && timeout < .milliseconds(1_300))
        #expect(membership.probePeriod(for: Self.b) == timeout * 3, "the probe, then an indirect probe: two more round trips")
    }
}
