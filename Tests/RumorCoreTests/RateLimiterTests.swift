@testable import RumorCore
import Testing


struct RateLimiterTests {
    @Test func aPeerMaySpendItsBurstThenTheRefillRate() {
        var limiter = RateLimiter<String>(burst: 3, perSecond: 2)
        let start = Instant.zero
        let burst = (0..<5).map { _ in limiter.allow("a", now: start) }
        #expect(burst == [true, true, true, false, false])
        let other = limiter.allow("b", now: start)
        #expect(other, "peers have separate buckets")
        let refilled = limiter.allow("a", now: start + .milliseconds(500))
        #expect(refilled, "one token back after 0.5 s at 2/s")
        let tooSoon = limiter.allow("a", now: start + .milliseconds(600))
        #expect(!tooSoon)
        let later = (0..<4).map { _ in limiter.allow("a", now: start + .seconds(60)) }
        #expect(later == [true, true, true, false], "refill stops at the burst")
    }

    @Test func trackedPeersAreBounded() {
        var limiter = RateLimiter<String>(burst: 1, perSecond: 1, maximumPeers: 2)
        let results = [
            limiter.allow("a", now: .zero),
            limiter.allow("b", now: .zero + .seconds(1)),
            limiter.allow("c", now: .zero + .seconds(1)),  // forgets "a", the stalest
            limiter.allow("a", now: .zero + .seconds(1)),  // a forgotten peer starts full
        ]
        #expect(results == [true, true, true, true])
    }
}
