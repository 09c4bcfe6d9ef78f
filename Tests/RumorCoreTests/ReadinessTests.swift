import Testing

@testable import RumorCore

/// Readiness (`Node+Readiness.swift`), driven by hand with explicit times: a node that joins is
/// syncing until a peer's complete answer is merged, pulls at once after the join instead of
/// waiting for the anti-entropy round, and is ready anyway after `readyTimeout`; a lone node is
/// ready at once; writes go through while syncing.
struct ReadinessTests {
    static let a = NodeAddress(ip: [10, 0, 0, 1], port: 7946)
    static let b = NodeAddress(ip: [10, 0, 0, 2], port: 7946)
    static let c = NodeAddress(ip: [10, 0, 0, 3], port: 7946)

    static func time(_ milliseconds: Int64) -> NodeTime {
        NodeTime(now: Instant(nanoseconds: milliseconds * 1_000_000), wallMilliseconds: 1_800_000_000_000 + UInt64(milliseconds))
    }

    static func node(_ name: String, at address: NodeAddress, maximumMessageBytes: Int? = nil) -> Node {
        var settings = NodeSettings()
        if let maximumMessageBytes { settings.replication.maximumMessageBytes = maximumMessageBytes }
        return Node(name: name, address: address, settings: settings, seeds: NodeSeeds(membership: 1, replication: 2), at: time(0))
    }

    static func member(_ name: String, at address: NodeAddress, replicates: Bool = true) -> PushNodeState {
        let meta = replicates ? Node.advertisedMeta([:], generation: 1, as: .serf) : Array("role=go".utf8)
        return PushNodeState(name: name, address: address, meta: meta, incarnation: 1, state: .alive, versions: .rumor)
    }

    /// `node` joins `seed` at `at` ms: the join's push-pull answered with `members`.
    static func join(_ node: inout Node, _ seed: NodeAddress, members: [PushNodeState], at: Int64) -> [NodeEffect] {
        _ = node.join(seeds: [seed], command: 1, retrying: true, at: time(at))
        return node.pushPullFinished(PushPull(join: false, nodes: members), with: seed, join: 1, at: time(at + 2))
    }

    static func sends(_ effects: [NodeEffect]) -> [(ReplicationFrame, NodeAddress)] {
        effects.compactMap { if case .send(.replication(let frame), let to) = $0 { (frame, to) } else { nil } }
    }

    static func pulls(_ effects: [NodeEffect]) -> [NodeAddress] {
        sends(effects).compactMap { if case .pullRequest = $0.0 { $0.1 } else { nil } }
    }

    static func readyReasons(_ effects: [NodeEffect]) -> [ReadyReason] {
        effects.compactMap { if case .ready(let reason) = $0 { reason } else { nil } }
    }

    static func logs(_ effects: [NodeEffect]) -> [NodeLog] {
        effects.compactMap { if case .log(let line) = $0 { line } else { nil } }
    }

    /// Delivers each replication datagram of `effects` from `from` to `to` (at `address`), and
    /// returns what `to` did.
    static func deliver(_ effects: [NodeEffect], from: NodeAddress, to node: inout Node, at address: NodeAddress, at ms: Int64)
        -> [NodeEffect]
    {
        var out: [NodeEffect] = []
        for (frame, destination) in sends(effects) where destination == address {
            out += node.receive([.replication(frame)], from: from, at: time(ms))
        }
        return out
    }

    @Test func aLoneNode_withNothingToJoin_isReadyAtOnce() {
        var node = Self.node("a", at: Self.a)
        let effects = node.start(at: Self.time(0))
        #expect(node.readiness == .ready(.alone))
        #expect(Self.readyReasons(effects) == [.alone])
        #expect(!effects.contains(.startTimer(.readyTimeout, after: .seconds(10))))
    }

    @Test func aJoiningNode_isSyncing_untilAPeersPullAnswerIsMerged() throws {
        var b = Self.node("b", at: Self.b)
        _ = b.start(at: Self.time(0))
        _ = try b.write([Replication.Write(key: "counter", value: Array("10".utf8))], at: Self.time(1))

        var a = Self.node("a", at: Self.a)
        let started = a.start(at: Self.time(100), joining: true)
        #expect(a.readiness == .syncing(since: Self.time(100).now))
        #expect(started.contains(.startTimer(.readyTimeout, after: .seconds(10))))
        #expect(Self.pulls(started).isEmpty, "no peer known before the join")

        // The join's answer makes b a peer: a pulls from it at once, not at the next round (1 s).
        let joined = Self.join(&a, Self.b, members: [Self.member("b", at: Self.b)], at: 120)
        #expect(Self.pulls(joined) == [Self.b])
        #expect(!a.readiness.isReady, "a pull sent is not a sync")
        let complete = { (effects: [NodeEffect]) in
            Self.sends(effects).compactMap { if case .pullRequest(_, _, _, _, let complete) = $0.0 { complete } else { nil } }
        }
        #expect(complete(joined) == [true], "syncing: everything, writes the tree is still delivering too")
        #expect(a.read("counter", at: Self.time(122)) == nil, "the core reads what it holds; the API refuses it while syncing")

        let answer = Self.deliver(joined, from: Self.a, to: &b, at: Self.b, at: 125)
        let merged = Self.deliver(answer, from: Self.b, to: &a, at: Self.a, at: 260)
        #expect(a.readiness == .ready(.synced(peer: "b", after: .milliseconds(160))))
        #expect(Self.readyReasons(merged) == [.synced(peer: "b", after: .milliseconds(160))])
        #expect(Self.logs(merged).contains { $0.message == "ready: synced with b in 160 ms" })
        #expect(a.read("counter", at: Self.time(261))?.value == Array("10".utf8))
        // Later rounds change nothing.
        #expect(a.timerFired(.readyTimeout, at: Self.time(10_100)).isEmpty)
        #expect(complete(a.timerFired(.antiEntropy, at: Self.time(10_200))) == [false], "ready: repairs only")
    }

