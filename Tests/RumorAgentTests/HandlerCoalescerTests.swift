import RumorAPI
import RumorCore
import Testing

@testable import RumorAgent

/// Serf's coalescing of handler events (docs/serf-wire.md §5.5), with explicit times.
struct HandlerCoalescerTests {
    static let me = (name: "me", tags: ["role": "web"])

    static func at(_ milliseconds: Int64) -> Instant { Instant(nanoseconds: milliseconds * 1_000_000) }

    static func user(_ time: LamportTime, _ name: String, _ payload: String, coalesce: Bool = true) -> HandlerEvent {
        .user(SerfUserEvent(time: time, name: name, payload: Array(payload.utf8), coalesce: coalesce), self: me)
    }

    static func member(_ type: String, _ name: String) -> HandlerEvent {
        .member(
            type: type, members: [MemberSnapshot(name: name, address: "127.0.0.1:7946", state: "alive", incarnation: 1, tags: [:], protocolVersion: 5)],
            selfName: "me", selfTags: me.tags)
    }

    static func describe(_ events: [HandlerEvent]) -> [String] {
        events.map { event in
            switch event {
            case .user(let user, _): "user \(user.name) \(user.time) \(String(decoding: user.payload, as: UTF8.self))"
            case .member(let type, let members, _, _): "\(type) " + members.map(\.name).joined(separator: ",")
            case .query(let query, _): "query \(query.name)"
            }
        }
    }

    @Test func aBurstOfCoalescedEventsRunsOnceWithTheLatest_othersPassAtOnce() {
        var coalescer = HandlerCoalescer()
        #expect(coalescer.add(Self.user(1, "deploy", "p1"), now: Self.at(0)).isEmpty)
        #expect(Self.describe(coalescer.add(Self.user(2, "restart", "r1", coalesce: false), now: Self.at(100))) == ["user restart 2 r1"])
        #expect(coalescer.add(Self.user(3, "deploy", "p3"), now: Self.at(200)).isEmpty)
        #expect(coalescer.add(Self.user(2, "deploy", "p2"), now: Self.at(300)).isEmpty, "older than the latest: dropped")
        #expect(coalescer.nextDue == Self.at(1300), "quiescence: 1 s after the last event")
        #expect(coalescer.flush(now: Self.at(1299)).isEmpty)
        #expect(Self.describe(coalescer.flush(now: Self.at(1300))) == ["user deploy 3 p3"])
        #expect(coalescer.nextDue == nil)
    }

    @Test func aSteadyStreamIsFlushedAfterThePeriod() {
        var coalescer = HandlerCoalescer()
        for step in 0..<10 {
            _ = coalescer.add(Self.user(LamportTime(step + 1), "tick", "\(step)"), now: Self.at(Int64(step) * 500))
        }
        #expect(coalescer.nextDue == Self.at(3000), "3 s after the first, though events keep coming")
        #expect(Self.describe(coalescer.flush(now: Self.at(4500))) == ["user tick 10 9"])
    }

    @Test func memberEventsKeepTheLatestPerMemberAndGroupByType() {
        var coalescer = HandlerCoalescer()
        _ = coalescer.add(Self.member("member-join", "a"), now: Self.at(0))
        _ = coalescer.add(Self.member("member-join", "b"), now: Self.at(10))
        _ = coalescer.add(Self.member("member-join", "c"), now: Self.at(20))
        _ = coalescer.add(Self.member("member-failed", "b"), now: Self.at(30))
        #expect(Self.describe(coalescer.flush(now: Self.at(2000))) == ["member-join a,c", "member-failed b"])
        // A repeat of what was last handed over is not handed over again, an update is.
        _ = coalescer.add(Self.member("member-join", "a"), now: Self.at(3000))
        _ = coalescer.add(Self.member("member-update", "c"), now: Self.at(3000))
        #expect(Self.describe(coalescer.flush(now: Self.at(5000))) == ["member-update c"])
        _ = coalescer.add(Self.member("member-update", "c"), now: Self.at(6000))
        #expect(Self.describe(coalescer.flush(now: Self.at(8000))) == ["member-update c"])
    }
}
