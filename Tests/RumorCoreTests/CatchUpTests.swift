import Testing

@testable import RumorCore
import RumorSimulation

/// Catch-up in bounded pages: every page under the limit, pages that add up to the delta, a
/// digest that advances page by page (so an interrupted catch-up resumes, with any peer), and
/// spans that never claim writes the sender did not hold.
struct CatchUpTests {
    static func peer(_ index: Int) -> NodeAddress { NodeAddress(ip: [10, 0, 0, UInt8(index)], port: 7946) }

    /// A store holding `count` writes from each of `writers`, 40-byte values.
    static func store(writers: [String], count: Int) -> KeyValueStore {
        var store = KeyValueStore()
        for (w, writer) in writers.enumerated() {
            for i in 0..<count {
                let timestamp = HybridTimestamp(milliseconds: UInt64(1_000 + i), logical: UInt16(w))
                store.writeLocally(
                    Entry(key: "\(writer)/\(i)", value: Array(repeating: 0x61, count: 40), version: Version(timestamp: timestamp, origin: writer)))
            }
        }
        return store
    }

    /// Pages `source` serves to `target` from `target`'s digest, merged in order; stops after
    /// `limit` pages. Returns the pages.
    @discardableResult
    static func catchUp(_ target: inout KeyValueStore, from source: KeyValueStore, maximumBytes: Int, limit: Int = .max) -> [KeyValueStore.Page] {
        let asked = target.digest
        var cursor: KeyValueStore.PageCursor?
        var pages: [KeyValueStore.Page] = []
        repeat {
            let page = source.page(since: asked, from: cursor, maximumBytes: maximumBytes)
            target.merge(page.entries)
            target.acknowledge(spans: page.spans)
            pages.append(page)
            cursor = page.next
        } while cursor != nil && pages.count < limit
        return pages
    }

    @Test func pagesStayUnderTheLimit_andAddUpToTheWholeState() {
        let source = Self.store(writers: ["a", "b", "c"], count: 300)
        var target = KeyValueStore()
        let pages = Self.catchUp(&target, from: source, maximumBytes: 2_000)
        #expect(pages.count > 10)
        #expect(pages.allSatisfy { $0.bytes <= 2_000 && !$0.entries.isEmpty })
        #expect(pages.reduce(0) { $0 + $1.entries.count } == 900, "each entry sent once")
        #expect(target == source, "same entries and digest")
        #expect(source.page(since: target.digest, maximumBytes: 2_000).entries.isEmpty, "nothing left")
    }

    @Test func aPageHoldsAtLeastOneEntry_evenOneLargerThanTheLimit() {
        var source = KeyValueStore()
        source.writeLocally(Entry(key: "big", value: Array(repeating: 1, count: 5_000), version: Version(timestamp: HybridTimestamp(milliseconds: 1, logical: 0), origin: "a")))
        let page = source.page(since: [:], maximumBytes: 1_000)
        #expect(page.entries.count == 1 && page.next == nil)
    }

    @Test func theDigestAdvancesPageByPage_soAnInterruptedCatchUpResumesWithAnotherPeer() {
        let source = Self.store(writers: ["a", "b"], count: 500)
        let otherPeer = source
        var target = KeyValueStore()
        let first = Self.catchUp(&target, from: source, maximumBytes: 3_000, limit: 5)
        let received = first.reduce(0) { $0 + $1.entries.count }
        #expect(received > 0 && received < 1_000)
        #expect(!target.digest.isEmpty, "the pages advanced the digest")
        // The connection drops; the next catch-up, with another peer, starts from the digest.
        let rest = Self.catchUp(&target, from: otherPeer, maximumBytes: 3_000)
        #expect(rest.reduce(0) { $0 + $1.entries.count } == 1_000 - received, "nothing sent twice, nothing missed")
        #expect(target == source)
    }