    @Test func aJoiningNode_whosePeersNeverAnswer_isReadyAfterTheTimeout_withAWarning() {
        var a = Self.node("a", at: Self.a)
        _ = a.start(at: Self.time(0), joining: true)
        let joined = Self.join(&a, Self.b, members: [Self.member("b", at: Self.b), Self.member("c", at: Self.c)], at: 10)
        #expect(Self.pulls(joined).count == 1)
        // The pull goes unanswered; so do the retries and the anti-entropy rounds.
        for ms in stride(from: Int64(1_000), through: 9_000, by: 1_000) {
            _ = a.timerFired(.pullRetry, at: Self.time(ms - 800))
            _ = a.timerFired(.antiEntropy, at: Self.time(ms))
            #expect(!a.readiness.isReady)
        }
        let effects = a.timerFired(.readyTimeout, at: Self.time(10_000))
        #expect(a.readiness == .ready(.timedOut(after: .seconds(10))))
        let line = Self.logs(effects).first
        #expect(line?.level == .warning && line?.message.hasPrefix("ready: no peer answered in 10 s") == true)
    }

    @Test func theTimeoutIsASetting() {
        var settings = NodeSettings()
        settings.readyTimeout = .seconds(3)
        var a = Node(name: "a", address: Self.a, settings: settings, seeds: NodeSeeds(membership: 1, replication: 2), at: Self.time(0))
        #expect(a.start(at: Self.time(0), joining: true).contains(.startTimer(.readyTimeout, after: .seconds(3))))
        #expect(a.settings.readyTimeout == .seconds(3))
    }

    @Test func aJoinIntoASwarmWithoutReplicatingNodes_isReadyAtOnce() {
        var a = Self.node("a", at: Self.a)
        _ = a.start(at: Self.time(0), joining: true)
        let joined = Self.join(&a, Self.b, members: [Self.member("go", at: Self.b, replicates: false)], at: 10)
        #expect(a.readiness == .ready(.alone))
        #expect(Self.pulls(joined).isEmpty)
    }

    @Test func writesGoThroughWhileSyncing_andTheSyncBringsTheRestWithoutShadowingThem() throws {
        var b = Self.node("b", at: Self.b)
        _ = b.start(at: Self.time(0))
        _ = try b.write([Replication.Write(key: "b/old", value: [1]), Replication.Write(key: "shared", value: [1])], at: Self.time(1))

        var a = Self.node("a", at: Self.a)
        _ = a.start(at: Self.time(100), joining: true)
        let written = try a.write([Replication.Write(key: "a/new", value: [2]), Replication.Write(key: "shared", value: [2])], at: Self.time(110))
        #expect(written.entries.count == 2 && !a.readiness.isReady)

        let joined = Self.join(&a, Self.b, members: [Self.member("b", at: Self.b)], at: 120)
        let answer = Self.deliver(joined, from: Self.a, to: &b, at: Self.b, at: 125)
        let back = Self.deliver(answer, from: Self.b, to: &a, at: Self.a, at: 130)
        #expect(a.readiness.isReady)
        #expect(a.read("b/old", at: Self.time(131))?.value == [1], "the sync brought b's older key")
        #expect(a.read("shared", at: Self.time(131))?.value == [2], "the newer local write stands")
        // a pushes back what b lacks: the exchange is push-pull.
        _ = Self.deliver(back, from: Self.a, to: &b, at: Self.b, at: 132)
        #expect(b.read("a/new", at: Self.time(133))?.value == [2])
    }

    @Test func aCatchUp_makesTheNodeReady_onlyAtItsLastPage() {
        var b = Self.node("b", at: Self.b, maximumMessageBytes: 300)
        _ = b.start(at: Self.time(0))
        for i in 0..<20 { _ = try? b.write([Replication.Write(key: "k\(i)", value: Array(repeating: 0x61, count: 40))], at: Self.time(1)) }

        var a = Self.node("a", at: Self.a, maximumMessageBytes: 300)
        _ = a.start(at: Self.time(100), joining: true)
        let joined = Self.join(&a, Self.b, members: [Self.member("b", at: Self.b)], at: 120)
        let firstPage = Self.deliver(joined, from: Self.a, to: &b, at: Self.b, at: 125)
        let merged = Self.deliver(firstPage, from: Self.b, to: &a, at: Self.a, at: 130)
        #expect(!a.readiness.isReady, "the first page of a large delta is not a sync")
        guard case .catchUp(.catchUpRequest(_, let digest, let held), _)? = merged.first(where: { if case .catchUp = $0 { true } else { false } })
        else {
            Issue.record("no catch-up started: \(merged)")
            return
        }
        guard var serving = b.catchUpRequested(from: "a", digest: digest, held: held, sender: Self.a, at: Self.time(131)).serving else {
            Issue.record("the catch-up was refused")
            return
        }
        var pages = 0
        while !serving.isFinished {
            let frame = b.nextCatchUpPage(&serving)
            guard case .catchUpPage(let page) = frame else { break }
            pages += 1
            _ = a.catchUpPageArrived(page, from: Self.b, at: Self.time(140 + Int64(pages)))
            #expect(a.readiness.isReady == page.isLast)
        }
        _ = a.catchUpEnded(completed: true)
        #expect(pages > 1)
        #expect(a.readiness == .ready(.synced(peer: "b", after: .milliseconds(40 + Int64(pages)))))
        #expect((0..<20).allSatisfy { a.read("k\($0)", at: Self.time(200)) != nil })
    }
}
