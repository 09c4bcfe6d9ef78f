import Testing

@testable import RumorCore

struct ReplicationTests {
    static func peer(_ index: Int) -> NodeAddress { NodeAddress(ip: [10, 0, 0, UInt8(index)], port: 7946) }
    static let peers = (2...9).map(peer)

    static func pushes(_ directives: [ReplicationDirective]) -> [(entries: [Entry], hops: Int, to: NodeAddress)] {
        directives.compactMap { if case .push(let entries, let hops, _, _, let to) = $0 { (entries, hops, to) } else { nil } }
    }

    @Test func localWrite_inASmallSwarm_goesStraightToEveryPeer_unrelayed() throws {
        var node = Replication(localName: "a", seed: 1)
        let (entry, out) = try node.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: Self.peers)
        #expect(Set(Self.pushes(out).map(\.to)) == Set(Self.peers))
        #expect(Self.pushes(out).allSatisfy { $0.entries == [entry] && $0.hops == Replication.unrelayedHops })
    }

    @Test func localWrite_isPushedToFanoutPeers() throws {
        var settings = ReplicationSettings()
        settings.directPushLimit = 1
        var node = Replication(localName: "a", settings: settings, seed: 1)
        let (entry, out) = try node.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: Self.peers)
        let pushed = Self.pushes(out)
        #expect(pushed.count == 3 && Set(pushed.map(\.to)).count == 3)
        #expect(pushed.allSatisfy { $0.entries == [entry] && $0.hops == 0 })
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

    @Test func newsIsRelayedWithOneMoreHop_oldNewsIsNot() throws {
        var writer = Replication(localName: "a", seed: 1)
        var relay = Replication(localName: "b", seed: 2)
        let (entry, _) = try writer.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: Self.peers)
        let first = relay.receivePush([entry], hops: 0, from: Self.peer(1), wallMilliseconds: 1_000, peers: Self.peers)
        let relayed = Self.pushes(first)
        #expect(relayed.count == 3 && relayed.allSatisfy { $0.hops == 1 && $0.to != Self.peer(1) })
        #expect(first.contains(.applied([entry])))
        #expect(relay.receivePush([entry], hops: 0, from: Self.peer(3), wallMilliseconds: 1_000, peers: Self.peers).isEmpty)
    }

    @Test func relayingStopsAtTheHopBound() throws {
        var writer = Replication(localName: "a", seed: 1)
        var relay = Replication(localName: "b", seed: 2)
        let (entry, _) = try writer.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: [])
        let limit = Replication.hopLimit(swarmSize: Self.peers.count + 1, fanout: 3)
        let out = relay.receivePush([entry], hops: limit, from: Self.peer(1), wallMilliseconds: 1_000, peers: Self.peers)
        #expect(Self.pushes(out).isEmpty)
        #expect(relay.read("k", wallMilliseconds: 1_000) == entry, "still applied")
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
        var last = Replication(localName: "c", seed: 3)
        let (entries, out) = try writer.write(
            [.init(key: "k", value: [1])], wallMilliseconds: 1_000, peers: [Self.peer(2)], awaitingReplicas: true)
        let version = entries[0].version
        guard case .push(let pushed, let hops, true, _, _) = out.first else {
            Issue.record("the push does not ask for acknowledgement: \(out)")
            return
        }
        #expect(writer.holders(of: [version], among: ["b", "c"]).isEmpty)

        let atRelay = relay.receivePush(pushed, hops: hops, acknowledge: true, from: Self.peer(1), wallMilliseconds: 1_000, peers: [Self.peer(3)])
        #expect(atRelay.contains(.acknowledge([version], to: "a")))
        guard case .push(let relayed, let relayHops, true, _, _) = atRelay.first(where: { if case .push = $0 { true } else { false } }) else {
            Issue.record("the relay does not pass the acknowledgement request on")
            return
        }
        let atLast = last.receivePush(relayed, hops: relayHops, acknowledge: true, from: Self.peer(2), wallMilliseconds: 1_000, peers: [])
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
        let atReader = reader.receivePush([entry], hops: 0, from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(!atReader.contains { if case .acknowledge = $0 { true } else { false } })
    }

    @Test func aPeersDigest_showsWhichWritesItHolds() throws {
        var writer = Replication(localName: "a", seed: 1)
        var peer = Replication(localName: "b", seed: 2)
        let (entry, _) = try writer.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: [])
        _ = writer.answerPull(digest: peer.store.digest, from: "b")
        #expect(writer.holders(of: [entry.version], among: ["b"]).isEmpty, "b's digest predates the write")
        let answer = writer.answerPull(digest: peer.store.digest, from: "b")
        _ = peer.receivePullAnswer(entries: answer.entries, digest: answer.digest, from: "a", wallMilliseconds: 1_000)
        _ = writer.answerPull(digest: peer.store.digest, from: "b")
        #expect(writer.holders(of: [entry.version], among: ["b"]) == ["b"], "b's next pull shows it holds the write")
        #expect(writer.peerLagMilliseconds == ["b": 0])
    }

    @Test func peerLag_isHowFarBehindOurDigestAPeersDigestWas() throws {
        var writer = Replication(localName: "a", seed: 1)
        _ = try writer.write(key: "k", value: [1], wallMilliseconds: 5_000, peers: [])
        _ = writer.answerPull(digest: ["a": HybridTimestamp(milliseconds: 3_500, logical: 0)], from: "b")
        _ = writer.answerPull(digest: [:], from: "c")
        #expect(writer.peerLagMilliseconds == ["b": 1_500, "c": 5_000])
    }

    @Test func pushAgain_goesStraightToTheLaggardsWithoutRelaying() throws {
        var writer = Replication(localName: "a", seed: 1)
        let (entry, _) = try writer.write(key: "k", value: [1], wallMilliseconds: 1_000, peers: [])
        let out = writer.pushAgain([entry], to: [Self.peer(4)])
        #expect(out == [.push([entry], hops: Replication.unrelayedHops, acknowledge: true, after: nil, to: Self.peer(4))])
    }

    @Test func chainedPushes_advanceTheDigest_untilAGap() throws {
        var writer = Replication(localName: "a", seed: 1)
        var reader = Replication(localName: "b", seed: 2)
        func pushed(_ key: String) throws -> (entries: [Entry], after: HybridTimestamp?) {
            let (_, out) = try writer.write(key: key, value: [1], wallMilliseconds: 1_000, peers: [Self.peer(2)])
            guard case .push(let entries, _, _, let after, _) = out.first else { throw NodeError(.emptyKey, "", hint: "") }
            return (entries, after)
        }
        let first = try pushed("k1")
        #expect(first.after == nil, "a writer with no known history claims nothing")
        _ = reader.receivePush(first.entries, hops: 255, after: first.after, from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(reader.store.digest["a"] == nil)
        // Anti-entropy once; from then on pushes keep the digest current by themselves.
        let answer = writer.answerPull(digest: reader.store.digest, from: "b")
        _ = reader.receivePullAnswer(entries: answer.entries, digest: answer.digest, from: "a", wallMilliseconds: 1_000)
        let second = try pushed("k2")
        _ = reader.receivePush(second.entries, hops: 255, after: second.after, from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(reader.store.digest["a"] == second.entries[0].version.timestamp)
        _ = try pushed("k3")  // lost
        let fourth = try pushed("k4")
        _ = reader.receivePush(fourth.entries, hops: 255, after: fourth.after, from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(reader.store.digest["a"] == second.entries[0].version.timestamp, "a gap stops the chain")
        #expect(writer.answerPull(digest: reader.store.digest, held: reader.store.heldSummary(), from: "b").entries.map(\.key) == ["k3"])
    }

    @Test func hopLimit_growsWithTheLogarithmOfTheSwarm() {
        #expect(Replication.hopLimit(swarmSize: 5, fanout: 3) == 2)
        #expect(Replication.hopLimit(swarmSize: 1_000, fanout: 3) == 6)
        #expect(Replication.hopLimit(swarmSize: 100_000, fanout: 3) == 10)
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
        let tick = node.antiEntropyTimerFired(peers: Self.peers, wallMilliseconds: 1_000)
        #expect(tick.contains(.startPullRetryTimer(after: .milliseconds(200))))
        #expect(node.pullRetryTimerFired(peers: Self.peers).contains { if case .pull = $0 { true } else { false } })
        #expect(!node.pullRetryTimerFired(peers: Self.peers).isEmpty)
        #expect(node.pullRetryTimerFired(peers: Self.peers).isEmpty, "two retries per round")
        _ = node.antiEntropyTimerFired(peers: Self.peers, wallMilliseconds: 2_000)
        _ = node.receivePullAnswer(entries: [], digest: [:], from: "a", replyingTo: Self.peer(1), wallMilliseconds: 2_000)
        #expect(node.pullRetryTimerFired(peers: Self.peers).isEmpty, "answered: no retry")
    }

    @Test func entriesFromTooFarInTheFuture_areIgnored() {
        var node = Replication(localName: "b", seed: 2)
        let future = Entry(key: "k", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 10_000_000, logical: 0), origin: "a"))
        _ = node.receivePush([future], hops: 0, from: Self.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(node.store.entries.isEmpty)
    }
}

struct EphemeralTests {
    @Test func ephemeralValues_vanishWhenTheirWriterDeparts_andReturnWithIt() throws {
        var writer = Replication(localName: "a", seed: 1)
        var reader = Replication(localName: "b", seed: 2)
        let (presence, _) = try writer.write(key: "presence/a", value: [1], ephemeral: true, wallMilliseconds: 1_000, peers: [])
        let (durable, _) = try writer.write(key: "config", value: [2], wallMilliseconds: 1_000, peers: [])
        _ = reader.receivePush([presence, durable], hops: 0, from: ReplicationTests.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(reader.read("presence/a", wallMilliseconds: 1_000) == presence)
        reader.writer("a", isLive: false)
        #expect(reader.read("presence/a", wallMilliseconds: 1_000) == nil)
        #expect(reader.read("config", wallMilliseconds: 1_000) == durable, "non-ephemeral values stay")
        #expect(reader.list(prefix: "", wallMilliseconds: 1_000).map(\.key) == ["config"])
        reader.writer("a", isLive: true)
        #expect(reader.read("presence/a", wallMilliseconds: 1_000) == presence)
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
