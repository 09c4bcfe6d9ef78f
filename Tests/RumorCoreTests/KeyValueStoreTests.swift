import PropertyBased
import Testing

@testable import RumorCore

/// Random writes over a few keys and writers, so conflicts are frequent.
let entryGenerator = Gen.int(in: 0...Int.max).map { seed -> Entry in
    var random = SeededRandom(seed: UInt64(seed))
    let key = "k\(Int.random(in: 0..<5, using: &random))"
    let origin = "n\(Int.random(in: 0..<3, using: &random))"
    let timestamp = HybridTimestamp(milliseconds: UInt64.random(in: 1...6, using: &random), logical: UInt16.random(in: 0...2, using: &random))
    let value: [UInt8]? = Bool.random(using: &random) ? nil : [UInt8.random(in: 0...255, using: &random)]
    return Entry(key: key, value: value, version: Version(timestamp: timestamp, origin: origin))
}

/// Two writes with the same version are the same write; drop generated clashes that differ.
func consistent(_ entries: [Entry]) -> [Entry] {
    var seen: [Version: Entry] = [:]
    return entries.filter { entry in
        if let other = seen[entry.version] { return other == entry }
        seen[entry.version] = entry
        return true
    }
}

func merged(_ entries: some Sequence<Entry>) -> KeyValueStore {
    var store = KeyValueStore()
    store.merge(entries)
    return store
}

struct KeyValueStoreTests {
    @Test func mergeIsCommutative() async {
        await propertyCheck(input: entryGenerator.array(of: 0...20), entryGenerator.array(of: 0...20)) { a, b in
            let all = consistent(a + b)
            let left = Array(all.prefix(consistent(a).count))
            let right = Array(all.dropFirst(left.count))
            #expect(merged(left + right).entries == merged(right + left).entries)
        }
    }

    @Test func mergeIsIdempotent() async {
        await propertyCheck(input: entryGenerator.array(of: 0...30)) { raw in
            let entries = consistent(raw)
            var store = merged(entries)
            let once = store
            store.merge(entries)
            #expect(store == once)
        }
    }

    @Test func mergeIsAssociative() async {
        await propertyCheck(input: entryGenerator.array(of: 0...30), Gen.int(in: 0...30), Gen.int(in: 0...30)) { raw, i, j in
            let entries = consistent(raw)
            let cut1 = min(i, j, entries.count)
            let cut2 = min(max(i, j), entries.count)
            let (a, b, c) = (merged(entries[..<cut1]), merged(entries[cut1..<cut2]), merged(entries[cut2...]))
            var ab = a
            ab.merge(b.entries.values)
            ab.merge(c.entries.values)
            var bc = b
            bc.merge(c.entries.values)
            var abc = a
            abc.merge(bc.entries.values)
            #expect(ab.entries == abc.entries)
        }
    }

    @Test func anyInterleavingWithDuplicatesConverges() async {
        await propertyCheck(input: entryGenerator.array(of: 1...40), Gen.int(in: 0...Int.max)) { raw, seed in
            let entries = consistent(raw)
            var random = SeededRandom(seed: UInt64(seed))
            var delivery = entries + entries.filter { _ in Bool.random(using: &random) }
            delivery.shuffle(using: &random)
            #expect(merged(delivery).entries == merged(entries).entries)
        }
    }

    /// Three writers; writes reach other nodes by out-of-order pushes that may be lost, then
    /// anti-entropy (delta by digest, both ways, then acknowledge) makes every store equal.
    @Test func antiEntropyByDigest_convergesDespiteLostAndReorderedPushes() async {
        await propertyCheck(input: Gen.int(in: 0...Int.max)) { seed in
            var random = SeededRandom(seed: UInt64(seed))
            var nodes = [KeyValueStore](repeating: KeyValueStore(), count: 3)
            var clocks = [HybridClock](repeating: HybridClock(), count: 3)
            var written: [Entry] = []
            for step in 0..<Int.random(in: 1...40, using: &random) {
                let writer = Int.random(in: 0..<3, using: &random)
                let wall = UInt64(step / 3)  // coarse wall clock: many writes share a millisecond
                let entry = Entry(
                    key: "k\(Int.random(in: 0..<4, using: &random))",
                    value: Bool.random(using: &random) ? nil : [UInt8(step)],
                    version: Version(timestamp: clocks[writer].tick(wallMilliseconds: wall), origin: "n\(writer)"))
                nodes[writer].writeLocally(entry)
                written.append(entry)
                // A lossy push of some earlier write to a random node.
                if let pushed = written.randomElement(using: &random), Bool.random(using: &random) {
                    nodes[Int.random(in: 0..<3, using: &random)].merge(pushed)
                }
            }
            for _ in 0..<2 {
                for (a, b) in [(0, 1), (1, 2), (2, 0)] {
                    let toB = nodes[a].delta(since: nodes[b].digest)
                    let toA = nodes[b].delta(since: nodes[a].digest)
                    let (digestA, digestB) = (nodes[a].digest, nodes[b].digest)
                    nodes[b].merge(toB)
                    nodes[b].acknowledge(digestA)
                    nodes[a].merge(toA)
                    nodes[a].acknowledge(digestB)
                }
            }
            let expected = merged(written).entries
            #expect(nodes.allSatisfy { $0.entries == expected })
            #expect(nodes[1].delta(since: nodes[0].digest).isEmpty, "converged digests: nothing left to send")
        }
    }