    @Test func spansNeverClaimWritesTheSenderHoldsOnlyAheadOfItsDigest() {
        var source = Self.store(writers: ["a"], count: 10)
        let digest = source.digest["a"]!
        // A push from "z" that arrived ahead of anti-entropy: held, but not vouched for.
        let ahead = Entry(key: "z/1", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 9_000, logical: 0), origin: "z"))
        source.merge(ahead)
        let page = source.page(since: [:], maximumBytes: 1 << 20)
        #expect(page.entries.contains(ahead))
        #expect(page.spans["a"]?.through == digest)
        #expect(page.spans["z"] == nil, "the sender holds z's write but not everything before it")
    }

    @Test func writesLandingBehindTheCursorAreLeftForTheNextRound_notClaimed() {
        var source = Self.store(writers: ["a", "b"], count: 200)
        var target = KeyValueStore()
        let asked = target.digest
        let first = source.page(since: asked, maximumBytes: 3_000)
        target.merge(first.entries)
        target.acknowledge(spans: first.spans)
        // While the pages go on, "a" writes again: behind the cursor if "a" was already passed.
        var cursor = first.next
        var late: Entry?
        while let position = cursor {
            if late == nil, position.writer == "b" {
                let entry = Entry(key: "a/late", value: [2], version: Version(timestamp: HybridTimestamp(milliseconds: 5_000, logical: 0), origin: "a"))
                source.writeLocally(entry)
                late = entry
            }
            let page = source.page(since: asked, from: position, maximumBytes: 3_000)
            target.merge(page.entries)
            target.acknowledge(spans: page.spans)
            cursor = page.next
        }
        let lateWrite = try! #require(late)
        #expect(target.entries["a/late"] == nil)
        #expect(target.digest["a"]! < lateWrite.version.timestamp, "the digest does not claim the late write")
        #expect(source.page(since: target.digest, maximumBytes: 3_000).entries == [lateWrite], "the next round brings it")
    }

    @Test func aPullLargerThanOneMessage_isAnsweredWithAFirstPage_thatStartsACatchUp() throws {
        var settings = ReplicationSettings()
        settings.maximumMessageBytes = 4_000
        var writer = Replication(localName: "a", settings: settings, seed: 1)
        var joiner = Replication(localName: "b", settings: settings, seed: 2)
        for i in 0..<500 { _ = try writer.write(key: "k\(i)", value: Array(repeating: 1, count: 40), wallMilliseconds: 1_000, peers: []) }
        guard case .partial(let first) = writer.answerPull(digest: joiner.store.digest, from: "b") else {
            Issue.record("a 30 kB delta must not fit a 4 kB message")
            return
        }
        #expect(!first.isLast && first.remainingEntries > 0)
        let out = joiner.receiveCatchUpPage(first, from: Self.peer(1), inCatchUp: false, wallMilliseconds: 1_000)
        #expect(out.contains { if case .catchUp(let from, _, _) = $0 { from == Self.peer(1) } else { false } })
        #expect(joiner.catchUp?.receivedEntries == UInt64(first.entries.count))
        // While it catches up, anti-entropy does not pull as well.
        let tick = joiner.antiEntropyTimerFired(peers: [Self.peer(1)], wallMilliseconds: 1_500)
        #expect(!tick.contains { if case .pull = $0 { true } else { false } })
        // The stream: pages until the last, each merged.
        var serving = Replication.CatchUpServing(peer: "b", digest: joiner.store.digest, held: joiner.store.heldSummary())
        var pages = 0
        while !serving.isFinished {
            let page = writer.nextCatchUpPage(&serving)
            _ = joiner.receiveCatchUpPage(page, from: Self.peer(1), inCatchUp: true, wallMilliseconds: 1_000)
            #expect(ReplicationCodecSize.of(page) <= 4_000 + 200)
            pages += 1
        }
        #expect(pages > 5)
        #expect(joiner.catchUpEnded()?.receivedEntries == 500)
        #expect(joiner.catchUp == nil)
        #expect(joiner.store == writer.store)
    }

    @Test func thePushHalfOfAnExchange_isBoundedToo() throws {
        var settings = ReplicationSettings()
        settings.maximumMessageBytes = 4_000
        var big = Replication(localName: "a", settings: settings, seed: 1)
        var small = Replication(localName: "b", settings: settings, seed: 2)
        for i in 0..<500 { _ = try big.write(key: "k\(i)", value: Array(repeating: 1, count: 40), wallMilliseconds: 1_000, peers: []) }
        // `big` pulled from `small` and learns `small` lacks everything: it sends one page, which
        // makes `small` catch up from `big`.
        let out = big.receivePullAnswer(entries: [], digest: small.store.digest, from: "b", replyingTo: Self.peer(2), wallMilliseconds: 1_000)
        guard case .sendPage(let page, let to)? = out.first(where: { if case .sendPage = $0 { true } else { false } }) else {
            Issue.record("no bounded push half")
            return
        }
        #expect(to == Self.peer(2) && !page.isLast)
        let answer = small.receiveCatchUpPage(page, from: Self.peer(1), inCatchUp: false, wallMilliseconds: 1_000)
        #expect(answer.contains { if case .catchUp = $0 { true } else { false } })
    }
}

