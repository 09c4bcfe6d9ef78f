/// Lifeguard's local health ("awareness"): a score that rises when this node misses acks or has
/// to refute suspicions — signs that *it* is slow — and falls with successful probes.
///
/// Timeouts are multiplied by `score + 1`, so a struggling node probes less aggressively and
/// accuses others less readily.
/// - SeeAlso: Lifeguard (Dadgar et al., 2018), §IV-A "Local Health Multiplier".
struct Awareness: Sendable, Hashable {
    /// Scores range over `0..<maximum`.
    let maximum: Int
    private(set) var score = 0

    init(maximum: Int) {
        self.maximum = max(1, maximum)
    }

    /// Adds `delta`, clamping to `0...maximum - 1`.
    mutating func apply(_ delta: Int) {
        score = min(max(score + delta, 0), maximum - 1)
    }

    /// `timeout * (score + 1)`.
    func scale(_ timeout: Duration) -> Duration {
        timeout * (score + 1)
    }
}
