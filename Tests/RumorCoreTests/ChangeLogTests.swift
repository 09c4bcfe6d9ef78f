import Testing

@testable import RumorCore

struct ChangeLogTests {
    /// A change log and the per-key latest positions a store keeps for it.
    struct Log {
        var log = ChangeLog()
        var latest: [String: UInt64] = [:]

        @discardableResult
        mutating func record(_ key: String) -> UInt64 {
            let sequence = log.record(key)
            latest[key] = sequence
            if log.needsCompaction(liveKeys: latest.count) {
                let latest = self.latest
                log.compact { latest[$0] }
            }
            return sequence
        }

        mutating func forget(_ key: String) {
            if let sequence = latest.removeValue(forKey: key) { log.forgot(through: sequence) }
        }

        func changes(after sequence: UInt64, prefix: String = "", limit: Int = .max)
            -> (changes: [(sequence: UInt64, key: String)], scannedThrough: UInt64)
        {
            log.changes(after: sequence, prefix: prefix, limit: limit) { latest[$0] }
        }
    }

    static func keys(_ result: (changes: [(sequence: UInt64, key: String)], scannedThrough: UInt64)) -> [String] {
        result.changes.map(\.key)
    }

    @Test func eachKeyKeepsOnlyItsLatestChange_inOrder() {
        var log = Log()
        log.record("a")
        log.record("b")
        log.record("a")
        #expect(log.log.last == 3)
        #expect(Self.keys(log.changes(after: 0)) == ["b", "a"])
        #expect(Self.keys(log.changes(after: 2)) == ["a"])
        #expect(log.changes(after: 3).changes.isEmpty)
        #expect(log.latest["a"] == 3)
    }

    @Test func prefixAndLimit_resumeWhereTheScanStopped() {
        var log = Log()
        for key in ["x/1", "y/1", "x/2", "y/2", "x/3"] { log.record(key) }
        let first = log.changes(after: 0, prefix: "x/", limit: 2)
        #expect(Self.keys(first) == ["x/1", "x/2"] && first.scannedThrough == 3)
        let rest = log.changes(after: first.scannedThrough, prefix: "x/", limit: 2)
        #expect(Self.keys(rest) == ["x/3"] && rest.scannedThrough == 5)
        let none = log.changes(after: 0, prefix: "z/")
        #expect(none.changes.isEmpty && none.scannedThrough == 5, "an unmatched scan still advances the cursor")
    }

    @Test func forgettingAKey_compactsTheLogThroughItsChange() {
        var log = Log()
        log.record("gone")
        log.record("kept")
        log.forget("gone")
        #expect(log.log.compactedThrough == 1)
        #expect(Self.keys(log.changes(after: 0)) == ["kept"])
        log.log.reset()
        #expect(log.log.compactedThrough == 2 && log.changes(after: 0).changes.isEmpty)
        #expect(log.record("new") == 3, "sequence numbers are never reused")
    }

    @Test func restoredLog_continuesAfterTheNewestSequence() {
        var log = Log(log: ChangeLog(restoring: ["a": 7, "b": 3], compactedThrough: 9), latest: ["a": 7, "b": 3])
        #expect(log.log.last == 9)
        #expect(Self.keys(log.changes(after: 0)) == ["b", "a"])
        #expect(log.record("c") == 10)
    }

    @Test func manyRewritesOfFewKeys_stayBounded() {
        var log = Log()
        for index in 0..<100_000 { log.record("k\(index % 10)") }
        #expect(log.changes(after: 0).changes.count == 10)
        #expect(log.changes(after: 99_995).changes.map(\.sequence) == [99_996, 99_997, 99_998, 99_999, 100_000])
        #expect(!log.log.needsCompaction(liveKeys: 10), "stale pairs are dropped as they pile up")
    }
}

struct ReplicationVisibilityTests {
    @Test func expiredValues_areReportedOnceOnTheTick() throws {
        var node = Replication(localName: "a", seed: 1)
        let (entry, _) = try node.write(key: "k", value: [1], timeToLive: .seconds(2), wallMilliseconds: 1_000, peers: [])
        #expect(!node.antiEntropyTimerFired(peers: [], wallMilliseconds: 2_000).contains(.expired([entry])))
        #expect(node.antiEntropyTimerFired(peers: [], wallMilliseconds: 3_500).contains(.expired([entry])))
        #expect(!node.antiEntropyTimerFired(peers: [], wallMilliseconds: 4_500).contains(.expired([entry])), "reported once")
    }

    @Test func departingWriter_reportsItsEphemeralValuesOnce() throws {
        var writer = Replication(localName: "a", seed: 1)
        var reader = Replication(localName: "b", seed: 2)
        let (presence, _) = try writer.write(key: "p", value: [1], ephemeral: true, wallMilliseconds: 1_000, peers: [])
        let (durable, _) = try writer.write(key: "d", value: [1], wallMilliseconds: 1_000, peers: [])
        _ = reader.receivePush([presence, durable], from: ReplicationTests.peer(1), wallMilliseconds: 1_000, peers: [])
        #expect(reader.member("a", runs: writer.localWriter) == [presence], "its process is live: the value appears")
        #expect(reader.member("a", runs: nil) == [presence])
        #expect(reader.member("a", runs: nil).isEmpty, "already departed")
        let next = Writer(name: "a", generation: writer.localWriter.generation + 1)
        #expect(reader.member("a", runs: next).isEmpty, "a new process of the same node revives nothing")
    }
}

struct RestartExpiryTests {
    /// A value with a 1 s time to live, written at `NodeRuleTests.time(0)`, in a store a node restarts from.
    static func storeWithExpiringValue() throws -> KeyValueStore {
        var writer = Replication(localName: "a", seed: 1)
        _ = try writer.write(
            key: "ttl", value: [1], timeToLive: .seconds(1), wallMilliseconds: NodeRuleTests.time(0).wallMilliseconds, peers: [])
        return writer.store
    }

    static func restarted(_ saved: SavedState, at milliseconds: Int64) -> Node {
        Node(
            name: "a", address: NodeRuleTests.a, settings: NodeSettings(), seeds: NodeSeeds(membership: 1, replication: 2),
            restoring: saved, at: NodeRuleTests.time(milliseconds))
    }

    @Test func whenRestartedAfterACrash_anExpiryBeforeTheStartIsNotReportedAgain() throws {
        var node = Self.restarted(SavedState(store: try Self.storeWithExpiringValue()), at: 5_000)
        let before = node.changes.last
        _ = node.timerFired(.antiEntropy, at: NodeRuleTests.time(6_000))
        #expect(node.changes.last == before, "the previous process reported it (or a replay shows it as expire)")
    }

    @Test func whenRestartedAfterACleanStop_anExpiryWhileStoppedIsReportedOnce() throws {
        var saved = SavedState(store: try Self.storeWithExpiringValue())
        saved.expiryReportedThrough = NodeRuleTests.time(500).wallMilliseconds
        var node = Self.restarted(saved, at: 5_000)
        let before = node.changes.last
        _ = node.timerFired(.antiEntropy, at: NodeRuleTests.time(6_000))
        let (changes, _) = try node.watchBatch(after: before, prefix: "", at: NodeRuleTests.time(6_000))
        #expect(changes.map(\.kind) == [.expire])
        _ = node.timerFired(.antiEntropy, at: NodeRuleTests.time(7_000))
        #expect(node.changes.last == before + 1, "reported once")
    }
}