/// The bytes of a page's entries as `KeyValueStore.pageBytes` counts them.
enum ReplicationCodecSize {
    static func of(_ page: CatchUpPage) -> Int { page.entries.reduce(0) { $0 + KeyValueStore.pageBytes(of: $1) } }
}

extension Replication.PullAnswer {
    /// The entries of a complete answer (tests written before pages).
    var entries: [Entry] {
        if case .complete(let entries, _, _) = self { return entries }
        return []
    }

    var digest: Digest {
        if case .complete(_, let digest, _) = self { return digest }
        return [:]
    }
}

/// Whole nodes on the virtual-time harness.
struct CatchUpClusterTests {
    @Test func aJoinerBehindByManyMessages_catchesUpInPages_andEveryCounterSaysSo() {
        var replication = ReplicationSettings()
        replication.maximumMessageBytes = 8_000
        var cluster = TestCluster(observer: EventLog(), seed: 7)
        cluster.network.latencyMinimum = .milliseconds(1)
        cluster.network.latencyMeanExtra = .zero
        let settings = NodeSettings(membership: .lan, replication: replication)
        cluster.add(settings: settings, seeds: NodeSeeds(membership: 1, replication: 2))
        cluster.start(0)
        for batch in 0..<20 {
            let writes = (0..<100).map { Replication.Write(key: "k/\(batch)/\($0)", value: Array(repeating: 0x62, count: 100)) }
            cluster.write(writes, at: 0)
        }
        cluster.run(for: .seconds(1))
        cluster.add(settings: settings, seeds: NodeSeeds(membership: 3, replication: 4))
        cluster.start(1)
        cluster.join(1, through: [0])
        let took = cluster.run(within: .seconds(10)) { $0.nodes[1].replication.store.entries.count == 2_000 }
        #expect(took != nil, "the joiner holds \(cluster.nodes[1].replication.store.entries.count) of 2000 keys")
        #expect(took.map { $0 < .seconds(3) } == true, "one anti-entropy round and one catch-up, not a page a round")
        #expect(cluster.nodes[1].replication.store == cluster.nodes[0].replication.store)
        #expect(cluster.nodes[1].counters[.catchUpsCompleted] == 1)
        #expect(cluster.nodes[0].counters[.catchUpsServed] == 1)
        #expect(cluster.nodes[0].counters[.catchUpPagesSent] > 30)
    }
}

/// Pushes obey the message limit too.
struct BoundedPushTests {
    @Test func aBatchLargerThanOneMessage_goesAsChainedPushes() throws {
        var settings = ReplicationSettings()
        settings.maximumMessageBytes = 2_000
        var writer = Replication(localName: "a", settings: settings, seed: 1)
        var reader = Replication(localName: "b", settings: settings, seed: 2)
        // The reader already holds everything the writer wrote before (by anti-entropy).
        _ = try writer.write(key: "before", value: [0], wallMilliseconds: 900, peers: [])
        let synced = writer.answerPull(digest: reader.store.digest, from: "b")
        _ = reader.receivePullAnswer(entries: synced.entries, digest: synced.digest, from: "a", wallMilliseconds: 900)
        let writes = (0..<100).map { Replication.Write(key: "k\($0)", value: Array(repeating: 1, count: 60)) }
        let (entries, out) = try writer.write(writes, wallMilliseconds: 1_000, peers: [CatchUpTests.peer(2)])
        let pushes = out.compactMap { directive -> ([Entry], HybridTimestamp?)? in
            if case .push(let chunk, _, _, let after, _) = directive { (chunk, after) } else { nil }
        }
        #expect(pushes.count > 3)
        #expect(pushes.allSatisfy { $0.0.reduce(0) { $0 + KeyValueStore.pageBytes(of: $1) } <= 2_000 })
        #expect(pushes.flatMap(\.0) == entries, "every write once, in order")
        for (index, push) in pushes.enumerated().dropFirst() {
            #expect(push.1 == pushes[index - 1].0.last?.version.timestamp, "each push follows the last")
        }
        // Delivered in order, the chain advances the reader's digest to the writer's.
        for push in pushes {
            _ = reader.receivePush(push.0, after: push.1, from: CatchUpTests.peer(1), wallMilliseconds: 1_000, peers: [])
        }
        #expect(reader.store == writer.store)
    }
}
