import RumorCore

/// The simulated network between the nodes of a `VirtualCluster`: one-way latency, datagram
/// loss, and partitions. Fates are drawn from the cluster's seeded generator.
///
/// A datagram from `a` to `b` takes the pair's base latency plus an exponential tail:
/// - base: `latencyMinimum` for every pair, or with `regions` the latency between the two
///   nodes' regions; with `asymmetry` scaled by a factor drawn from a hash of the pair, so that
///   a→b and b→a differ (their sum, the round trip, stays twice the base);
/// - tail mean: `latencyMeanExtra` for every pair, or with `jitter` that fraction of the pair's
///   base (the "50 % jitter tail": a mean of half the base).
///
/// Nothing here is per pair in memory: a pair's figures are computed from the two nodes'
/// regions and a hash, so 10,000 or 100,000 nodes cost one byte each.
public struct VirtualNetwork: Sendable {
    /// One-way latency when there are no regions: this minimum plus an exponential tail of mean
    /// `latencyMeanExtra` (or `jitter` × the minimum).
    public var latencyMinimum: Duration = .microseconds(200)
    public var latencyMeanExtra: Duration = .microseconds(300)
    /// Mean of the tail as a fraction of the pair's base latency; nil: `latencyMeanExtra`.
    public var jitter: Double?
    /// Where the nodes are and the base latency between places; nil: one place.
    public private(set) var regions: Regions?
    /// 0 ≤ a < 1: each pair's base one way is scaled by 1 + a·u and the other way by 1 − a·u,
    /// u uniform in [−1, 1) from a hash of the pair and `asymmetrySeed`.
    public var asymmetry = 0.0
    public var asymmetrySeed: UInt64 = 0
    /// Probability that a datagram is lost (streams are reliable).
    public var loss = 0.0
    /// Partition side of each node (by index); nodes reach only their own side. Empty: whole.
    public var sides: [UInt8] = []

    /// Nodes placed in regions, and the base one-way latency between regions.
    public struct Regions: Sendable, Hashable {
        /// Base one-way latency, ns: `[r][s]` from region r to region s; `[r][r]` within r.
        public let nanoseconds: [[Int64]]
        /// Each node's region (by index).
        public let of: [UInt8]

        public var count: Int { nanoseconds.count }

        /// Places `nodes` nodes in `latency.count` regions, as evenly as the count allows, in
        /// an order shuffled by `seed` (not by address: n0, n1, n2 are not regions A, B, C).
        public init(nodes: Int, latency: [[Duration]], seed: UInt64) {
            nanoseconds = latency.map { $0.map(\.nanosecondsClamped) }
            var places = (0..<nodes).map { UInt8(truncatingIfNeeded: $0 % max(1, latency.count)) }
            var random = SeededRandom(seed: seed)
            places.shuffle(using: &random)
            of = places
        }

        /// Explicit placement (tests).
        public init(of: [UInt8], latency: [[Duration]]) {
            nanoseconds = latency.map { $0.map(\.nanosecondsClamped) }
            self.of = of
        }
    }

    public init() {}

    /// Places the nodes in regions (see `Regions.init`).
    public mutating func place(nodes: Int, latency: [[Duration]], seed: UInt64) {
        regions = Regions(nodes: nodes, latency: latency, seed: seed)
    }

    public mutating func place(_ regions: Regions?) {
        self.regions = regions
    }

    /// Splits the network: `side(index)` names each node's side.
    public mutating func partition(nodes: Int, side: (Int) -> UInt8) {
        sides = (0..<nodes).map(side)
    }

    public mutating func heal() {
        sides = []
    }

    public func isReachable(_ a: Int, _ b: Int) -> Bool {
        sides.isEmpty || a >= sides.count || b >= sides.count || sides[a] == sides[b]
    }

    /// Whether the next datagram is lost.
    public func drawLoss(using random: inout SeededRandom) -> Bool {
        loss > 0 && Double.random(in: 0..<1, using: &random) < loss
    }

    /// The base one-way latency from region `r` to region `s` before asymmetry, ns.
    public func regionBase(_ r: Int, _ s: Int) -> Int64 {
        regions.map { $0.nanoseconds[r][s] } ?? latencyMinimum.nanosecondsClamped
    }

    /// Node `index`'s region (0 without regions).
    public func region(of index: Int) -> Int {
        guard let regions, index < regions.of.count else { return 0 }
        return Int(regions.of[index])
    }

    /// The factor on the base from `a` to `b`: 1 + asymmetry·u, with u(a, b) = −u(b, a).
    public func asymmetryFactor(from a: Int, to b: Int) -> Double {
        guard asymmetry > 0, a != b else { return 1 }
        let hash = mix(asymmetrySeed, UInt64(min(a, b)), UInt64(max(a, b)))
        let u = Double(hash >> 11) / Double(1 << 52) - 1  // [−1, 1)
        return 1 + asymmetry * (a < b ? u : -u)
    }

    /// The pair's base one-way latency: no datagram from `a` to `b` arrives sooner.
    public func baseLatency(from a: Int, to b: Int) -> Duration {
        let base = regionBase(region(of: a), region(of: b))
        guard asymmetry > 0 else { return .nanoseconds(base) }
        return .nanoseconds(Self.scaled(base, by: asymmetryFactor(from: a, to: b)))
    }

    /// A base of `base` ns scaled by an asymmetry factor, rounded to the nanosecond.
    @inline(__always)
    static func scaled(_ base: Int64, by factor: Double) -> Int64 {
        factor == 1 ? base : Int64((Double(base) * factor).rounded())
    }

    /// Mean of the exponential tail on top of a base of `base` ns, ns.
    public func tailMean(base: Int64) -> Double {
        jitter.map { $0 * Double(base) } ?? Double(latencyMeanExtra.nanosecondsClamped)
    }

    /// The next datagram's one-way latency from `a` to `b`.
    public func drawLatency(from a: Int, to b: Int, using random: inout SeededRandom) -> Duration {
        let base = baseLatency(from: a, to: b)
        let mean = tailMean(base: base.nanosecondsClamped) / 1_000  // µs, as the draw always was
        guard mean > 0 else { return base }
        let uniform = Double.random(in: Double.ulpOfOne..<1, using: &random)
        let tail = -mean * Self.naturalLog(uniform)
        return base + .nanoseconds(Int64(tail * 1_000))
    }

    /// ln(x) for 0 < x ≤ 1 without Foundation: argument reduction by powers of two, then the
    /// atanh series (ample precision for latency draws).
    static func naturalLog(_ x: Double) -> Double {
        var mantissa = x
        var exponent = 0.0
        while mantissa < 0.5 {
            mantissa *= 2
            exponent -= 1
        }
        let y = (mantissa - 1) / (mantissa + 1)
        let y2 = y * y
        var term = y
        var sum = 0.0
        var n = 1.0
        while abs(term / n) > 1e-12 {
            sum += term / n
            term *= y2
            n += 2
        }
        return 2 * sum + exponent * 0.693_147_180_559_945_3
    }
}