    @Test func pushedEntriesDoNotAdvanceTheDigest() {
        var store = KeyValueStore()
        store.merge(Entry(key: "a", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 9, logical: 0), origin: "x")))
        #expect(store.digest.isEmpty, "a pushed write says nothing about the writer's earlier writes")
    }

    @Test func deltaHoldsOnlyWhatThePeerLacks() {
        var store = KeyValueStore()
        let old = Entry(key: "a", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 1, logical: 0), origin: "x"))
        let new = Entry(key: "b", value: [2], version: Version(timestamp: HybridTimestamp(milliseconds: 5, logical: 0), origin: "x"))
        store.writeLocally(old)
        store.writeLocally(new)
        #expect(store.delta(since: ["x": HybridTimestamp(milliseconds: 1, logical: 0)]) == [new])
        #expect(store.delta(since: store.digest).isEmpty)
    }

    @Test func concurrentWritesToOneKey_pickTheSameWinnerEverywhere() {
        let t = HybridTimestamp(milliseconds: 10, logical: 0)
        let a = Entry(key: "k", value: [1], version: Version(timestamp: t, origin: "a"))
        let b = Entry(key: "k", value: [2], version: Version(timestamp: t, origin: "b"))
        #expect(merged([a, b]).entries["k"] == b)
        #expect(merged([b, a]).entries["k"] == b, "equal timestamps: the greater writer name wins")
    }

    @Test func tombstoneWinsOverOlderValue_andIsCollectedAfterGrace() {
        var store = KeyValueStore()
        store.merge(Entry(key: "k", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 1_000, logical: 0), origin: "a")))
        store.merge(Entry(key: "k", value: nil, version: Version(timestamp: HybridTimestamp(milliseconds: 2_000, logical: 0), origin: "b")))
        #expect(store.value(of: "k", nowMilliseconds: 2_000) == nil)
        #expect(store.collectTombstones(nowMilliseconds: 2_500, graceMilliseconds: 1_000).isEmpty, "within grace")
        #expect(store.collectTombstones(nowMilliseconds: 3_500, graceMilliseconds: 1_000) == ["k"])
        #expect(store.entries["k"] == nil)
    }

    @Test func expiredValuesReadAsAbsent() {
        var store = KeyValueStore()
        store.merge(Entry(key: "k", value: [1], version: Version(timestamp: HybridTimestamp(milliseconds: 1, logical: 0), origin: "a"), expiresAtMilliseconds: 100))
        #expect(store.value(of: "k", nowMilliseconds: 99) != nil)
        #expect(store.value(of: "k", nowMilliseconds: 100) == nil)
    }
}

struct HybridClockTests {
    @Test func timestampsIncreaseEvenWhenTheWallClockGoesBack() async {
        await propertyCheck(input: Gen.int(in: 0...10_000).array(of: 1...50)) { walls in
            var clock = HybridClock()
            var previous = HybridTimestamp.zero
            for wall in walls {
                let next = clock.tick(wallMilliseconds: UInt64(wall))
                #expect(next > previous)
                #expect(next.milliseconds >= UInt64(wall))
                previous = next
            }
        }
    }

    @Test func observedRemoteTimestamps_pushLaterLocalOnesAhead() {
        var clock = HybridClock()
        _ = clock.tick(wallMilliseconds: 1_000)
        let remote = HybridTimestamp(milliseconds: 1_400, logical: 7)
        clock.observe(remote, wallMilliseconds: 1_000, boundMilliseconds: 500)
        #expect(clock.tick(wallMilliseconds: 1_001) > remote)
    }

    /// One wild clock must not drag every clock into the future by being heard: a remote stamp
    /// moves the clock only as far as the bound past the wall clock; `pass` goes all the way.
    @Test func remoteTimestampsFarAhead_moveTheClockOnlyToTheBound() {
        var clock = HybridClock()
        clock.observe(HybridTimestamp(milliseconds: 3_601_000, logical: 0), wallMilliseconds: 1_000, boundMilliseconds: 500)
        let next = clock.tick(wallMilliseconds: 1_001)
        #expect(next.milliseconds == 1_500, "the bound, not the remote stamp")
        clock.pass(HybridTimestamp(milliseconds: 3_601_000, logical: 0))
        #expect(clock.tick(wallMilliseconds: 1_002) > HybridTimestamp(milliseconds: 3_601_000, logical: 0))
    }
}

struct KeyValueStoreCountTests {
    @Test func countsFollowEveryChange_withoutAScan() {
        func version(_ ms: UInt64) -> Version { Version(timestamp: HybridTimestamp(milliseconds: ms, logical: 0), origin: "a") }
        var store = KeyValueStore()
        store.merge(Entry(key: "k", value: [1], version: version(1)))
        store.merge(Entry(key: "d", value: nil, version: version(2)))
        #expect(store.counts == (1, 1))
        store.merge(Entry(key: "k", value: nil, version: version(3)))
        #expect(store.counts == (0, 2))
        store.merge(Entry(key: "d", value: [2], version: version(4)))
        #expect(store.counts == (1, 1))
        store.collectTombstones(nowMilliseconds: 1_000_000, graceMilliseconds: 1_000)
        #expect(store.counts == (1, 0))
        let restored = KeyValueStore(entries: store.entries.values.map { $0 } + [Entry(key: "t", value: nil, version: version(9))], digest: [:])
        #expect(restored.counts == (1, 1))
    }
}
