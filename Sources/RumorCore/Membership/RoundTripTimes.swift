/// Round-trip times to peers, estimated from every request this node sends that has a matching
/// answer: probe acks, tree-relay confirmations and anti-entropy pull answers. Every timer that
/// waits for a peer derives from them (`timeout(for:backOff:floor:cap:)`) instead of a constant
/// that assumes a LAN.
///
/// Each peer's estimate is RFC 6298's filter: the first sample R sets SRTT = R and
/// RTTVAR = R/2; later ones RTTVAR = ¾·RTTVAR + ¼·|SRTT − R| and SRTT = ⅞·SRTT + ⅛·R; the
/// retransmission timeout is SRTT + max(G, 4·RTTVAR), doubled for each send of the same request
/// that went unanswered. Karn's rule is the callers': an answer to a request sent more than once
/// is no sample. The network's estimate stands in for an unmeasured peer only once it has
/// `priorSamples` samples: the first few come from whichever peers answered first (the nearest,
/// in a swarm across regions), and would time a far peer out before it could answer. A request to a peer that went unanswered (`noAnswer`) doubles the peer's
/// timeout for every later request until a sample comes (RFC 6298 §5.5): after the round trip
/// steps up, the next requests wait long enough to be answered, and so give the samples that
/// correct the estimate. A peer not measured yet takes the estimate of the whole network (the same
/// filter fed with every sample), and with no sample at all the RFC's initial 1 s.
/// - SeeAlso: RFC 6298 §2, §3 and §5; Karn and Partridge (1987).
public struct RoundTripTimes: Sendable {
    public struct Estimate: Sendable, Hashable {
        /// SRTT, in microseconds.
        public private(set) var smoothedMicroseconds: UInt32
        /// RTTVAR, in microseconds.
        public private(set) var variationMicroseconds: UInt32
        /// Which sample (of this node's, counted from one) last updated it: the oldest goes first
        /// when the table is full.
        var updatedAt: UInt64
        /// Requests unanswered since the last sample (each doubles the timeout; at most 6).
        public private(set) var backOffs: UInt8 = 0

        init(first sample: UInt32, at sequence: UInt64) {
            smoothedMicroseconds = sample
            variationMicroseconds = sample / 2
            updatedAt = sequence
        }

        mutating func update(with sample: UInt32, at sequence: UInt64) {
            let smoothed = Int64(smoothedMicroseconds)
            let variation = Int64(variationMicroseconds)
            let deviation = abs(smoothed - Int64(sample))
            variationMicroseconds = UInt32(clamping: (3 * variation + deviation) / 4)
            smoothedMicroseconds = UInt32(clamping: (7 * smoothed + Int64(sample)) / 8)
            updatedAt = sequence
            backOffs = 0
        }

        mutating func backOff() { backOffs = min(backOffs + 1, 6) }

        public var smoothed: Duration { .microseconds(smoothedMicroseconds) }
        public var variation: Duration { .microseconds(variationMicroseconds) }

        /// RFC 6298's RTO before any back-off: SRTT + max(G, 4·RTTVAR).
        public var retransmissionTimeout: Duration {
            .microseconds(Int64(smoothedMicroseconds) + max(RoundTripTimes.granularityMicroseconds, 4 * Int64(variationMicroseconds)))
        }
    }

    /// The clock granularity G of RFC 6298: 1 ms.
    static let granularityMicroseconds: Int64 = 1_000
    /// RFC 6298's timeout before any sample (§2.1).
    public static let initialTimeout: Duration = .seconds(1)
    /// Samples the network's estimate needs before it stands in for an unmeasured peer (before
    /// that, RFC 6298's initial 1 s does). 16.
    public static let priorSamples = 16
    /// Peers remembered at most (the oldest estimate goes first).
    public static let capacity = 4096

    public private(set) var peers: [NodeAddress: Estimate] = [:]
    /// Every sample of every peer through one filter: the estimate for a peer not measured yet.
    public private(set) var network: Estimate?
    private var samples: UInt64 = 0

    public init() {}

    /// Adds one round trip to `peer` (an answer to a request sent once).
    public mutating func record(_ roundTrip: Duration, to peer: NodeAddress) {
        let sample = UInt32(clamping: max(0, roundTrip.nanosecondsClamped / 1_000))
        samples += 1
        if let index = peers.index(forKey: peer) {
            peers.values[index].update(with: sample, at: samples)
        } else {
            if peers.count >= Self.capacity { evictOldest() }
            peers[peer] = Estimate(first: sample, at: samples)
        }
        if network == nil {
            network = Estimate(first: sample, at: samples)
        } else {
            network!.update(with: sample, at: samples)
        }
    }

    /// A request to `peer` went unanswered in its timeout: later ones wait twice as long, until
    /// a sample comes.
    public mutating func noAnswer(from peer: NodeAddress) {
        peers[peer]?.backOff()
    }

    /// Forgets `peer` (it failed, left or was reaped): a node back at its address starts over.
    public mutating func forget(_ peer: NodeAddress) {
        peers[peer] = nil
    }

    /// `peer`'s estimate, or the network's when `peer` was not measured (nil: no sample yet, or
    /// too few for the network's to stand in).
    public func estimate(of peer: NodeAddress?) -> Estimate? {
        peer.flatMap { peers[$0] } ?? (samples >= Self.priorSamples ? network : nil)
    }

    /// How long to wait for `peer`'s answer to a request: its RTO (or the network's), doubled
    /// `backOff` times and once more per unanswered request since its last sample, then kept
    /// within `floor`…`cap`; a cap below a measured RTO is raised to it (a timeout shorter than
    /// the round trip only sends copies). With no sample at all,
    /// RFC 6298's initial 1 s within `floor`…`cap`. The floor is the caller's: the shortest wait
    /// that does not fire on a busy host answering from loopback.
    public func timeout(for peer: NodeAddress?, backOff: Int = 0, floor: Duration, cap: Duration) -> Duration {
        let estimate = estimate(of: peer)
        let measured = estimate?.retransmissionTimeout
        let base = measured ?? Self.initialTimeout
        let backedOff = base * (1 << min(max(0, backOff) + Int(estimate?.backOffs ?? 0), 16))
        return min(max(floor, backedOff), max(cap, measured ?? floor, floor))
    }

    /// The typical one-way delay across the network (half the network's SRTT; nil: no sample).
    public var oneWayDelay: Duration? { network.map { $0.smoothed / 2 } }

    private mutating func evictOldest() {
        // Amortized: drop the oldest eighth at once.
        let drop = max(1, Self.capacity / 8)
        let oldest = peers.sorted { $0.value.updatedAt < $1.value.updatedAt }.prefix(drop)
        for (peer, _) in oldest { peers[peer] = nil }
    }
}
