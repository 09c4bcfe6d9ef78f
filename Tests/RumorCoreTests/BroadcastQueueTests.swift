import Testing

@testable import RumorCore

/// The gossip queue's order, replacement and retirement, and what a take costs.
struct BroadcastQueueTests {
    static func alive(_ node: String, meta: Int = 0) -> Message {
        .alive(Alive(incarnation: 1, node: node, address: NodeAddress(ip: [10, 0, 0, 1], port: 7946), meta: [UInt8](repeating: 0, count: meta), versions: .rumor))
    }

    static func names(_ messages: [Message]) -> [String] {
        messages.map { if case .alive(let alive) = $0 { alive.node } else { "?" } }
    }

    @Test func fewestTransmitsFirst_newestFirstAmongEquals() {
        var queue = BroadcastQueue()
        for name in ["a", "b", "c"] { queue.enqueue(Self.alive(name), about: name) }
        let first = queue.take(budget: 1400, overhead: 2, limit: 5, maximumCount: 2)
        #expect(Self.names(first.sent) == ["c", "b"])
        queue.enqueue(Self.alive("d"), about: "d")
        let second = queue.take(budget: 1400, overhead: 2, limit: 5, maximumCount: 10)
        #expect(Self.names(second.sent) == ["d", "a", "c", "b"], "never-sent news before once-sent news")
        #expect(!queue.hasFresh)
        #expect(queue.count == 4)
    }

    @Test func newerNewsAboutTheSameSubject_replacesTheQueuedItem() {
        var queue = BroadcastQueue()
        queue.enqueue(Self.alive("a"), about: "a")
        queue.enqueue(Self.alive("b"), about: "b")
        _ = queue.take(budget: 1400, overhead: 2, limit: 5, maximumCount: 10)
        queue.enqueue(.suspect(Suspect(incarnation: 1, node: "a", from: "b")), about: "a")
        #expect(queue.count == 2)
        #expect(queue.hasFresh)
        let taken = queue.take(budget: 1400, overhead: 2, limit: 5, maximumCount: 10).sent
        #expect(taken.count == 2)
        guard case .suspect = taken.first else {
            Issue.record("the replacing suspect goes first (never sent), the replaced alive is gone: \(taken)")
            return
        }
    }

    @Test func anItemLeavesAfterLimitTransmits_andIsReturnedRetired() {
        var queue = BroadcastQueue()
        queue.enqueue(Self.alive("a"), about: "a")
        var retired: [Message] = []
        for _ in 0..<3 { retired += queue.take(budget: 1400, overhead: 2, limit: 3, maximumCount: 10).retired }
        #expect(Self.names(retired) == ["a"])
        #expect(queue.isEmpty)
        #expect(queue.take(budget: 1400, overhead: 2, limit: 3, maximumCount: 10).sent.isEmpty)
    }

    @Test func itemsThatDoNotFit_stayQueued_andSmallerOnesBehindThemAreSent() {
        var queue = BroadcastQueue()
        queue.enqueue(Self.alive("small"), about: "small")
        queue.enqueue(Self.alive("big", meta: 400), about: "big")
        let taken = queue.take(budget: 200, overhead: 2, limit: 5, maximumCount: 10)
        #expect(Self.names(taken.sent) == ["small"])
        #expect(queue.count == 2)
        #expect(queue.hasFresh, "the big item was not sent")
    }

    @Test func aTakeStopsAfterSkipLimitItemsInARowThatDoNotFit() {
        var queue = BroadcastQueue()
        queue.enqueue(Self.alive("small"), about: "small")
        for index in 0..<BroadcastQueue.skipLimit { queue.enqueue(Self.alive("big\(index)", meta: 400), about: "big\(index)") }
        #expect(queue.take(budget: 200, overhead: 2, limit: 5, maximumCount: 10).sent.isEmpty)
        #expect(queue.count == BroadcastQueue.skipLimit + 1)
    }

    @Test func thousandsOfReplacements_keepTheQueueAtOneItemPerSubject() {
        var queue = BroadcastQueue()
        for round in 0..<50 {
            for index in 0..<100 { queue.enqueue(Self.alive("n\(index)", meta: round % 3), about: "n\(index)") }
            _ = queue.take(budget: 1400, overhead: 2, limit: 1_000, maximumCount: 255)
        }
        #expect(queue.count == 100)
        var seen = Set<String>()
        while !queue.isEmpty {
            let sent = queue.take(budget: 100_000, overhead: 2, limit: 1, maximumCount: 255).sent
            #expect(!sent.isEmpty)
            seen.formUnion(Self.names(sent))
        }
        #expect(seen.count == 100, "each subject's latest item, once")
    }
}
