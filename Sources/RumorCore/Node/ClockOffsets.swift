/// How far each peer's wall clock is from this node's, and whether this node's own clock is so
/// far from a majority of them that it must stop writing: a fence.
///
/// Last-writer-wins orders writes by hybrid timestamps, whose physical part is the writer's wall
/// clock: a node whose clock runs an hour ahead wins every conflict for an hour, one an hour
/// behind loses them. So a node measures its peers' clocks, and one that finds itself beyond
/// `ReplicationSettings.maximumClockOffset` from a majority refuses local writes (`clock_skew`)
/// until its clock is back: it keeps serving reads and receiving replication, and lifts the
/// fence by itself. (CockroachDB measures offsets the same way and stops such a node instead.)
///
/// **A sample** comes from an anti-entropy pull: the answer carries the peer's wall clock `T`
/// when it answered; the pull left at monotonic time `s` and the answer came back at `r`, so at
/// `r` the peer's clock reads `T + (r - s)/2`, give or take `(r - s)/2` (NTP's estimate and
/// error bound). It is kept against this node's *monotonic* clock, not its wall clock: a step of
/// this node's wall clock shows at once in every offset, with no new sample; a peer's step
/// shows at its next sample.
///
/// **The vote.** Each of the `referencePeers` most recently measured live peers (samples at most
/// `sampleLifetime` old) sees this node's clock beyond the bound, ahead or behind, when its
/// offset is past the bound by more than the sample's error. With `voters` = those peers that
/// could vote (at most `referencePeers`) plus this node, the node is fenced when more than half
/// the voters see it beyond on the same side: 2 of 2 peers in a swarm of 3, 3 of 4 in one of 5,
/// 5 of 7 in a large one. A lone node, a pair (neither can tell which clock is wrong), or a node
/// that has not yet measured enough peers writes as before. Peers skewed in opposite
/// directions do not add up, so a correct node among a few bad clocks is not fenced.
public struct ClockOffsets: Sendable {
    /// One peer's last measurement.
    public struct Sample: Sendable, Hashable {
        /// The peer's wall clock minus this node's monotonic clock, in milliseconds.
        var peerWallMinusLocalMonotonic: Int64
        /// Half the round trip it was measured over (plus the peer's millisecond rounding).
        public var errorMilliseconds: Int64
        public var measuredAt: Instant
    }

    /// A peer's clock as this node sees it now.
    public struct Offset: Sendable, Hashable {
        /// The peer's clock minus this node's: positive when the peer's is ahead.
        public var milliseconds: Int64
        public var errorMilliseconds: Int64
    }

    /// What the peers' clocks say of this node's now.
    public struct Verdict: Sendable, Hashable {
        /// This node's clock minus the median peer's (positive: ahead), over the reference
        /// peers; nil with none measured.
        public var offsetMilliseconds: Int64?
        /// Reference peers measured, and of them those that see this node beyond the bound ahead,
        /// and behind.
        public var measuredPeers: Int
        public var peersSeeingAhead: Int
        public var peersSeeingBehind: Int
        /// Peers that must agree for a fence: more than half of the voters.
        public var peersNeeded: Int
        public var maximumMilliseconds: Int64

        public var isFenced: Bool { max(peersSeeingAhead, peersSeeingBehind) >= peersNeeded }

        /// "3600012 ms ahead of the median peer (beyond the bound for 2 of 2 measured peers, 2
        /// needed to fence; the bound is 500 ms)", or "3 ms behind the median peer (2 measured;
        /// the bound is 500 ms)".
        public var description: String {
            guard let offset = offsetMilliseconds else { return "not measured yet (no peer answered a pull)" }
            let side = "\(abs(offset)) ms \(offset >= 0 ? "ahead of" : "behind") the median peer"
            let beyond = max(peersSeeingAhead, peersSeeingBehind)
            guard beyond > 0 else { return "\(side) (\(measuredPeers) measured; the bound is \(maximumMilliseconds) ms)" }
            return "\(side) (beyond the bound for \(beyond) of \(measuredPeers) measured peers, \(peersNeeded) needed to fence; "
                + "the bound is \(maximumMilliseconds) ms)"
        }
    }

    public static let referencePeers = 7
    public static let sampleLifetime: Duration = .seconds(120)

