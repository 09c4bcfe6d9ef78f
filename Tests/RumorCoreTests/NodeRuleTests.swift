import Testing

@testable import RumorCore

/// The rules a whole node adds on top of its machines, each driven by hand: inputs in, effects
/// checked, no sockets and no clock.
struct NodeRuleTests {
    static let a = NodeAddress(ip: [10, 0, 0, 1], port: 7946)
    static let b = NodeAddress(ip: [10, 0, 0, 2], port: 7946)
    static let c = NodeAddress(ip: [10, 0, 0, 3], port: 7946)

    static func time(_ milliseconds: Int64) -> NodeTime {
        NodeTime(now: Instant(nanoseconds: milliseconds * 1_000_000), wallMilliseconds: 1_800_000_000_000 + UInt64(milliseconds))
    }

    static func node(_ name: String = "a", at address: NodeAddress = a, durable: Bool = false) -> Node {
        var settings = NodeSettings()
        settings.durable = durable
        return Node(name: name, address: address, settings: settings, seeds: NodeSeeds(membership: 1, replication: 2), at: time(0))
    }

    /// `node` learns that `name` at `address` is alive and replicates.
    static func meet(_ node: inout Node, _ name: String, at address: NodeAddress) {
        let alive = Alive(
            incarnation: 1, node: name, address: address, meta: Node.advertisedMeta([:], generation: 1, as: .serf), versions: .rumor)
        _ = node.receive([.membership(.alive(alive))], from: address, at: time(0))
    }

    static func timers(_ effects: [NodeEffect]) -> [NodeTimer] {
        effects.compactMap { if case .startTimer(let timer, _) = $0 { timer } else { nil } }
    }

    static func results(_ effects: [NodeEffect]) -> [CommandID: CommandResult] {
        var out: [CommandID: CommandResult] = [:]
        for case .complete(let id, let result) in effects { out[id] = result }
        return out
    }

    @Test func fixedPeers_startNoMembershipTimers() {
        var settings = NodeSettings()
        settings.peers = .fixed([Self.a, Self.b])
        var node = Node(name: "a", address: Self.a, settings: settings, seeds: NodeSeeds(membership: 1, replication: 2), at: Self.time(0))
        #expect(Self.timers(node.start(at: Self.time(0))) == [.antiEntropy])
        #expect(node.replicationPeers() == [Self.a, Self.b])
    }

    @Test func onlyMembersCarryingTheMarker_areReplicationPeers() {
        var node = Self.node()
        Self.meet(&node, "b", at: Self.b)
        let go = Alive(incarnation: 1, node: "go", address: Self.c, meta: Array("role=web".utf8), versions: .rumor)
        _ = node.receive([.membership(.alive(go))], from: Self.c, at: Self.time(0))
        #expect(node.membership.members.count == 3)
        #expect(node.replicationPeers() == [Self.b])
    }

    @Test func waitForReplicas_completesOnAcknowledgement_failsAtTheDeadlineNamingTheMissing() throws {
        var node = Self.node()
        Self.meet(&node, "b", at: Self.b)
        Self.meet(&node, "c", at: Self.c)
        let wait = Node.ReplicaWaitRequest(target: .all, timeout: .seconds(1), command: 7)
        let outcome = try node.write([Replication.Write(key: "k", value: [1])], awaiting: wait, at: Self.time(0))
        #expect(Self.timers(outcome.effects).contains(.replicaWaits))
        let version = outcome.entries[0].version
        var effects = node.receive([.replication(.acknowledgement(from: "b", versions: [version]))], from: Self.b, at: Self.time(10))
        #expect(Self.results(effects).isEmpty, "c has not acknowledged yet")
        // The repair timer pushes again, only to the node that lacks the write.
        effects = node.timerFired(.replicaWaits, at: Self.time(200))
        let pushedTo = effects.compactMap { if case .send(.replication(.push), let to) = $0 { to } else { nil } }
        #expect(pushedTo == [Self.c])
        effects = node.timerFired(.replicaWaits, at: Self.time(1_000))
        guard case .failed(let error)? = Self.results(effects)[7] else {
            Issue.record("the wait did not fail at its deadline: \(effects)")
            return
        }
        #expect(error.code == .replicationTimeout && error.message.contains("not yet: c"))
    }

