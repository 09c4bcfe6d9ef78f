import RumorCore

/// This node's clock as its peers see it (`ClockOffsets.Verdict`), for `rumor info`, the
/// health answer, `/metrics` and the status page.
public struct ClockSnapshot: Codable, Sendable, Hashable {
    /// True while the node refuses local writes (`clock_skew`): its clock is beyond the bound
    /// from a majority of the peers it measured.
    public var fenced: Bool
    /// This node's clock minus the median measured peer's, in milliseconds (positive: ahead);
    /// nil before any peer was measured.
    public var offsetMs: Int64?
    /// The bound (the agent's `max_clock_offset`).
    public var maxOffsetMs: Int64
    /// Peers measured lately (at most `ClockOffsets.referencePeers` count).
    public var measuredPeers: Int
    /// Of them, how many must see this node beyond the bound, on one side, for a fence.
    public var peersNeededToFence: Int
    /// One line: "12 ms ahead (…)", or why the node is fenced.
    public var text: String

    public init(_ verdict: ClockOffsets.Verdict) {
        fenced = verdict.isFenced
        offsetMs = verdict.offsetMilliseconds
        maxOffsetMs = verdict.maximumMilliseconds
        measuredPeers = verdict.measuredPeers
        peersNeededToFence = verdict.peersNeeded
        text = verdict.description
    }
}
