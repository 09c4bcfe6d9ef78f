/// Per-peer token buckets for requests that cost the answering node real work (push-pull state
/// exchanges, anti-entropy pulls): each peer may spend `burst` at once and `perSecond` after
/// that; requests beyond are dropped and counted. Time is passed in, so the rules are testable.
public struct RateLimiter<Peer: Hashable & Sendable>: Sendable {
    public let burst: Double
    public let perSecond: Double
    /// Most peers tracked; the stalest is forgotten first (a forgotten peer starts full).
    public let maximumPeers: Int
    private var buckets: [Peer: (tokens: Double, updated: Instant)] = [:]

    public init(burst: Double, perSecond: Double, maximumPeers: Int = 4096) {
        self.burst = burst
        self.perSecond = perSecond
        self.maximumPeers = maximumPeers
    }

    /// Takes one token from `peer`'s bucket; false when it is empty (drop the request).
    public mutating func allow(_ peer: Peer, now: Instant) -> Bool {
        if buckets.count >= maximumPeers, buckets[peer] == nil,
            let stalest = buckets.min(by: { $0.value.updated < $1.value.updated })
        {
            buckets[stalest.key] = nil
        }
        // Updated in place: one lookup per request.
        return Self.take(from: &buckets[peer, default: (burst, now)], now: now, burst: burst, perSecond: perSecond)
    }

    private static func take(
        from bucket: inout (tokens: Double, updated: Instant), now: Instant, burst: Double, perSecond: Double
    ) -> Bool {
        let elapsed = Double((now - bucket.updated).nanosecondsClamped) / 1e9
        bucket.tokens = min(burst, bucket.tokens + max(0, elapsed) * perSecond)
        bucket.updated = now
        guard bucket.tokens >= 1 else { return false }
        bucket.tokens -= 1
        return true
    }
}
