import RumorCore

/// The simulated network between the nodes of a `VirtualCluster`: one-way latency, datagram
/// loss, and partitions. Fates are drawn from the cluster's seeded generator.
public struct VirtualNetwork: Sendable {
    /// One-way latency: this minimum plus an exponential tail of mean `latencyMeanExtra`.
    public var latencyMinimum: Duration = .microseconds(200)
    public var latencyMeanExtra: Duration = .microseconds(300)
    /// Probability that a datagram is lost (streams are reliable).
    public var loss = 0.0
    /// Partition side of each node (by index); nodes reach only their own side. Empty: whole.
    public var sides: [UInt8] = []

    public init() {}

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

    /// The next datagram's one-way latency.
    public func drawLatency(using random: inout SeededRandom) -> Duration {
        let mean = Double(latencyMeanExtra.nanosecondsClamped) / 1_000
        guard mean > 0 else { return latencyMinimum }
        let uniform = Double.random(in: Double.ulpOfOne..<1, using: &random)
        let tail = -mean * Self.naturalLog(uniform)
        return latencyMinimum + .nanoseconds(Int64(tail * 1_000))
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
