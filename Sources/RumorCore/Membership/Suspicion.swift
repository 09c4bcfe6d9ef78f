#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lifeguard's dynamic suspicion timeout for one suspected member.
///
/// The timeout starts at `maximum` and shrinks logarithmically toward `minimum` as independent
/// members confirm the suspicion, reaching `minimum` after `expectedConfirmations`.
/// - SeeAlso: Lifeguard §IV-B "Dynamic Suspicion Timeout".
struct Suspicion: Sendable, Hashable {
    let start: Instant
    let minimum: Duration
    let maximum: Duration
    /// How many independent confirmations bring the timeout down to `minimum` (`k`).
    let expectedConfirmations: Int
    /// Who has accused the member so far, the first accuser included.
    private(set) var accusers: Set<String>

    init(from accuser: String, start: Instant, minimum: Duration, maximum: Duration, expectedConfirmations: Int) {
        self.start = start
        self.minimum = minimum
        self.maximum = maximum
        self.expectedConfirmations = expectedConfirmations
        self.accusers = [accuser]
    }

    /// Confirmations beyond the first accusation, capped at `expectedConfirmations`.
    var confirmations: Int { min(accusers.count - 1, expectedConfirmations) }

    /// Records an accusation. Returns true when it came from someone new and so shortened the
    /// timeout (the caller re-gossips such confirmations).
    mutating func confirm(from accuser: String) -> Bool {
        guard confirmations < expectedConfirmations else { return false }
        return accusers.insert(accuser).inserted
    }

    /// When the member is declared dead unless it refutes first.
    var deadline: Instant {
        start + Self.timeout(
            confirmations: confirmations, expected: expectedConfirmations, minimum: minimum, maximum: maximum)
    }

    /// `max - (log(c + 1) / log(k + 1)) * (max - min)`, floored to milliseconds and at `min`.
    static func timeout(confirmations: Int, expected: Int, minimum: Duration, maximum: Duration) -> Duration {
        guard expected >= 1 else { return minimum }
        let fraction = log(Double(confirmations + 1)) / log(Double(expected + 1))
        let span = Double((maximum - minimum).nanosecondsClamped)
        let raw = Double(maximum.nanosecondsClamped) - fraction * span
        let milliseconds = (raw / 1e6).rounded(.down)
        return Swift.max(minimum, .milliseconds(Int64(milliseconds)))
    }
}

extension MembershipSettings {
    /// `suspicionMultiplier * max(1, log10(N)) * probeInterval`, memberlist's `suspicionTimeout`,
    /// with the probe period in use (`probeInterval` stretched on a slow network) for
    /// `probeInterval`.
    func minimumSuspicionTimeout(memberCount: Int, probeInterval: Duration) -> Duration {
        let scale = Swift.max(1.0, log10(Swift.max(1.0, Double(memberCount))))
        let milliScaled = Int64(scale * 1000)
        return probeInterval * suspicionMultiplier * Int(milliScaled) / 1000
    }

    /// `retransmitMultiplier * ceil(log10(N + 1))`, memberlist's `retransmitLimit`.
    func retransmitLimit(memberCount: Int) -> Int {
        retransmitMultiplier * Int(log10(Double(memberCount + 1)).rounded(.up))
    }

    /// The push-pull interval, stretched for clusters above 32 members as memberlist's `pushPullScale`.
    func scaledPushPullInterval(memberCount: Int) -> Duration {
        guard memberCount > 32 else { return pushPullInterval }
        let multiplier = (log2(Double(memberCount)) - log2(32.0)).rounded(.up) + 1
        return pushPullInterval * Int(multiplier)
    }
}