    @Test func waitForReplicas_withEnoughHolders_completesWithThem() throws {
        var node = Self.node()
        Self.meet(&node, "b", at: Self.b)
        let wait = Node.ReplicaWaitRequest(target: .count(2), timeout: .seconds(1), command: 3)
        let outcome = try node.write([Replication.Write(key: "k", value: [1])], awaiting: wait, at: Self.time(0))
        let effects = node.receive(
            [.replication(.acknowledgement(from: "b", versions: [outcome.entries[0].version]))], from: Self.b, at: Self.time(5))
        #expect(Self.results(effects)[3] == .replicated(holders: ["b"]))
    }

    @Test func aNodeThatLeft_refusesWrites() {
        var node = Self.node()
        _ = node.leave(command: 1, at: Self.time(0))
        #expect(throws: NodeError.self) { try node.write([Replication.Write(key: "k", value: [1])], at: Self.time(1)) }
    }

    @Test func leave_completesWhenItsTimeoutFires() {
        var node = Self.node()
        Self.meet(&node, "b", at: Self.b)
        let effects = node.leave(command: 4, at: Self.time(0))
        #expect(Self.timers(effects).contains(.leaveTimeout))
        #expect(Self.results(node.timerFired(.leaveTimeout, at: Self.time(3_000)))[4] == .left)
        #expect(node.leaveCompleted)
        #expect(Self.results(node.leave(command: 5, at: Self.time(3_001)))[5] == .left, "a second leave completes at once")
    }

    @Test func startUpJoin_thatReachesNoSeed_retriesWithDoublingBackoff() {
        var node = Self.node()
        var effects = node.join(seeds: [Self.b], command: 1, retrying: true, at: Self.time(0))
        #expect(effects.count == 1)
        effects = node.pushPullFinished(nil, with: Self.b, join: 1, at: Self.time(5))
        #expect(effects.contains(.startTimer(.joinRetry, after: .seconds(1))))
        #expect(node.timerFired(.joinRetry, at: Self.time(1_005)) == [.retryJoin])
        _ = node.join(seeds: [Self.b], command: 2, retrying: true, at: Self.time(1_005))
        effects = node.pushPullFinished(nil, with: Self.b, join: 2, at: Self.time(1_010))
        #expect(effects.contains(.startTimer(.joinRetry, after: .seconds(2))))
    }

    @Test func afterAJoin_twoFollowUpExchanges_goToMembersOtherThanTheSeed() {
        var node = Self.node()
        _ = node.join(seeds: [Self.b], command: 1, at: Self.time(0))
        let state = PushPull(
            join: false,
            nodes: [
                PushNodeState(name: "b", address: Self.b, meta: Node.advertisedMeta([:], generation: 1, as: .serf), incarnation: 1, state: .alive, versions: .rumor),
                PushNodeState(name: "c", address: Self.c, meta: Node.advertisedMeta([:], generation: 1, as: .serf), incarnation: 1, state: .alive, versions: .rumor),
            ])
        let joined = node.pushPullFinished(state, with: Self.b, join: 1, at: Self.time(5))
        #expect(joined.contains(.startTimer(.joinFollowUp, after: .milliseconds(300))))
        let first = node.timerFired(.joinFollowUp, at: Self.time(305))
        let exchanges = first.compactMap { if case .pushPull(_, let to, _) = $0 { to } else { nil } }
        #expect(exchanges == [Self.c], "the follow-up avoids the seed")
        #expect(first.contains(.startTimer(.joinFollowUp, after: .milliseconds(600))))
        let second = node.timerFired(.joinFollowUp, at: Self.time(905))
        #expect(second.contains { if case .pushPull = $0 { true } else { false } })
        #expect(!second.contains { if case .startTimer(.joinFollowUp, _) = $0 { true } else { false } }, "two, no more")
    }

    @Test func operatorJoin_thatReachesNoSeed_fails() {
        var node = Self.node()
        _ = node.join(seeds: [Self.b, Self.c], command: 9, at: Self.time(0))
        #expect(node.pushPullFinished(nil, with: Self.b, join: 9, at: Self.time(1)).isEmpty, "one seed still out")
        let effects = node.pushPullFinished(nil, with: Self.c, join: 9, at: Self.time(2))
        guard case .failed(let error)? = Self.results(effects)[9] else {
            Issue.record("no failure: \(effects)")
            return
        }
        #expect(error.code == .joinFailed)
    }

