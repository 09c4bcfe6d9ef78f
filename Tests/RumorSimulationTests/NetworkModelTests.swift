import Foundation
import RumorCore
import Testing

@testable import RumorSimulation

/// The simulated network's region model (per-pair base, jitter, asymmetry) and the physical
/// limit the report holds times against, checked on small hand-worked cases.
struct NetworkModelTests {
    /// A 40 / 150 / 80 ms triangle, 5 ms within a region (the `--regions 3` model).
    static let triangle: [[Duration]] = [
        [.milliseconds(5), .milliseconds(40), .milliseconds(150)],
        [.milliseconds(40), .milliseconds(5), .milliseconds(80)],
        [.milliseconds(150), .milliseconds(80), .milliseconds(5)],
    ]

    static func network(regions: [UInt8], latency: [[Duration]] = triangle, jitter: Double? = nil, asymmetry: Double = 0) -> VirtualNetwork {
        var network = VirtualNetwork()
        network.place(VirtualNetwork.Regions(of: regions, latency: latency))
        network.jitter = jitter
        network.latencyMeanExtra = .zero  // no tail unless `jitter`
        network.asymmetry = asymmetry
        network.asymmetrySeed = 42
        return network
    }

    @Test func aPairsBase_isTheLatencyBetweenItsRegions_bothWays() {
        // n0 in A, n1 in B, n2 in C, n3 in A.
        let network = Self.network(regions: [0, 1, 2, 0])
        #expect(network.baseLatency(from: 0, to: 1) == .milliseconds(40))
        #expect(network.baseLatency(from: 1, to: 0) == .milliseconds(40))
        #expect(network.baseLatency(from: 1, to: 2) == .milliseconds(80))
        #expect(network.baseLatency(from: 2, to: 0) == .milliseconds(150))
        #expect(network.baseLatency(from: 0, to: 3) == .milliseconds(5))
    }

