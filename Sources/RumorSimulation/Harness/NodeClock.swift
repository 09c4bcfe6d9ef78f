import RumorCore

/// A simulated node's wall clock: true (virtual) time plus an offset, which drifts at a steady
/// rate and can be stepped, as a VM resumed from a snapshot or an RTC that lost power does.
public struct NodeClock: Sendable, Hashable {
    /// Milliseconds ahead of true time (negative: behind) at `since`.
    public private(set) var offsetMilliseconds: Int64 = 0
    /// Milliseconds gained per second of true time (0.05 is 50 ppm, a poor crystal; negative
    /// loses time).
    public private(set) var driftMillisecondsPerSecond: Double = 0
    private var since = Instant.zero

    public init() {}

    /// The offset at `now`.
    public func offset(at now: Instant) -> Int64 {
        offsetMilliseconds + Int64((driftMillisecondsPerSecond * (now - since).seconds).rounded())
    }

    /// Steps the clock to `offsetMilliseconds` at `now`, drifting at `drift` from there.
    public mutating func set(offsetMilliseconds: Int64, drift: Double = 0, at now: Instant) {
        self.offsetMilliseconds = offsetMilliseconds
        driftMillisecondsPerSecond = drift
        since = now
    }
}
