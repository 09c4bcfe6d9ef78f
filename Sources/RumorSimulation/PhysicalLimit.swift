#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How fast a network could inform every node of an update, whatever the protocol: the yardstick
/// the report holds each update's time to 100 % against. The rule lives here and only here.
///
/// - `floor`: the farthest target's shortest-path delay from the writer over the pairs' **base**
///   one-way latencies (`VirtualNetwork.baseLatency`). Jitter does not enter it: every datagram
///   takes its pair's base plus a tail that is never negative and may be arbitrarily small, so no
///   protocol beats this, relays included (a path through a third region counts when shorter).
/// - `directSend`: the expected time until the last target hears if the writer sent one copy to
///   every target at once, each drawing its pair's jitter: E[max over targets of (base + tail)].
///   Jitter enters here, as the expected maximum of the tails over all targets (with a 50 % tail
///   and 10,000 targets, 0.5 × base × H(9,999) ≈ 4.9 × base on top of the base). It is a
///   reference, not a bound: a relay over a shorter path, or redundant copies racing, can beat it.
///
/// A protocol that relays over a tree pays at least one jitter tail per hop, so its time to 100 %
/// over `floor` counts the hops, their jitter and its own delays; over `directSend`, what it costs
/// beyond a one-hop broadcast with the same jitter.
///
/// Cost: with symmetric links all pairs between two regions share their base, so Dijkstra runs on
/// the region graph (R² work). With `asymmetry` every directed pair differs: Dijkstra runs on the
/// nodes (N² work, no N² memory) up to `exactNodeLimit` nodes; above it, `floor` is the bound on
/// the region graph with every base scaled by (1 − asymmetry), lower than the exact figure, and
/// `isExact` is false. With `asymmetry`, `directSend` groups the targets by their pair's factor
/// to 0.1 % (a base off by at most 0.05 %).
struct PhysicalLimit: Sendable, Hashable {
    var floor: Duration
    var directSend: Duration
    var isExact: Bool

    /// Node-level Dijkstra (N² steps) is used up to this many nodes.
    static let exactNodeLimit = 20_000

    /// The limit for an update written at `writer` that must reach `targets` (nodes other than
    /// the writer; any node may relay).
    init(writer: Int, targets: [Int], nodes: Int, network: VirtualNetwork) {
        let targets = targets.filter { $0 != writer }
        guard !targets.isEmpty else {
            self.init(floor: .zero, directSend: .zero, isExact: true)
            return
        }
        let regionCount = network.regions?.count ?? 1
        if network.asymmetry > 0, nodes <= Self.exactNodeLimit {
            let distances = Self.nodeDistances(from: writer, nodes: nodes, network: network)
            let floor = targets.map { distances[$0] }.max() ?? 0
            // Targets grouped by region and asymmetry factor to 0.1 % (the expected maximum's
            // cost is steps × groups; the bases move by at most 0.05 % of the pair's base).
            var counts: [Int64: Int] = [:]
            for target in targets {
                let permille = Int64((network.asymmetryFactor(from: writer, to: target) * 1000).rounded())
                counts[Int64(network.region(of: target)) << 32 | permille, default: 0] += 1
            }
            let groups = counts.keys.sorted().map { key -> (base: Double, mean: Double, count: Int) in
                let base = VirtualNetwork.scaled(network.regionBase(network.region(of: writer), Int(key >> 32)), by: Double(key & 0xFFFF_FFFF) / 1000)
                return (Double(base), network.tailMean(base: base), counts[key]!)
            }
            self.init(floor: .nanoseconds(floor), directSend: .nanoseconds(Self.expectedMaximum(groups)), isExact: true)
            return
        }
        // Region graph: every pair between regions r and s has base matrix[r][s].
        let scale = network.asymmetry > 0 ? 1 - network.asymmetry : 1
        var matrix = (0..<regionCount).map { r in (0..<regionCount).map { s in Double(network.regionBase(r, s)) * scale } }
        var members = Array(repeating: 0, count: regionCount)
        for index in 0..<nodes { members[network.region(of: index)] += 1 }
        var targetsIn = Array(repeating: 0, count: regionCount)
        for target in targets { targetsIn[network.region(of: target)] += 1 }
        let home = network.region(of: writer)
        // A region holding no node relays nothing.
        for r in 0..<regionCount where members[r] == 0 && r != home {
            for s in 0..<regionCount {
                matrix[r][s] = .infinity
                matrix[s][r] = .infinity
            }
        }
        let reach = Self.regionDistances(from: home, matrix: matrix)
        var floor = 0.0
        var groups: [(base: Double, mean: Double, count: Int)] = []
        for s in 0..<regionCount where targetsIn[s] > 0 {
            // Another node of the writer's region is one hop away at least (within, or out and back).
            let distance = s == home ? (0..<regionCount).map { reach[$0] + matrix[$0][home] }.min()! : reach[s]
            floor = max(floor, distance)
            let base = network.regionBase(home, s)
            groups.append((Double(base), network.tailMean(base: base), targetsIn[s]))
        }
        self.init(
            floor: .nanoseconds(Int64(floor.rounded())), directSend: .nanoseconds(Self.expectedMaximum(groups)),
            isExact: network.asymmetry == 0)
    }