    @Test func placement_isEvenSeededAndNotByAddress() {
        let latency = Self.triangle
        let a = VirtualNetwork.Regions(nodes: 3_000, latency: latency, seed: 7)
        let b = VirtualNetwork.Regions(nodes: 3_000, latency: latency, seed: 7)
        let c = VirtualNetwork.Regions(nodes: 3_000, latency: latency, seed: 8)
        #expect(a == b)
        #expect(a.of != c.of)
        for region in 0..<3 { #expect(a.of.filter { $0 == region }.count == 1_000) }
        let byAddress = (0..<3_000).filter { Int(a.of[$0]) == $0 % 3 }.count
        #expect(byAddress > 800 && byAddress < 1_200, "about a third match i % 3 by chance: \(byAddress)")
    }

    @Test func asymmetry_makesDirectionsDiffer_keepingTheRoundTrip_deterministically() {
        let network = Self.network(regions: Array(repeating: 1, count: 200), asymmetry: 0.2)
        var differing = 0
        for a in 0..<50 {
            for b in (a + 1)..<50 {
                let there = network.baseLatency(from: a, to: b).nanosecondsClamped
                let back = network.baseLatency(from: b, to: a).nanosecondsClamped
                #expect(abs(there + back - 2 * 5_000_000) <= 1, "the round trip stays twice the base")
                #expect(there >= 4_000_000 && there <= 6_000_000, "within ±20 % of 5 ms: \(there)")
                if there != back { differing += 1 }
                #expect(network.baseLatency(from: a, to: b) == Self.network(regions: Array(repeating: 1, count: 200), asymmetry: 0.2).baseLatency(from: a, to: b))
            }
        }
        #expect(differing == 50 * 49 / 2)
        var other = network
        other.asymmetrySeed = 43
        #expect((0..<49).contains { network.baseLatency(from: $0, to: $0 + 1) != other.baseLatency(from: $0, to: $0 + 1) })
    }

    @Test func aFiftyPercentJitterTail_hasMeanHalfTheBase_andNeverBeatsIt() {
        let network = Self.network(regions: [0, 1], jitter: 0.5)
        var random = SeededRandom(seed: 1)
        let draws = (0..<40_000).map { _ in Double(network.drawLatency(from: 0, to: 1, using: &random).nanosecondsClamped) / 1e6 }
        #expect(draws.allSatisfy { $0 >= 40 })
        let mean = draws.reduce(0, +) / Double(draws.count)
        #expect(abs(mean - 60) < 0.5, "40 ms base + exp(20 ms): mean \(mean)")
        let median = draws.sorted()[draws.count / 2]
        #expect(abs(median - (40 + 20 * log(2))) < 0.5, "median of the tail is mean × ln 2: \(median)")
    }

    @Test func withoutRegions_theOldModelHolds_minimumPlusAbsoluteTail() {
        var network = VirtualNetwork()
        network.latencyMinimum = .milliseconds(50)
        network.latencyMeanExtra = .milliseconds(25)
        var random = SeededRandom(seed: 3)
        let draws = (0..<40_000).map { _ in Double(network.drawLatency(from: 0, to: 9, using: &random).nanosecondsClamped) / 1e6 }
        #expect(draws.allSatisfy { $0 >= 50 })
        #expect(abs(draws.reduce(0, +) / Double(draws.count) - 75) < 0.6)
        // `--jitter 50%` on the same base means the same tail.
        var again = SeededRandom(seed: 3)
        var before = SeededRandom(seed: 3)
        network.jitter = nil
        let absolute = network.drawLatency(from: 0, to: 9, using: &before)
        network.jitter = 0.5
        #expect(network.drawLatency(from: 0, to: 9, using: &again) == absolute)
    }

    @Test func regionSpec_parses_andNamesWhatIsMissing() throws {
        let matrix = try SimulationConfiguration.regionLatency(parsing: SimulationConfiguration.threeRegions, regions: 3)
        #expect(matrix == [[5_000, 40_000, 150_000], [40_000, 5_000, 80_000], [150_000, 80_000, 5_000]])
        #expect(try SimulationConfiguration.regionLatency(parsing: "2, A=0.5, A-B=30", regions: nil) == [[500, 30_000], [30_000, 2_000]])
        #expect(throws: SimulationError.self) { try SimulationConfiguration.regionLatency(parsing: "5,A-B=40", regions: 3) }
        #expect(throws: SimulationError.self) { try SimulationConfiguration.regionLatency(parsing: "A-B=40", regions: 2) }
        #expect(throws: SimulationError.self) { try SimulationConfiguration.regionLatency(parsing: "5,A-b=40", regions: 2) }
    }

    // MARK: - The physical limit

    @Test func limit_takesTheShorterPathThroughAThirdRegion() {
        // Two nodes per region: n0 n3 in A, n1 n4 in B, n2 n5 in C.
        let network = Self.network(regions: [0, 1, 2, 0, 1, 2])
        let all = Array(0..<6)
        // From A: B at 40, C via B at 40 + 80 = 120 (not 150 direct), the other A node at 5.
        #expect(PhysicalLimit(writer: 0, targets: all, nodes: 6, network: network).floor == .milliseconds(120))
        // From B: A at 40, C at 80.
        #expect(PhysicalLimit(writer: 1, targets: all, nodes: 6, network: network).floor == .milliseconds(80))
        // Only the writer's own region to reach: one hop within.
        #expect(PhysicalLimit(writer: 0, targets: [3], nodes: 6, network: network).floor == .milliseconds(5))
        // A direct send without jitter waits for the slowest direct pair: A–C, 150 ms.
        #expect(PhysicalLimit(writer: 0, targets: all, nodes: 6, network: network).directSend == .milliseconds(150))
    }

    @Test func limit_withinTheWritersRegion_mayGoOutAndBack() {
        // Within A is slow (50 ms); out to B and back is 10 + 10.
        let latency: [[Duration]] = [[.milliseconds(50), .milliseconds(10)], [.milliseconds(10), .milliseconds(1)]]
        let network = Self.network(regions: [0, 0, 1], latency: latency)
        #expect(PhysicalLimit(writer: 0, targets: [1, 2], nodes: 3, network: network).floor == .milliseconds(20))
        // With nobody in B to relay, the other A node is 50 ms away.
        let alone = Self.network(regions: [0, 0], latency: latency)
        #expect(PhysicalLimit(writer: 0, targets: [1], nodes: 2, network: alone).floor == .milliseconds(50))
    }

    @Test func directSend_withJitter_isTheBasePlusTheExpectedMaximumTail() {
        // One region, 999 targets at 50 ms + exp(25 ms): E[max] = 50 + 25 · H(999).
        let network = Self.network(regions: Array(repeating: 0, count: 1_000), latency: [[.milliseconds(50)]], jitter: 0.5)
        let limit = PhysicalLimit(writer: 0, targets: Array(0..<1_000), nodes: 1_000, network: network)
        let harmonic = (1...999).reduce(0.0) { $0 + 1 / Double($1) }
        let expected = 50 + 25 * harmonic
        let directSend = Double(limit.directSend.nanosecondsClamped) / 1e6
        #expect(abs(directSend - expected) < 0.05, "\(directSend) vs \(expected)")
        #expect(limit.floor == .milliseconds(50), "jitter does not enter the floor")
    }

    @Test func limit_withAsymmetricLinks_isTheShortestPathOverEveryDirectedPair() {
        let regions: [UInt8] = [0, 1, 2, 0, 1, 2, 0, 1]
        let network = Self.network(regions: regions, asymmetry: 0.3)
        // Floyd–Warshall by hand over the 8 nodes' directed bases.
        var distance = (0..<8).map { a in (0..<8).map { b in a == b ? 0 : network.baseLatency(from: a, to: b).nanosecondsClamped } }
        for k in 0..<8 { for a in 0..<8 { for b in 0..<8 { distance[a][b] = min(distance[a][b], distance[a][k] + distance[k][b]) } } }
        for writer in 0..<8 {
            let limit = PhysicalLimit(writer: writer, targets: Array(0..<8), nodes: 8, network: network)
            #expect(limit.isExact)
            #expect(limit.floor == .nanoseconds(distance[writer].max()!))
        }
    }

    // MARK: - Whole runs

    static func regionRun(seed: UInt64) throws -> SimulationReport {
        var configuration = SimulationConfiguration()
        configuration.nodes = 200
        configuration.seed = seed
        configuration.updates = 4
        configuration.rounds = 4
        configuration.loss = 0.1
        configuration.regionLatencyMicroseconds = try SimulationConfiguration.regionLatency(parsing: SimulationConfiguration.threeRegions, regions: 3)
        configuration.jitter = 0.5
        configuration.asymmetry = 0.2
        var simulation = try Simulation(configuration)
        return simulation.run()
    }

    @Test func regionRuns_sameSeedSameReport_andNoUpdateBeatsTheLimit() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let first = try Self.regionRun(seed: 5)
        #expect(try encoder.encode(first) == encoder.encode(Self.regionRun(seed: 5)))
        #expect(try encoder.encode(first) != encoder.encode(Self.regionRun(seed: 6)))
        for update in first.updates {
            let all = try #require(update.millisecondsTo100)
            #expect(all >= update.limitMilliseconds, "an update reached everyone faster than the network allows")
            #expect(update.limitMilliseconds >= 60 && update.limitMilliseconds <= 120 * 1.2, "\(update.limitMilliseconds)")
        }
        #expect(try #require(first.physicalLimit.ratioToLimit) >= 1)
        #expect(first.table.contains("3 regions"))
    }
}
