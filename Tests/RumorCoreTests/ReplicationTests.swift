import Testing

@testable import RumorCore

struct ReplicationTests {
    static func peer(_ index: Int) -> NodeAddress { NodeAddress(ip: [10, 0, 0, UInt8(index)], port: 7946) }
    static let peers = (2...9).map(peer)

    static func pushes(_ directives: [ReplicationDirective]) -> [(entries: [Entry], relay: PushRelay, to: NodeAddress)] {
        directives.compactMap { if case .push(let entries, let relay, _, _, let to) = $0 { (entries, relay, to) } else { nil } }
    }

    /// A machine at `peer(index)` on the ring, pushing down the tree above `directPushLimit` 1.
    static func treeNode(_ name: String, at index: Int, seed: UInt64) -> Replication {
        var settings = ReplicationSettings()
        settings.directPushLimit = 1
        settings.maximumFanout = 3
        var node = Replication(localName: name, settings: settings, seed: seed)
        node.localAddress = peer(index)
        return node
    }

    @Test func localWrite_inASmallSwarm_goesStraightToEveryPeer_unrelayed() throws {
        var node = Replication(localName: "a", seed: 1)
        let (entry, out) = try node.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: Self.peers)
        #expect(Set(Self.pushes(out).map(\.to)) == Set(Self.peers))
        #expect(Self.pushes(out).allSatisfy { $0.entries == [entry] && $0.relay == .none })
    }

    @Test func localWrite_inALargeSwarm_goesToTheHeadsOfFanoutRangesOfTheRing() throws {
        var node = Self.treeNode("a", at: 1, seed: 1)
        let (entry, out) = try node.write(
            key: "k", value: [1], wallMilliseconds: 1_000, peers: Self.peers, now: Self.at(1_000), roundTrips: Self.roundTrips(1))
        let pushed = Self.pushes(out)
        // Peers 2…9 after 1 on the ring, in three ranges: 2–3, 4–6, 7–9 (back to the writer).
        #expect(pushed.map(\.to) == [Self.peer(2), Self.peer(4), Self.peer(7)])
        #expect(pushed.map(\.relay) == [.range(end: Self.peer(4)), .range(end: Self.peer(7)), .range(end: Self.peer(1))])
        #expect(pushed.allSatisfy { $0.entries == [entry] })
        #expect(out.contains(.startRelayTimer(after: .milliseconds(20))))
        #expect(node.relaysAwaitingConfirmation == 3)
        #expect(node.read("k", wallMilliseconds: 1_000) == entry)
    }

    @Test func badWrites_areRefusedAndWriteNothing() {
        var node = Replication(localName: "a", seed: 1)
        #expect(throws: NodeError.self) { try node.write(key: "", value: [1], wallMilliseconds: 1, peers: []) }
        #expect(throws: NodeError.self) {
            try node.write(key: String(repeating: "k", count: 1025), value: [1], wallMilliseconds: 1, peers: [])
        }
        #expect(throws: NodeError.self) {
            try node.write(key: "k", value: Array(repeating: 0, count: (1 << 20) + 1), wallMilliseconds: 1, peers: [])
        }
        #expect(node.store.entries.isEmpty)
    }

    @Test func aTreePush_isConfirmed_andRelayedOverItsRangeOnce() throws {
        var writer = Self.treeNode("a", at: 1, seed: 1)
        var relay = Self.treeNode("e", at: 4, seed: 2)
        let (entry, _) = try writer.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: Self.peers)
        let ring = [Self.peer(1)] + Self.peers
        // Node 4 relays 5 and 6 (its range ends at 7).
        let first = relay.receivePush([entry], relay: .range(end: Self.peer(7)), from: Self.peer(1), wallMilliseconds: 1_000, peers: ring)
        #expect(first.contains(.confirmRelay(entry.version, to: Self.peer(1))))
        #expect(first.contains(.applied([entry])))
        #expect(Self.pushes(first).map(\.to) == [Self.peer(5), Self.peer(6)])
        #expect(Self.pushes(first).map(\.relay) == [.range(end: Self.peer(6)), .range(end: Self.peer(7))])
        // The same push again (our confirmation was lost): confirmed again, not relayed again.
        let again = relay.receivePush([entry], relay: .range(end: Self.peer(7)), from: Self.peer(1), wallMilliseconds: 1_001, peers: ring)
        #expect(again == [.confirmRelay(entry.version, to: Self.peer(1))])
        // A push over a stream was delivered for sure: no confirmation.
        var streamed = Self.treeNode("f", at: 5, seed: 3)
        let viaStream = streamed.receivePush(
            [entry], relay: .range(end: Self.peer(6)), from: Self.peer(4), viaStream: true, wallMilliseconds: 1_000, peers: ring)
        #expect(!viaStream.contains { if case .confirmRelay = $0 { true } else { false } })
        // A direct push is neither confirmed nor relayed.
        var direct = Self.treeNode("g", at: 6, seed: 4)
        let plain = direct.receivePush([entry], from: Self.peer(1), wallMilliseconds: 1_000, peers: ring)
        #expect(plain == [.applied([entry])])
    }

    /// Round trips of about `milliseconds` to every peer.
    static func roundTrips(_ milliseconds: Int64) -> RoundTripTimes {
        var roundTrips = RoundTripTimes()
        for peer in peers + [peer(1)] { roundTrips.record(.milliseconds(milliseconds), to: peer) }
        return roundTrips
    }

    static func at(_ milliseconds: Int64) -> Instant { Instant(nanoseconds: milliseconds * 1_000_000) }

    @Test func anUnconfirmedRelay_isSentAgain_thenItsRangeIsHandedToTheNextMember_andTheChildKeepsItsCopy() throws {
        var writer = Self.treeNode("a", at: 1, seed: 1)
        let loopback = Self.roundTrips(1)
        let (entry, _) = try writer.write(
            key: "k", value: [1], wallMilliseconds: 1_000, peers: Self.peers, now: Self.at(1_000), roundTrips: loopback)
        #expect(writer.relayConfirmed(entry.version, by: Self.peer(2), now: Self.at(1_001)) == .milliseconds(1))
        _ = writer.relayConfirmed(entry.version, by: Self.peer(7), now: Self.at(1_001))
        #expect(writer.relaysAwaitingConfirmation == 1, "peer 4 stays silent")
        #expect(Self.pushes(writer.relayTimerFired(peers: Self.peers, now: Self.at(1_010), roundTrips: loopback)).isEmpty, "not yet due")
        var sent: [(to: NodeAddress, relay: PushRelay)] = []
        var now: Int64 = 1_020
        while writer.relaysAwaitingConfirmation > 0, now < 3_000 {
            sent += Self.pushes(writer.relayTimerFired(peers: Self.peers, now: Self.at(now), roundTrips: loopback)).map { ($0.to, $0.relay) }
            if sent.contains(where: { $0.to == Self.peer(5) }) { _ = writer.relayConfirmed(entry.version, by: Self.peer(5), now: Self.at(now)) }
            now += 20
        }
        let toFour = sent.filter { $0.to == Self.peer(4) }
        #expect(toFour.count == 9, "ten sends in all to the silent child")
        #expect(toFour.prefix(2).allSatisfy { $0.relay == .range(end: Self.peer(7)) }, "the whole range at first")
        #expect(toFour.dropFirst(2).allSatisfy { $0.relay == .range(end: Self.peer(5)) }, "then only itself")
        #expect(sent.filter { $0.to == Self.peer(5) }.map(\.relay) == [.range(end: Self.peer(7))], "5 relays 4's range, once confirmed")
        #expect(writer.relaysAwaitingConfirmation == 0)
    }

    @Test func theTreeReachesEveryMemberOnce_inLogFanoutHops_fromAnyWriter() {
        var generator = SeededRandom(seed: 7)
        var addresses = Set<NodeAddress>()
        while addresses.count < 2_000 {
            let bits = generator.next()
            addresses.insert(NodeAddress(ip: [10, UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8), UInt8(truncatingIfNeeded: bits >> 16)], port: 7946))
        }
        let ring = addresses.sorted()
        for writer in [ring[0], ring[999], ring[1_999]] {
            var reached: [NodeAddress: Int] = [:]
            var depth = 0
            var frontier = AddressRing(ring, local: writer).children(until: nil, fanout: 3)
            while !frontier.isEmpty {
                depth += 1
                var next: [(child: NodeAddress, end: NodeAddress)] = []
                for (child, end) in frontier {
                    reached[child, default: 0] += 1
                    next += AddressRing(ring, local: child).children(until: end, fanout: 3)
                }
                frontier = next
            }
            #expect(reached.count == 1_999 && reached.values.allSatisfy { $0 == 1 } && reached[writer] == nil)
            #expect(depth <= 8, "log3(2000) ≈ 6.9 hops, got \(depth)")
        }
    }

    @Test func pullAntiEntropy_bringsAMissedWrite() throws {
        var writer = Replication(localName: "a", seed: 1)
        var laggard = Replication(localName: "b", seed: 2)
        let (entry, _) = try writer.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: [])  // no peers: push lost
        let tick = laggard.antiEntropyTimerFired(peers: [Self.peer(1)], wallMilliseconds: 1_000)
        guard case .pull(_, let digest, _) = tick.first(where: { if case .pull = $0 { true } else { false } }) else {
            Issue.record("no pull")
            return
        }
        let answer = writer.answerPull(digest: digest, from: "b")
        _ = laggard.receivePullAnswer(entries: answer.entries, digest: answer.digest, from: "a", wallMilliseconds: 1_000)
        #expect(laggard.read("k", wallMilliseconds: 1_000) == entry)
        #expect(writer.answerPull(digest: laggard.store.digest, from: "b").entries.isEmpty, "nothing left to send")
    }

    @Test func awaitedWrite_isAcknowledgedByEveryNodeThePushReaches() throws {
        var fanoutOnly = ReplicationSettings()
        fanoutOnly.directPushLimit = 1
        var writer = Replication(localName: "a", settings: fanoutOnly, seed: 1)
        var relay = Replication(localName: "b", seed: 2)
        relay.localAddress = Self.peer(2)
        var last = Replication(localName: "c", seed: 3)
        let (entries, out) = try writer.write(
            [.init(key: "k", value: [1])], wallMilliseconds: 1_000, peers: [Self.peer(2)], awaitingReplicas: true)
        let version = entries[0].version
        guard case .push(let pushed, let relayMode, true, _, _) = out.first(where: { if case .push = $0 { true } else { false } }) else {
            Issue.record("the push does not ask for acknowledgement: \(out)")
            return
        }
        #expect(writer.holders(of: [version], among: ["b", "c"]).isEmpty)

        let atRelay = relay.receivePush(pushed, relay: relayMode, acknowledge: true, from: Self.peer(1), wallMilliseconds: 1_000, peers: [Self.peer(3)])
        #expect(atRelay.contains(.acknowledge([version], to: "a")))
        guard case .push(let relayed, let relayHops, true, _, _) = atRelay.first(where: { if case .push = $0 { true } else { false } }) else {
            Issue.record("the relay does not pass the acknowledgement request on")
            return
        }
        let atLast = last.receivePush(relayed, relay: relayHops, acknowledge: true, from: Self.peer(2), wallMilliseconds: 1_000, peers: [])
        #expect(atLast.contains(.acknowledge([version], to: "a")))

        writer.receiveAcknowledgement([version], from: "b")
        #expect(writer.holders(of: [version], among: ["b", "c"]) == ["b"])
        writer.receiveAcknowledgement([version], from: "c")
        #expect(writer.holders(of: [version], among: ["b", "c"]) == ["b", "c"])
        writer.stopAwaiting([version])
        #expect(writer.holders(of: [version], among: ["b", "c"]).isEmpty, "acknowledgements are kept only while awaited")
    }

    @Test func unawaitedWrites_askNoAcknowledgement() throws {
        var writer = Replication(localName: "a", seed: 1)
        var reader = Replication(localName: "b", seed: 2)
        let (entry, out) = try writer.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: [Self.peer(2)])
        #expect(out.allSatisfy { if case .push(_, _, false, _, _) = $0 { true } else { false } })
        let atReader = reader.receivePush([entry], from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(!atReader.contains { if case .acknowledge = $0 { true } else { false } })
    }

    @Test func aPeersDigest_showsWhichWritesItHolds_whileAWriteIsAwaited() throws {
        var writer = Replication(localName: "a", seed: 1)
        var peer = Replication(localName: "b", seed: 2)
        let (entries, _) = try writer.write(
            [Replication.Write(key: "k", value: [1])], wallMilliseconds: 1_000, peers: [], awaitingReplicas: true)
        let entry = entries[0]
        _ = writer.answerPull(digest: peer.store.digest, from: "b")
        #expect(writer.holders(of: [entry.version], among: ["b"]).isEmpty, "b's digest predates the write")
        let answer = writer.answerPull(digest: peer.store.digest, from: "b")
        _ = peer.receivePullAnswer(entries: answer.entries, digest: answer.digest, from: "a", wallMilliseconds: 1_000)
        _ = writer.answerPull(digest: peer.store.digest, from: "b")
        #expect(writer.holders(of: [entry.version], among: ["b"]) == ["b"], "b's next pull shows it holds the write")
        writer.stopAwaiting([entry.version])
        #expect(writer.peerDigests.isEmpty, "digests are kept only while a write is awaited")
        _ = writer.answerPull(digest: peer.store.digest, from: "b")
        #expect(writer.peerDigests.isEmpty)
    }

    @Test func peerSync_comparesFingerprints_andCountsWhatThePeerLacks() throws {
        var writer = Replication(localName: "a", seed: 1)
        var peer = Replication(localName: "b", seed: 2)
        _ = try writer.write(key: "k1", value: [1], wallMilliseconds: 5_000, peers: [])
        _ = try writer.write(key: "k2", value: [1], wallMilliseconds: 5_000, peers: [])
        #expect(writer.peerSync["b"] == nil, "never synced")
        _ = writer.answerPull(digest: peer.store.digest, fingerprint: peer.store.fingerprint, from: "b", wallMilliseconds: 5_000)
        #expect(writer.peerSync["b"] == .differs(peerLacks: 2, atMilliseconds: 5_000))
        let answer = writer.answerPull(digest: peer.store.digest, from: "b")
        _ = peer.receivePullAnswer(
            entries: answer.entries, digest: answer.digest, fingerprint: writer.store.fingerprint, from: "a", wallMilliseconds: 5_100)
        #expect(peer.peerSync["a"] == .inSync(atMilliseconds: 5_100))
        _ = writer.answerPull(digest: peer.store.digest, fingerprint: peer.store.fingerprint, from: "b", wallMilliseconds: 5_200)
        #expect(writer.peerSync["b"] == .inSync(atMilliseconds: 5_200))
        _ = peer.member("a", runs: Writer(name: "a", generation: writer.localWriter.generation + 1))
        #expect(peer.peerSync["a"] == nil, "a restarted: what its former process held proves nothing")
    }

    @Test func pushAgain_goesStraightToTheLaggardsWithoutRelaying() throws {
        var writer = Replication(localName: "a", seed: 1)
        let (entry, _) = try writer.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: [])
        let out = writer.pushAgain([entry], to: [Self.peer(4)])
        #expect(out == [.push([entry], relay: .none, acknowledge: true, after: nil, to: Self.peer(4))])
    }

    @Test func chainedPushes_advanceTheDigest_untilAGap() throws {
        var writer = Replication(localName: "a", seed: 1)
        var reader = Replication(localName: "b", seed: 2)
        func pushed(_ key: String) throws -> (entries: [Entry], after: HybridTimestamp?) {
            let (_, out) = try writer.write(key: key, value: [1], wallMilliseconds: 1_000, peers: [Self.peer(2)])
            guard case .push(let entries, _, _, let after, _) = out.first else { throw NodeError(.emptyKey, "", hint: "") }
            return (entries, after)
        }
        let a = writer.localWriter
        let first = try pushed("k1")
        #expect(first.after == .zero, "a process's chain starts at its first write")
        _ = reader.receivePush(first.entries, after: first.after, from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(reader.store.digest[a] == first.entries[0].version.timestamp, "the first push starts the chain")
        let second = try pushed("k2")
        _ = reader.receivePush(second.entries, after: second.after, from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(reader.store.digest[a] == second.entries[0].version.timestamp)
        _ = try pushed("k3")  // lost
        let fourth = try pushed("k4")
        _ = reader.receivePush(fourth.entries, after: fourth.after, from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(reader.store.digest[a] == second.entries[0].version.timestamp, "a gap stops the chain")
        #expect(writer.answerPull(digest: reader.store.digest, held: reader.store.heldSummary(), from: "b").entries.map(\.key) == ["k3"])
    }

    @Test func storesWithTheSameWrites_haveTheSameFingerprint_whateverTheOrder_andAPullBetweenThemSendsNothing() throws {
        var writer = Replication(localName: "a", seed: 1)
        var other = Replication(localName: "b", seed: 2)
        var first: [Entry] = []
        for key in ["k1", "k2", "k1", "k3"] {
            first.append(try writer.write(key: key, value: [1], wallMilliseconds: 1_000, peers: []).entry)
        }
        _ = other.receivePush(first.reversed(), from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(other.store.fingerprint == writer.store.fingerprint, "the overwritten k1 counts once, in any order")
        #expect(writer.store.fingerprint != 0)
        let answer = writer.answerPull(
            digest: [:], held: [:], fingerprint: other.store.fingerprint, from: "b")
        #expect(answer.entries.isEmpty, "same writes: no delta even with an empty digest")
        let blind = writer.answerPull(digest: [:], from: "b")
        #expect(blind.entries.count == 3, "without a fingerprint the digest decides")
        let (extra, _) = try writer.write(key: "k4", value: [2], wallMilliseconds: 1_001, peers: [])
        #expect(writer.store.fingerprint != other.store.fingerprint)
        #expect(writer.answerPull(digest: other.store.digest, held: other.store.heldSummary(), fingerprint: other.store.fingerprint, from: "b")
            .entries == [extra])
    }

    @Test func pushPull_sendsBackWhatTheAnsweringPeerLacks() throws {
        var a = Replication(localName: "a", seed: 1)
        var b = Replication(localName: "b", seed: 2)
        let (onlyA, _) = try a.write(key: "x", value: [1], wallMilliseconds: 1_000, peers: [])
        let (onlyB, _) = try b.write(key: "y", value: [2], wallMilliseconds: 1_000, peers: [])
        let answer = b.answerPull(digest: a.store.digest, from: "a")
        let out = a.receivePullAnswer(
            entries: answer.entries, digest: answer.digest, from: "b", replyingTo: Self.peer(2), wallMilliseconds: 1_000)
        guard case .sendDelta(let back, let digest, Self.peer(2)) = out.last else {
            Issue.record("no delta sent back: \(out)")
            return
        }
        #expect(back == [onlyA])
        let final = b.receivePullAnswer(entries: back, digest: digest, from: "a", wallMilliseconds: 1_000)
        #expect(!final.contains { if case .sendDelta = $0 { true } else { false } }, "the exchange ends")
        #expect(a.store == b.store && a.read("y", wallMilliseconds: 1_000) == onlyB)
    }

    @Test func anUnansweredPull_isRetriedElsewhere_twiceAtMost_andNotOnceAnswered() {
        var node = Replication(localName: "b", seed: 2)
        let loopback = Self.roundTrips(1)
        let tick = node.antiEntropyTimerFired(peers: Self.peers, wallMilliseconds: 1_000, roundTrips: loopback)
        #expect(tick.contains(.startPullRetryTimer(after: .milliseconds(200))))
        #expect(node.pullRetryTimerFired(peers: Self.peers, roundTrips: loopback).contains { if case .pull = $0 { true } else { false } })
        #expect(!node.pullRetryTimerFired(peers: Self.peers, roundTrips: loopback).isEmpty)
        #expect(node.pullRetryTimerFired(peers: Self.peers, roundTrips: loopback).isEmpty, "two retries per round")
        _ = node.antiEntropyTimerFired(peers: Self.peers, wallMilliseconds: 2_000, roundTrips: loopback)
        _ = node.receivePullAnswer(entries: [], digest: [:], from: "a", replyingTo: Self.peer(1), wallMilliseconds: 2_000)
        #expect(node.pullRetryTimerFired(peers: Self.peers, roundTrips: loopback).isEmpty, "answered: no retry")
    }

    /// On a 400 ms round trip a pull waits for its answer (about SRTT + 4·RTTVAR) before asking
    /// another peer, where a fixed 200 ms would ask three peers for every answer.
    @Test func aPull_waitsForThePeersRoundTrip() {
        var node = Replication(localName: "b", seed: 2)
        let tick = node.antiEntropyTimerFired(peers: Self.peers, wallMilliseconds: 1_000, roundTrips: Self.roundTrips(400))
        #expect(tick.contains(.startPullRetryTimer(after: .milliseconds(1_200))))
    }

    /// An entry stamped far ahead of every clock is taken (whether to take it must not depend on
    /// the receiver's clock, or the swarm splits over it), does not drag the clock past the
    /// bound, and a later local write of its key still wins: stamped above it.
    @Test func entriesFarInTheFuture_areTaken_andALocalWriteOfTheirKeyStillWins() throws {
        var node = Replication(localName: "b", seed: 2)
        let future = Entry(key: "k", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 10_000_000, logical: 0), origin: "a"))
        _ = node.receivePush([future], from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(node.store.entries["k"] == future)
        let other = try node.write(key: "other", value: [2], wallMilliseconds: 1_000, peers: []).entry
        #expect(other.version.timestamp.milliseconds == 1_500, "the clock moved only to the bound (500 ms)")
        let mine = try node.write(key: "k", value: [3], wallMilliseconds: 1_001, peers: []).entry
        #expect(mine.version > future.version)
        #expect(node.read("k", wallMilliseconds: 1_001)?.value == [3])
    }

    /// Only stamps past the year 6429 are refused, by every node alike (no clock decides it),
    /// and the refusal is reported: to the writer when it waits for acknowledgements.
    @Test func stampsPastTheLatestAccepted_areRefused_andTheWriterIsTold() {
        var node = Replication(localName: "b", seed: 2)
        let absurd = Entry(key: "k", value: [1], version: Version(timestamp: .latestAccepted, origin: "a"))
        let out = node.receivePush([absurd], acknowledge: true, from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(node.store.entries.isEmpty)
        #expect(out.contains { if case .refused([absurd.version], _, _, tellWriters: true) = $0 { true } else { false } })
        #expect(!out.contains { if case .acknowledge = $0 { true } else { false } }, "never acknowledged")
    }
}

struct EphemeralTests {
    @Test func ephemeralValues_vanishWhenTheirWriterDeparts_andReturnWithIt() throws {
        var writer = Replication(localName: "a", seed: 1)
        var reader = Replication(localName: "b", seed: 2)
        let (presence, _) = try writer.write(key: "presence/a", value: [1], ephemeral: true, wallMilliseconds: 1_000, peers: [])
        let (durable, _) = try writer.write(key: "config", value: [2], wallMilliseconds: 1_000, peers: [])
        _ = reader.receivePush([presence, durable], from: ReplicationTests.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(reader.read("presence/a", wallMilliseconds: 1_000) == nil, "its process is not known to run yet")
        reader.member("a", runs: writer.localWriter)
        #expect(reader.read("presence/a", wallMilliseconds: 1_000) == presence)
        reader.member("a", runs: nil)
        #expect(reader.read("presence/a", wallMilliseconds: 1_000) == nil)
        #expect(reader.read("config", wallMilliseconds: 1_000) == durable, "non-ephemeral values stay")
        #expect(reader.list(prefix: "", wallMilliseconds: 1_000).map(\.key) == ["config"])
        reader.member("a", runs: writer.localWriter)
        #expect(reader.read("presence/a", wallMilliseconds: 1_000) == presence, "the same process is back (a false failure)")
        reader.member("a", runs: Writer(name: "a", generation: writer.localWriter.generation + 1))
        #expect(reader.read("presence/a", wallMilliseconds: 1_000) == nil, "a new process of a never revives the old one's")
    }
}

struct TombstoneTests {
    @Test func tombstonesAreForgottenAfterGrace_onTheAntiEntropyTick() throws {
        var settings = ReplicationSettings()
        settings.tombstoneGrace = .seconds(10)
        var node = Replication(localName: "a", settings: settings, seed: 1)
        _ = try node.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: [])
        _ = try node.write(key: "k", value: nil, wallMilliseconds: 2_000, peers: [])
        #expect(!node.antiEntropyTimerFired(peers: [], wallMilliseconds: 11_000).contains(.forgot(["k"])))
        #expect(node.antiEntropyTimerFired(peers: [], wallMilliseconds: 12_001).contains(.forgot(["k"])))
        #expect(node.store.entries.isEmpty)
    }

    @Test func stateOlderThanGrace_isStale() {
        var settings = ReplicationSettings()
        settings.tombstoneGrace = .seconds(10)
        let node = Replication(localName: "a", settings: settings, seed: 1)
        #expect(!node.isStale(lastSyncedMilliseconds: 1_000, wallMilliseconds: 11_000))
        #expect(node.isStale(lastSyncedMilliseconds: 1_000, wallMilliseconds: 11_001))
    }
}