    @Test func pushPullsFromOneHost_areRateLimited() {
        var node = Self.node()
        let state = PushPull(join: false, nodes: [], userState: [])
        var logged = 0
        let answered = (0..<20).filter { _ in
            let (reply, effects) = node.answer(.pushPull(state), from: Self.b, at: Self.time(0))
            logged += effects.count { if case .log(let line) = $0 { line.level == .warning } else { false } }
            return reply != nil
        }
        #expect(answered.count == 16)
        #expect(node.counters[.rateLimitedPushPull] == 4)
        #expect(logged == 3, "refusals 1, 2 and 4 are logged, not only counted")
    }

    @Test func aJoinPastTheHostLimit_isAnsweredWithASample_notRefused() {
        var node = Self.node()
        for index in 0..<40 { Self.meet(&node, "m\(index)", at: NodeAddress(ip: [10, 0, 1, UInt8(index)], port: 7946)) }
        let plain = PushPull(join: false, nodes: [], userState: [])
        for _ in 0..<16 { _ = node.answer(.pushPull(plain), from: Self.b, at: Self.time(0)) }
        #expect(node.answer(.pushPull(plain), from: Self.b, at: Self.time(0)).reply == nil, "the host's bucket is empty")
        let join = PushPull(join: true, nodes: [], userState: [])
        guard case .pushPull(let answer)? = node.answer(.pushPull(join), from: Self.b, at: Self.time(0)).reply else {
            Issue.record("a join past the limit was refused")
            return
        }
        #expect(answer.nodes.count == 17, "this node and 16 random members, not all 41")
    }