    private init(floor: Duration, directSend: Duration, isExact: Bool) {
        self.floor = floor
        self.directSend = directSend
        self.isExact = isExact
    }

    /// Shortest paths from `home` over a dense matrix (Dijkstra without a heap: R² steps).
    static func regionDistances(from home: Int, matrix: [[Double]]) -> [Double] {
        var distance = Array(repeating: Double.infinity, count: matrix.count)
        var done = Array(repeating: false, count: matrix.count)
        distance[home] = 0
        for _ in 0..<matrix.count {
            guard let next = distance.indices.filter({ !done[$0] }).min(by: { distance[$0] < distance[$1] }),
                distance[next] < .infinity
            else { break }
            done[next] = true
            for s in matrix.indices where !done[s] {
                distance[s] = min(distance[s], distance[next] + matrix[next][s])
            }
        }
        return distance
    }

    /// Shortest paths from `writer` over every directed pair's base, ns (Dijkstra without a heap:
    /// N² steps at most, O(N) memory). A settled node relaxes a region's nodes only if it could
    /// improve one: its distance plus the region pair's smallest base, base × (1 − asymmetry),
    /// must beat the largest tentative distance there (kept from the region's last pass; it only
    /// falls). Near the end almost every pass is skipped.
    static func nodeDistances(from writer: Int, nodes: Int, network: VirtualNetwork) -> [Int64] {
        // The same figures as `network.baseLatency`, read from flat local copies (the N² loop).
        let regionCount = network.regions?.count ?? 1
        let of = (0..<nodes).map { network.region(of: $0) }
        let matrix = (0..<regionCount * regionCount).map { network.regionBase($0 / regionCount, $0 % regionCount) }
        let smallest = matrix.map { Int64((Double($0) * (1 - network.asymmetry)).rounded(.down)) - 1 }
        var members = Array(repeating: [Int](), count: regionCount)
        for index in 0..<nodes { members[of[index]].append(index) }
        var largest = Array(repeating: Int64.max, count: regionCount)
        var distance = Array(repeating: Int64.max, count: nodes)
        var done = Array(repeating: false, count: nodes)
        distance[writer] = 0
        for _ in 0..<nodes {
            var next = -1
            for index in 0..<nodes where !done[index] && (next < 0 || distance[index] < distance[next]) { next = index }
            guard next >= 0, distance[next] < .max else { break }
            done[next] = true
            let row = of[next] * regionCount
            for region in 0..<regionCount where distance[next] + smallest[row + region] < largest[region] {
                var most: Int64 = 0
                for index in members[region] where !done[index] {
                    let base = VirtualNetwork.scaled(matrix[row + region], by: network.asymmetryFactor(from: next, to: index))
                    let through = distance[next] + base
                    if through < distance[index] { distance[index] = through }
                    most = max(most, distance[index])
                }
                largest[region] = most
            }
        }
        return distance
    }

    /// E[max over every target of (base + Exp(mean))], ns, for targets grouped by equal
    /// (base, mean): B + ∫ from B of (1 − Π F_g(t)^count) dt with B the largest base (before it
    /// some target has not heard), by Simpson's rule over B ... B + mean·(ln N + 40).
    static func expectedMaximum(_ groups: [(base: Double, mean: Double, count: Int)]) -> Int64 {
        guard let largest = groups.map(\.base).max() else { return 0 }
        let tailed = groups.filter { $0.mean > 0 }
        guard let widest = tailed.map(\.mean).max() else { return Int64(largest.rounded()) }
        let total = Double(groups.reduce(0) { $0 + $1.count })
        let span = widest * (log(total) + 40)
        let steps = 4_000
        let h = span / Double(steps)
        func notAll(_ t: Double) -> Double {
            var logAll = 0.0
            for group in tailed {
                let x = (t - group.base) / group.mean
                if x <= 0 { return 1 }
                logAll += Double(group.count) * log1p(-exp(-x))
            }
            return 1 - exp(logAll)
        }
        var sum = notAll(largest) + notAll(largest + span)
        for step in 1..<steps {
            sum += (step % 2 == 1 ? 4 : 2) * notAll(largest + Double(step) * h)
        }
        return Int64((largest + sum * h / 3).rounded())
    }
}