    public let maximumMilliseconds: Int64
    public private(set) var samples: [String: Sample] = [:]
    /// The measured peers, most recently measured first (the vote reads the first few live ones
    /// without sorting every sample).
    private var recent: [String] = []
    /// Whether the last `update` fenced the node (its log lines follow changes of it).
    public private(set) var fenced = false

    public init(maximum: Duration) {
        maximumMilliseconds = max(0, maximum.nanosecondsClamped / 1_000_000)
    }

    /// The wall clock minus the monotonic clock, in milliseconds: what a wall-clock step moves.
    static func wallMinusMonotonic(_ time: NodeTime) -> Int64 {
        Int64(clamping: time.wallMilliseconds) - time.now.nanoseconds / 1_000_000
    }

    /// Records `peer`'s clock: it read `peerWallMilliseconds` while answering a pull sent at
    /// `sentAt`; the answer arrived at `time`.
    public mutating func record(peer: String, peerWallMilliseconds: UInt64, sentAt: Instant, at time: NodeTime) {
        let roundTrip = max(0, (time.now - sentAt).nanosecondsClamped / 1_000_000)
        let peerWallNow = Int64(clamping: peerWallMilliseconds) + roundTrip / 2
        samples[peer] = Sample(
            peerWallMinusLocalMonotonic: peerWallNow - time.now.nanoseconds / 1_000_000,
            errorMilliseconds: (roundTrip + 1) / 2 + 1, measuredAt: time.now)
        if let index = recent.firstIndex(of: peer) { recent.remove(at: index) }
        recent.insert(peer, at: 0)
        // `recent` runs newest first, so the expired samples are at its end.
        while let oldest = recent.last, let sample = samples[oldest], time.now - sample.measuredAt > Self.sampleLifetime {
            samples[oldest] = nil
            recent.removeLast()
        }
    }

    /// `peer`'s clock relative to this node's now, if measured.
    public func offset(of peer: String, at time: NodeTime) -> Offset? {
        samples[peer].map { Self.offset($0, at: time) }
    }

    static func offset(_ sample: Sample, at time: NodeTime) -> Offset {
        Offset(milliseconds: sample.peerWallMinusLocalMonotonic - wallMinusMonotonic(time), errorMilliseconds: sample.errorMilliseconds)
    }

    /// What the `livePeers`' clocks say of this node's now.
    public func verdict(livePeers: Set<String>, at time: NodeTime) -> Verdict {
        var reference: [Offset] = []
        for peer in recent where reference.count < Self.referencePeers && livePeers.contains(peer) {
            guard let sample = samples[peer], time.now - sample.measuredAt <= Self.sampleLifetime else { continue }
            reference.append(Self.offset(sample, at: time))
        }
        let ahead = reference.count { -$0.milliseconds - $0.errorMilliseconds > maximumMilliseconds }
        let behind = reference.count { $0.milliseconds - $0.errorMilliseconds > maximumMilliseconds }
        let ours = reference.map { -$0.milliseconds }.sorted()
        let voters = min(livePeers.count, Self.referencePeers) + 1
        return Verdict(
            offsetMilliseconds: ours.isEmpty ? nil : ours[ours.count / 2], measuredPeers: reference.count,
            peersSeeingAhead: ahead, peersSeeingBehind: behind, peersNeeded: voters / 2 + 1,
            maximumMilliseconds: maximumMilliseconds)
    }

    /// Takes the verdict now, and returns the log line of a fence that begins or ends.
    public mutating func update(livePeers: Set<String>, at time: NodeTime) -> NodeLog? {
        let verdict = verdict(livePeers: livePeers, at: time)
        guard verdict.isFenced != fenced else { return nil }
        fenced = verdict.isFenced
        let fields = [
            "offset_ms": verdict.offsetMilliseconds.map(String.init) ?? "unknown", "bound_ms": "\(maximumMilliseconds)",
            "measured_peers": "\(verdict.measuredPeers)",
        ]
        return fenced
            ? NodeLog(
                .warning,
                "clock fenced: this node's clock is \(verdict.description); local writes answer clock_skew until it is "
                    + "back within the bound (reads and replication go on): fix this machine's time sync", fields)
            : NodeLog(.info, "clock back within the bound: local writes are taken again", fields)
    }
}