    @Test func pullAnswer_toOurPull_isCountedAsSync_andSavedWithTheApplied() throws {
        var node = Self.node(durable: true)
        Self.meet(&node, "b", at: Self.b)
        _ = node.timerFired(.antiEntropy, at: Self.time(1_000))
        #expect(node.pendingPulls[Self.b] != nil)
        let entry = Entry(
            key: "k", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 1_800_000_000_500, logical: 0), origin: "b"))
        let answer = ReplicationFrame.pullAnswer(from: "b", wallMilliseconds: 0, entries: [entry], digest: ["b": entry.version.timestamp], held: [:])
        let effects = node.receive([.replication(answer)], from: Self.b, at: Self.time(1_010))
        #expect(node.pendingPulls.isEmpty)
        #expect(node.counters[.replicationPullsCompleted] == 1)
        #expect(node.lastSynced == Self.time(1_010).wallMilliseconds)
        #expect(effects.contains(.changesRecorded))
        let saved = effects.compactMap { effect -> [Entry]? in
            if case .store(.save(let entries, _, _)) = effect { entries } else { nil }
        }
        #expect(saved == [[entry]], "the applied entry is saved before the sync is recorded")
        #expect(effects.contains(.store(.synced(atMilliseconds: Self.time(1_010).wallMilliseconds))))
    }

    @Test func pushedEntries_areSavedTogetherWhenTheSaveTimerFires() {
        var node = Self.node(durable: true)
        let entry = Entry(
            key: "k", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 1_800_000_000_000, logical: 1), origin: "b"))
        let effects = node.receive(
            [.replication(.push(entries: [entry], relay: .none, acknowledge: false))], from: Self.b, at: Self.time(0))
        #expect(Self.timers(effects) == [.save])
        #expect(!effects.contains { if case .store = $0 { true } else { false } }, "not saved at once")
        let flushed = node.timerFired(.save, at: Self.time(5))
        guard case .store(.save(let entries, let sequences, _))? = flushed.first else {
            Issue.record("nothing saved: \(flushed)")
            return
        }
        #expect(entries == [entry] && sequences == ["k": 1])
    }

    @Test func aLocalWrite_isSavedBeforeItIsSeen_withTheQueuedRemoteStateInOneTransaction() throws {
        var node = Self.node(durable: true)
        let pushed = Entry(
            key: "remote", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 1_800_000_000_000, logical: 1), origin: "b"))
        _ = node.receive([.replication(.push(entries: [pushed], relay: .none, acknowledge: false))], from: Self.b, at: Self.time(0))
        let prepared = try node.prepareWrite([Replication.Write(key: "k", value: [2])], at: Self.time(1))
        #expect(node.read("k", at: Self.time(1)) == nil, "not visible before it is saved")
        guard case .save(let entries, let sequences, let digest)? = prepared.save else {
            Issue.record("no save")
            return
        }
        #expect(Set(entries.map(\.key)) == ["k", "remote"])
        #expect(digest[prepared.entries[0].version.writer] == prepared.entries[0].version.timestamp)
        let outcome = node.commitWrite(prepared, at: Self.time(1))
        #expect(node.read("k", at: Self.time(1)) == outcome.entries[0])
        #expect(node.replication.store.sequence(of: "k") == sequences["k"], "the saved change-log position is the one given")
    }

    @Test func aLocalWriteWhoseSaveFailed_isNeverSeen_andTheRemoteStateItCarriedIsSavedLater() throws {
        var node = Self.node(durable: true)
        let pushed = Entry(
            key: "remote", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 1_800_000_000_000, logical: 1), origin: "b"))
        _ = node.receive([.replication(.push(entries: [pushed], relay: .none, acknowledge: false))], from: Self.b, at: Self.time(0))
        let prepared = try node.prepareWrite([Replication.Write(key: "k", value: [2])], at: Self.time(1))
        node.abandonWrite(prepared)
        #expect(node.read("k", at: Self.time(1)) == nil)
        #expect(node.replication.store.digest["a"] == nil, "no trace in the digest either")
        let flushed = node.timerFired(.save, at: Self.time(5))
        guard case .store(.save(let entries, _, _))? = flushed.first else {
            Issue.record("the queued remote state was dropped: \(flushed)")
            return
        }
        #expect(entries == [pushed])
    }

    @Test func aDurableNode_keepsSavedValuesOnDiskOnly_andTheirSizeForPaging() throws {
        var node = Self.node(durable: true)
        let prepared = try node.prepareWrite([Replication.Write(key: "k", value: Array(repeating: 7, count: 100))], at: Self.time(1))
        _ = node.commitWrite(prepared, at: Self.time(1))
        let before = node.replication.store.pagedBytes
        node.saved(try #require(prepared.save))
        let kept = try #require(node.replication.store.entries["k"])
        #expect(kept.value == nil && kept.storedValueBytes == 100 && kept.isValueOnDisk && !kept.isTombstone)
        #expect(node.read("k", at: Self.time(2))?.isValueOnDisk == true, "still live: the driver loads the value")
        #expect(node.replication.store.pagedBytes == before)
        // A newer write of the key is held in memory again until it is saved.
        let newer = try node.prepareWrite([Replication.Write(key: "k", value: [1])], at: Self.time(3))
        _ = node.commitWrite(newer, at: Self.time(3))
        #expect(node.replication.store.entries["k"]?.value == [1])
        // A save of an older version evicts nothing.
        node.saved(try #require(prepared.save))
        #expect(node.replication.store.entries["k"]?.value == [1])
    }

    @Test func aFailedSaveOfRemoteState_isQueuedAgain_andRetried() {
        var node = Self.node(durable: true)
        let pushed = Entry(
            key: "remote", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 1_800_000_000_000, logical: 1), origin: "b"))
        _ = node.receive([.replication(.push(entries: [pushed], relay: .none, acknowledge: false))], from: Self.b, at: Self.time(0))
        let flushed = node.timerFired(.save, at: Self.time(5))
        guard case .store(let write)? = flushed.first else {
            Issue.record("nothing to save")
            return
        }
        let retry = node.saveFailed(write, at: Self.time(6))
        #expect(Self.timers(retry) == [.save])
        guard case .store(.save(let entries, _, _))? = node.timerFired(.save, at: Self.time(1_006)).first else {
            Issue.record("not retried")
            return
        }
        #expect(entries == [pushed])
    }

    @Test func keyringExchange_talliesEveryAnswer_andNamesTheNodesThatFailed() {
        var node = Self.node()
        Self.meet(&node, "b", at: Self.b)
        Self.meet(&node, "c", at: Self.c)
        let key = [UInt8](repeating: 1, count: 16)
        let asks = node.rotateKeyring(.list, local: .response(keys: [key], error: nil), command: 5)
        #expect(asks.count == 2)
        #expect(node.keyringAnswered(.response(keys: [key], error: nil), from: "b", command: 5).isEmpty)
        let effects = node.keyringAnswered(nil, failure: "timed out", from: "c", command: 5)
        guard case .keyring(let tally)? = Self.results(effects)[5] else {
            Issue.record("no tally: \(effects)")
            return
        }
        #expect(tally.nodes == 3 && tally.responded == 2 && tally.keys[key] == 2 && tally.primaryKeys[key] == 2)
        #expect(tally.failures == ["c": "no answer: timed out"])
    }
}

