import RumorCore
import RumorWire

/// Micro-benchmarks of the hot paths, in release mode:
///
///     swift run -c release rumor-bench [filter]
///
/// Each line: the operation, how many were timed, and the rate. Real-process throughput (durable
/// puts, sustained writes across 16 agents) is measured by `bench/*.py`.
@main
struct Benchmarks {
    static func main() {
        let filter = CommandLine.arguments.dropFirst().first ?? ""
        let all: [(String, () -> (operations: Int, label: String))] = [
            ("packet encode (ping + 8 alive, compound)", packetEncode),
            ("packet decode (ping + 8 alive, compound)", packetDecode),
            ("push frame encode (1 entry, 64 B value)", pushEncode),
            ("push frame decode (1 entry, 64 B value)", pushDecode),
            ("pull answer decode (1000 entries)", pullAnswerDecode),
            ("merge remote entries into a 100k-key store", mergeEntries),
            ("delta since a digest (100k keys, 1k missing)", deltaComputation),
            ("receive push (relay decision, 100k-node peer list)", receivePush),
            ("local write (clock tick + store)", localWrite),
        ]
        print("benchmark".padding(56) + "count".leftPadding(10) + "rate".leftPadding(24))
        for (name, run) in all where filter.isEmpty || name.contains(filter) {
            let clock = ContinuousClock()
            _ = run()  // warm-up
            let start = clock.now
            let (operations, unit) = run()
            let elapsed = clock.now - start
            let seconds = elapsed.seconds
            print(name.padding(56) + String(operations).leftPadding(10) + "\(format(Double(operations) / seconds)) \(unit)/s".leftPadding(24))
        }
    }

    static let alives = (0..<8).map {
        Message.alive(
            Alive(
                incarnation: 3, node: "node-\($0)", address: NodeAddress(ip: [10, 0, 0, UInt8($0)], port: 7946), meta: Array("rumor.kv=1".utf8),
                versions: .rumor))
    }
    static let packet = [Message.ping(Ping(sequenceNumber: 42, target: "node-1", sourceName: "node-0"))] + alives
    static let codec = PacketCodec(compression: false)
    static let entry = Entry(
        key: "service/web/instance-17", value: Array(repeating: 0x61, count: 64),
        version: Version(timestamp: HybridTimestamp(milliseconds: 1_800_000_000_000, logical: 3), origin: "node-0"))

    static func packetEncode() -> (Int, String) {
        var bytes = 0
        for _ in 0..<200_000 { bytes &+= codec.encode(packet).count }
        blackHole(bytes)
        return (200_000, "packets")
    }

    static func packetDecode() -> (Int, String) {
        let encoded = codec.encode(packet)
        var count = 0
        for _ in 0..<200_000 { count &+= (try? codec.decode(encoded))?.messages.count ?? 0 }
        blackHole(count)
        return (200_000, "packets")
    }

    static func pushEncode() -> (Int, String) {
        var bytes = 0
        for _ in 0..<1_000_000 { bytes &+= ReplicationCodec.encode(.push(entries: [entry], relay: .none, acknowledge: false)).count }
        blackHole(bytes)
        return (1_000_000, "frames")
    }

    static func pushDecode() -> (Int, String) {
        let frame = ReplicationCodec.encode(.push(entries: [entry], relay: .none, acknowledge: false))
        var count = 0
        for _ in 0..<1_000_000 { if case .push = try? ReplicationCodec.decode(frame) { count += 1 } }
        blackHole(count)
        return (1_000_000, "frames")
    }

    static func pullAnswerDecode() -> (Int, String) {
        let entries = (0..<1000).map { index in
            var copy = entry
            copy.key = "service/web/instance-\(index)"
            return copy
        }
        let frame = ReplicationCodec.encode(.pullAnswer(from: "node-1", wallMilliseconds: 0, entries: entries, digest: [entry.version.writer: entry.version.timestamp], held: [:]))
        var count = 0
        for _ in 0..<500 {
            if case .pullAnswer(_, _, let decoded, _, _, _) = try? ReplicationCodec.decode(frame) { count += decoded.count }
        }
        blackHole(count)
        return (count, "entries")
    }

    static func keys(_ count: Int, origin: String = "node-0") -> [Entry] {
        (0..<count).map { index in
            Entry(
                key: "key/\(index)", value: Array(repeating: 0x62, count: 32),
                version: Version(timestamp: HybridTimestamp(milliseconds: 1_800_000_000_000 + UInt64(index), logical: 0), origin: origin))
        }
    }

    static func mergeEntries() -> (Int, String) {
        var store = KeyValueStore()
        let batch = keys(100_000)
        for entry in batch { store.merge(entry) }
        blackHole(store.entries.count)
        return (batch.count, "entries")
    }

    /// Built once, by the warm-up run.
    static let bigStore: KeyValueStore = {
        var store = KeyValueStore()
        for entry in keys(100_000) { store.writeLocally(entry) }
        return store
    }()

    static func deltaComputation() -> (Int, String) {
        let store = bigStore
        let behind: Digest = [Writer(name: "node-0", generation: 0): HybridTimestamp(milliseconds: 1_800_000_000_000 + 99_000, logical: 0)]
        var found = 0
        for _ in 0..<2_000 { found &+= store.delta(since: behind).count }
        blackHole(found)
        return (2_000, "deltas")
    }

    static func receivePush() -> (Int, String) {
        let peers = (0..<100_000).map { NodeAddress(ip: [10, UInt8($0 >> 16), UInt8(($0 >> 8) & 255), UInt8($0 & 255)], port: 7946) }
        var node = Replication(localName: "me", seed: 1)
        let batch = keys(200_000, origin: "node-9")
        for entry in batch {
            _ = node.receivePush([entry], from: peers[1], wallMilliseconds: 1_800_000_100_000, peers: peers)
        }
        blackHole(node.store.entries.count)
        return (batch.count, "pushes")
    }

    static func localWrite() -> (Int, String) {
        var node = Replication(localName: "me", seed: 1)
        for index in 0..<200_000 {
            _ = try? node.write(key: "key/\(index % 1000)", value: [1, 2, 3], wallMilliseconds: 1_800_000_000_000, peers: [])
        }
        blackHole(node.store.entries.count)
        return (200_000, "writes")
    }
}

@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

func format(_ value: Double) -> String {
    if value >= 1e6 { return "\(Double(Int(value / 1e4)) / 100) M" }
    if value >= 1e3 { return "\(Double(Int(value / 10)) / 100) k" }
    return "\(Double(Int(value * 100)) / 100) "
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
    func leftPadding(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
