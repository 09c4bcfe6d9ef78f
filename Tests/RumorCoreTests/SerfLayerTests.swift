import Testing

@testable import RumorCore

/// Serf's rules for intents and user events, one input at a time (docs/serf-wire.md §3–5).
struct SerfLayerTests {
    static func event(_ time: LamportTime, _ name: String = "deploy", _ payload: String = "v1") -> SerfUserEvent {
        SerfUserEvent(time: time, name: name, payload: Array(payload.utf8), coalesce: true)
    }

    @Test func clocksStartAtOneAndWitnessMovesPast() {
        var clock = SerfLayer.Clock()
        #expect(clock.time == 1)
        clock.witness(0)
        #expect(clock.time == 1)
        clock.witness(1)
        #expect(clock.time == 2, "witnessing the current time advances it, as in Serf")
        clock.witness(9)
        #expect(clock.time == 10)
        #expect(clock.increment() == 11)
    }

    @Test func anEventIsDeliveredAndRelayedOnce() {
        var layer = SerfLayer(localName: "me")
        #expect(layer.receive(.userEvent(Self.event(3))) == [.deliver(Self.event(3)), .broadcast(.userEvent(Self.event(3)))])
        #expect(layer.receive(.userEvent(Self.event(3))).isEmpty, "a duplicate is dropped")
        #expect(layer.eventClock.time == 4)
        // Same time, another event: both kept.
        #expect(layer.receive(.userEvent(Self.event(3, "restart"))).count == 2)
        // Coalescing plays no part in deduplication.
        var other = Self.event(3)
        other.coalesce = false
        #expect(layer.receive(.userEvent(other)).isEmpty)
    }

    @Test func eventsOlderThanTheRingAreDropped() {
        var layer = SerfLayer(localName: "me")
        _ = layer.receive(.userEvent(Self.event(2000)))
        #expect(layer.receive(.userEvent(Self.event(1000))).isEmpty)
        #expect(layer.receive(.userEvent(Self.event(1600))).count == 2)
    }

    @Test func ownEventsTakeTheClockAndAreBounded() throws {
        var layer = SerfLayer(localName: "me")
        let (first, directives) = try layer.sendEvent(name: "deploy", payload: Array("v1".utf8), coalesce: false)
        #expect(first.time == 1 && directives == [.deliver(first), .broadcast(.userEvent(first))])
        let (second, _) = try layer.sendEvent(name: "deploy", payload: Array("v2".utf8), coalesce: false)
        #expect(second.time == 2)
        #expect(throws: NodeError.self) { try layer.sendEvent(name: "x", payload: Array(repeating: 0, count: 512), coalesce: false) }
        #expect(throws: NodeError.self) { try layer.sendEvent(name: "", payload: [], coalesce: false) }
        _ = try layer.sendEvent(name: "x", payload: Array(repeating: 0, count: 511), coalesce: false)
    }

    @Test func intentsAreRelayedWhenNewer_andALeaveAboutUsIsRefuted() {
        var layer = SerfLayer(localName: "me")
        let join = SerfMessage.join(SerfJoin(time: 5, node: "b"))
        #expect(layer.receive(join) == [.broadcast(join)])
        #expect(layer.receive(join).isEmpty)
        #expect(layer.receive(.leave(SerfLeave(time: 4, node: "b"))).isEmpty, "older than what we know")
        let leave = SerfMessage.leave(SerfLeave(time: 6, node: "b"))
        #expect(layer.receive(leave) == [.broadcast(leave)])
        #expect(layer.memberClock.time == 7)
        // A leave about us while we are alive: answered with a newer join.
        let refutation = layer.receive(.leave(SerfLeave(time: 9, node: "me")))
        #expect(refutation == [.broadcast(.join(SerfJoin(time: 10, node: "me")))])
        // Our own leave is not refuted.
        let ours = layer.leaving()
        #expect(ours.count == 1)
        #expect(layer.receive(.leave(SerfLeave(time: 20, node: "me"))) == [.broadcast(.leave(SerfLeave(time: 20, node: "me")))])
    }

    @Test func queriesAreRelayedOnce() {
        var layer = SerfLayer(localName: "me")
        let query = SerfMessage.query(SerfQuery(time: 2, id: 7, address: [127, 0, 0, 1], port: 7946, sourceNode: "s", timeout: .seconds(1), name: "q"))
        #expect(layer.receive(query) == [.broadcast(query)])
        #expect(layer.receive(query).isEmpty)
        var quiet = SerfQuery(time: 3, id: 8, address: [127, 0, 0, 1], port: 7946, sourceNode: "s", timeout: .seconds(1), name: "q")
        quiet.flags = SerfQuery.noBroadcastFlag
        #expect(layer.receive(.query(quiet)).isEmpty)
    }

    @Test func aNodesOwnEventGoesStraightToEveryMemberAndIsGossiped() throws {
        var node = Node(
            name: "a", address: NodeAddress(ip: [10, 0, 0, 1], port: 7946), settings: NodeSettings(),
            seeds: NodeSeeds(membership: 1, replication: 2), at: NodeTime(now: .zero, wallMilliseconds: 0))
        let b = NodeAddress(ip: [10, 0, 0, 2], port: 7946)
        _ = node.receive(
            [.membership(.alive(Alive(incarnation: 1, node: "b", address: b, meta: NodeTags.encode(["role": "web"], as: .serf), versions: .serf)))],
            from: b, at: NodeTime(now: .zero, wallMilliseconds: 0))
        let (event, effects) = try node.sendEvent(name: "deploy", payload: [], coalesce: false)
        #expect(effects.contains(.serfDirect(.userEvent(event), to: [b])), "Serf agents (no rumor.kv tag) get it directly too")
        #expect(effects.contains(.serfBroadcast(.userEvent(event))))
        #expect(effects.contains(.userEvent(event)))
    }

    @Test func aNodeInSerfModeLeavesWithTheIntentFirst() {
        var node = Node(
            name: "a", address: NodeAddress(ip: [10, 0, 0, 1], port: 7946), settings: NodeSettings(),
            seeds: NodeSeeds(membership: 1, replication: 2), at: NodeTime(now: .zero, wallMilliseconds: 0))
        let b = NodeAddress(ip: [10, 0, 0, 2], port: 7946)
        _ = node.receive(
            [.membership(.alive(Alive(incarnation: 1, node: "b", address: b, meta: Node.advertisedMeta([:], as: .serf), versions: .serf)))],
            from: b, at: NodeTime(now: .zero, wallMilliseconds: 0))
        let effects = node.leave(command: 1, at: NodeTime(now: .zero, wallMilliseconds: 0))
        #expect(effects.contains { if case .serfBroadcast(.leave) = $0 { true } else { false } })
        #expect(!node.membership.hasLeft, "memberlist's leave waits for the intent to spread")
        _ = node.timerFired(.leaveAfterIntent, at: NodeTime(now: Instant(nanoseconds: 600_000_000), wallMilliseconds: 600))
        #expect(node.membership.hasLeft)
    }
}