/// Tags in both formats, and the replication tag that marks nodes replicating state.
struct NodeTagsTests {
    @Test func serfTagsRoundTripAndTextTagsParse() {
        let tags = ["role": "web", "dc": "east", "long": String(repeating: "v", count: 40)]
        #expect(NodeTags.decode(NodeTags.encode(tags, as: .serf)) == tags)
        #expect(NodeTags.decode(NodeTags.encode(tags, as: .text)) == tags)
        #expect(NodeTags.encode(["role": "db"], as: .serf) == [0xff, 0x81, 0xa4] + Array("role".utf8) + [0xa2] + Array("db".utf8))
        // Anything else is Serf's legacy form: the whole metadata is the role.
        #expect(NodeTags.decode(Array("web".utf8)) == ["role": "web"])
        #expect(NodeTags.decode([0xff, 0x81, 0xa4]) == nil)
    }

    @Test func membersReplicateByTheirTag_inEitherFormat() {
        func member(_ meta: [UInt8]) -> Member {
            Member(name: "m", address: NodeAddress(ip: [10, 0, 0, 9], port: 7946), meta: meta, incarnation: 1, state: .alive, stateChanged: .zero, versions: .serf)
        }
        #expect(Node.replicates(member(Node.advertisedMeta(["role": "web"], generation: 1, as: .serf))))
        #expect(Node.replicates(member(Node.advertisedMeta([:], generation: 1, as: .text))))
        #expect(Node.replicates(member(Array("rumor.kv=1".utf8))))
        #expect(!Node.replicates(member(NodeTags.encode(["role": "web"], as: .serf))))
        #expect(!Node.replicates(member([])))
    }

    @Test func setTagsAnnouncesThemWithANewIncarnation_andRefusesTooMany() throws {
        var node = Node(
            name: "a", address: NodeAddress(ip: [10, 0, 0, 1], port: 7946), tags: ["role": "web"], settings: NodeSettings(),
            seeds: NodeSeeds(membership: 1, replication: 2), at: NodeTime(now: .zero, wallMilliseconds: 0))
        #expect(node.tags == ["role": "web", "rumor.kv": "1", "rumor.gen": "0000000000000001"], "the process generation announced")
        let before = node.membership.localMember.incarnation
        let effects = try node.setTags(["role": "db"], at: NodeTime(now: .zero, wallMilliseconds: 0))
        #expect(node.tags == ["role": "db", "rumor.kv": "1", "rumor.gen": "0000000000000001"])
        #expect(node.membership.localMember.incarnation == before + 1)
        #expect(effects.contains { if case .memberEvent(let event) = $0 { event.kind == .updated } else { false } })
        #expect(throws: NodeError.self) { try node.setTags(["big": String(repeating: "x", count: 600)], at: NodeTime(now: .zero, wallMilliseconds: 0)) }
        #expect(node.tags == ["role": "db", "rumor.kv": "1", "rumor.gen": "0000000000000001"])
    }
}

/// The counter names `rumor info` reports, which scripts and the fault suite read.
struct NodeCounterNameTests {
    @Test func everyCounterIsNamedAfterItselfAndTheNamesKeepTheirSpelling() {
        let names = NodeCounter.allCases.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(NodeCounter.memberEventsFailed.name == "member_events_failed")
        #expect(NodeCounter.memberEventsReaped.name == "member_events_reaped")
        #expect(NodeCounter.replicationPushesSent.name == "replication_pushes_sent")
        #expect(NodeCounter.catchUpsServed.name == "catch_ups_served")
        #expect(NodeCounter.directEventsSent.name == "direct_events_sent")
        #expect(names.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "_" } })
    }
}

struct NodeCountersTests {
    /// Refusals are logged when their count passes 1, 2, 4, 8…, whether they come one at a time
    /// (rate limits) or in batches (refused entries).
    @Test func passingAPowerOfTwo_isSeenOneAtATime_andInBatches() {
        var counters = NodeCounters()
        let single = (1...9).map { _ in counters.addPassingPowerOfTwo(.rateLimitedPull) }
        #expect(single == [true, true, false, true, false, false, false, true, false])
        #expect(counters.addPassingPowerOfTwo(.replicationEntriesRefused, 3) == true)
        #expect(counters.addPassingPowerOfTwo(.replicationEntriesRefused, 1) == true, "3 → 4")
        #expect(counters.addPassingPowerOfTwo(.replicationEntriesRefused, 3) == false, "4 → 7")
        #expect(counters.addPassingPowerOfTwo(.replicationEntriesRefused, 10) == true, "7 → 17 passes 8 and 16")
        #expect(counters.addPassingPowerOfTwo(.replicationEntriesRefused, 0) == false)
    }
}
