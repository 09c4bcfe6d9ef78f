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

    @Test func pushPullStateCarriesClocksIntentsAndTheRing() throws {
        var layer = SerfLayer(localName: "me")
        _ = layer.joined()
        _ = layer.receive(.join(SerfJoin(time: 4, node: "b")))
        let (event, _) = try layer.sendEvent(name: "deploy", payload: Array("v1".utf8), coalesce: false)
        let state = layer.pushPullState(leftMembers: ["c"])
        #expect(state.memberTime == layer.memberClock.time && state.eventTime == layer.eventClock.time)
        #expect(state.statusTimes == ["me": 1, "b": 4] && state.leftMembers == ["c"])
        #expect(state.events.count == SerfLayer.eventBuffer)
        #expect(state.events[Int(event.time)] == SerfEventSlot(time: event.time, events: [.init(name: "deploy", payload: Array("v1".utf8))]))
    }

    @Test func mergingAPeersStateDeliversMissedEventsOnce_butNotOnJoin() {
        var remote = SerfLayer(localName: "peer")
        _ = try? remote.sendEvent(name: "missed", payload: [1], coalesce: false)
        _ = remote.receive(.leave(SerfLeave(time: 7, node: "gone")))
        let state = remote.pushPullState(leftMembers: ["gone"])

        var layer = SerfLayer(localName: "me")
        let merged = layer.merge(state, joining: false)
        #expect(merged == [.deliver(SerfUserEvent(time: 1, name: "missed", payload: [1], coalesce: false))], "delivered, not regossiped")
        #expect(layer.merge(state, joining: false).isEmpty, "once")
        #expect(layer.eventClock.time >= state.eventTime && layer.memberClock.time >= state.memberTime - 1)
        #expect(layer.receive(.leave(SerfLeave(time: 8, node: "gone"))).isEmpty, "the leave intent was remembered (at 7 + 1)")

        var joiner = SerfLayer(localName: "new")
        #expect(joiner.merge(state, joining: true).isEmpty, "a joiner does not replay what happened before it came (Serf's default)")
        #expect(joiner.receive(.userEvent(SerfUserEvent(time: 1, name: "missed", payload: [1], coalesce: false))).isEmpty)
        let (later, _) = try! remote.sendEvent(name: "later", payload: [], coalesce: false)
        #expect(joiner.merge(remote.pushPullState(leftMembers: []), joining: false).contains(.deliver(SerfUserEvent(time: later.time, name: "later", payload: [], coalesce: false))))
    }

    @Test func aPeerThatSaysWeLeftIsRefutedInTheMerge() {
        var layer = SerfLayer(localName: "me")
        let state = SerfPushPull(memberTime: 9, statusTimes: ["me": 8], leftMembers: ["me"], eventTime: 1, events: [], queryTime: 1)
        let merged = layer.merge(state, joining: false)
        #expect(merged.count == 1)
        guard case .broadcast(.join(let join)) = merged.first else {
            Issue.record("no refutation: \(merged)")
            return
        }
        #expect(join.node == "me" && join.time > 9)
    }

    static let querier = NodeAddress(ip: [127, 0, 0, 9], port: 7946)
    static let me = (name: "me", address: NodeAddress(ip: [127, 0, 0, 1], port: 7946), tags: ["role": "webserver"])

    static func query(_ time: LamportTime, _ id: UInt32, _ name: String = "q", filters: [SerfFilter] = [], flags: UInt32 = SerfQuery.ackFlag) -> SerfQuery {
        SerfQuery(
            time: time, id: id, address: querier.ip, port: querier.port, sourceNode: "s", filters: filters, flags: flags,
            relayFactor: 1, timeout: .seconds(1), name: name, payload: Array("p".utf8))
    }

    @Test func aQueryIsAcknowledgedDeliveredAndRelayedOnce() {
        var queries = SerfQueries(seed: 1)
        let query = Self.query(2, 7)
        let ack = SerfQueryResponse(time: 2, id: 7, from: "me", isAck: true)
        #expect(queries.receive(query, local: Self.me, now: .zero) == [
            .respond(ack, to: Self.querier, name: "s", relayFactor: 1), .deliver(query), .broadcast(query),
        ])
        #expect(queries.receive(query, local: Self.me, now: .zero).isEmpty, "a duplicate is dropped")
        #expect(queries.clock.time == 3)
        let quiet = Self.query(3, 8, flags: SerfQuery.noBroadcastFlag)
        #expect(queries.receive(quiet, local: Self.me, now: .zero) == [.deliver(quiet)], "no ack asked, no rebroadcast")
    }

    @Test func filtersDecideWhoAnswers_butEveryoneRelays() {
        // Serf's tag expressions are unanchored; node filters list names; all must pass.
        #expect(SerfQueries.passes([.tag(name: "role", expression: "web")], name: "me", tags: ["role": "webserver"]))
        #expect(!SerfQueries.passes([.tag(name: "role", expression: "^web$")], name: "me", tags: ["role": "webserver"]))
        #expect(SerfQueries.passes([.tag(name: "dc", expression: "^$")], name: "me", tags: [:]), "a missing tag matches as empty")
        #expect(!SerfQueries.passes([.tag(name: "role", expression: "(")], name: "me", tags: ["role": "("]), "a bad expression fails")
        #expect(!SerfQueries.passes([.nodes(["a", "b"])], name: "me", tags: [:]))
        #expect(!SerfQueries.passes([.nodes(["me"]), .tag(name: "role", expression: "db")], name: "me", tags: ["role": "web"]))
        var queries = SerfQueries(seed: 1)
        let elsewhere = Self.query(2, 7, filters: [.nodes(["other"])])
        #expect(queries.receive(elsewhere, local: Self.me, now: .zero) == [.broadcast(elsewhere)])
        #expect(throws: SerfQueries.QueryRefusal.unknown) { try queries.respond(to: QueryID(elsewhere), payload: [1], from: "me", now: .zero) }
    }

    @Test func serfsInternalQueries_onlyKeyQueriesReachTheDriver() {
        var queries = SerfQueries(seed: 1)
        let ping = Self.query(2, 1, "_serf_ping")
        #expect(queries.receive(ping, local: Self.me, now: .zero).map { if case .respond = $0 { "ack" } else { "other" } } == ["ack", "other"])
        #expect(!queries.receive(ping, local: Self.me, now: .zero).contains { if case .deliver = $0 { true } else { false } })
        let install = Self.query(3, 2, "_serf_install-key")
        #expect(queries.receive(install, local: Self.me, now: .zero).contains(.deliverInternal(install)))
        let conflict = Self.query(4, 3, "_serf_conflict")
        #expect(!queries.receive(conflict, local: Self.me, now: .zero).contains { if case .deliver = $0 { true } else if case .deliverInternal = $0 { true } else { false } })
    }

    @Test func aResponseGoesOnceAndBeforeTheDeadline() throws {
        var queries = SerfQueries(seed: 1)
        let query = Self.query(2, 7)
        _ = queries.receive(query, local: Self.me, now: .zero)
        let sent = try queries.respond(to: QueryID(query), payload: Array("up".utf8), from: "me", now: Instant(nanoseconds: 500_000_000))
        #expect(sent == .respond(SerfQueryResponse(time: 2, id: 7, from: "me", isAck: false, payload: Array("up".utf8)), to: Self.querier, name: "s", relayFactor: 1))
        #expect(throws: SerfQueries.QueryRefusal.alreadyAnswered) { try queries.respond(to: QueryID(query), payload: [1], from: "me", now: .zero) }
        let late = Self.query(3, 8)
        _ = queries.receive(late, local: Self.me, now: .zero)
        #expect(throws: SerfQueries.QueryRefusal.pastDeadline) {
            try queries.respond(to: QueryID(late), payload: [1], from: "me", now: Instant(nanoseconds: 1_000_000_001))
        }
    }

    @Test func answersToOwnQueriesAreCountedOncePerNodeUntilTheDeadline() {
        var queries = SerfQueries(seed: 1)
        let (query, directives) = queries.start(
            name: "uptime", payload: [], filters: [.nodes(["b", "c"])], wantsAck: true, relayFactor: 0, timeout: .seconds(2),
            from: Self.me, now: .zero)
        #expect(query.time == 1 && query.id <= UInt32(Int32.max) && query.sourceNode == "me" && query.address == Self.me.address.ip)
        #expect(directives == [.broadcast(query)], "this node does not pass its own filter: no ack from it")
        let key = QueryID(query)
        let ack = SerfQueryResponse(time: query.time, id: query.id, from: "b", isAck: true)
        #expect(queries.receive(ack, now: .zero) == [.answered(key, ack)])
        #expect(queries.receive(ack, now: .zero).isEmpty, "a relayed copy counts once")
        var response = ack
        response.isAck = false
        #expect(queries.receive(response, now: .zero) == [.answered(key, response)], "a response is counted apart from the ack")
        var stranger = response
        stranger.id &+= 1
        #expect(queries.receive(stranger, now: .zero).isEmpty, "another query's answer")
        var late = response
        late.from = "c"
        #expect(queries.receive(late, now: Instant(nanoseconds: 2_000_000_001)).isEmpty, "past the deadline")
        #expect(queries.end(key) && !queries.end(key))
    }

    @Test func theNodeAnswersItsOwnQueryLocally_relaysThroughOthers_andEndsAtTheDeadline() throws {
        let time = NodeTime(now: .zero, wallMilliseconds: 0)
        var node = Node(
            name: "a", address: NodeAddress(ip: [10, 0, 0, 1], port: 7946), settings: NodeSettings(),
            seeds: NodeSeeds(membership: 1, replication: 2), at: time)
        #expect(node.defaultQueryTimeout == .milliseconds(3200), "Serf's: 200 ms × 16 × ceil(log10(1 + 1))")
        var peers: [NodeAddress] = []
        for index in 2...10 {
            let address = NodeAddress(ip: [10, 0, 0, UInt8(index)], port: 7946)
            peers.append(address)
            _ = node.receive(
                [.membership(.alive(Alive(incarnation: 1, node: "n\(index)", address: address, meta: NodeTags.encode([:], as: .serf), versions: .serf)))],
                from: address, at: time)
        }
        #expect(node.defaultQueryTimeout == .milliseconds(6400), "ten live members: × 2")
        let (query, effects) = try node.sendQuery(name: "q", payload: [], filters: [], wantsAck: true, relayFactor: 2, timeout: nil, at: time)
        let key = QueryID(query)
        #expect(effects.contains(.queryAnswered(key, SerfQueryResponse(time: query.time, id: query.id, from: "a", isAck: true))))
        #expect(effects.contains(.query(query)))
        #expect(effects.contains(.serfBroadcast(.query(query))))
        #expect(effects.contains(.serfDirect(.query(query), to: peers)))
        #expect(effects.contains(.startTimer(.queryDeadline(key), after: .milliseconds(6400))))
        // Answering another node's query: directly, plus two relayed copies through other members.
        let theirs = SerfQuery(time: 9, id: 4, address: peers[0].ip, port: 7946, sourceNode: "n2", flags: SerfQuery.ackFlag, relayFactor: 2, timeout: .seconds(1), name: "q")
        let answers = node.receive([.serf(.query(theirs))], from: peers[0], at: time)
        let ack = SerfQueryResponse(time: 9, id: 4, from: "a", isAck: true)
        #expect(answers.contains(.serfDirect(.queryResponse(ack), to: [peers[0]])))
        let relays = answers.compactMap { if case .serfRelay(_, let destination, let name, let via) = $0 { (destination, name, via) } else { nil } }
        #expect(relays.count == 1 && relays[0].0 == peers[0] && relays[0].1 == "n2" && relays[0].2.count == 2)
        #expect(node.timerFired(.queryDeadline(key), at: time) == [.queryEnded(key)])
        #expect(node.timerFired(.queryDeadline(key), at: time).isEmpty)
        // A relay is forwarded unread.
        let relay = SerfRelay(destination: peers[1], destinationName: "n3", message: [5, 0x80])
        #expect(node.receive([.serf(.relay(relay))], from: peers[0], at: time) == [.serfForward([5, 0x80], to: peers[1])])
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

    @Test func eventsToNamedNodesOrPastSerfsLimitGoStraightToRumorNodesOnly() throws {
        let time = NodeTime(now: .zero, wallMilliseconds: 0)
        var node = Node(
            name: "a", address: NodeAddress(ip: [10, 0, 0, 1], port: 7946), settings: NodeSettings(),
            seeds: NodeSeeds(membership: 1, replication: 2), at: time)
        let b = NodeAddress(ip: [10, 0, 0, 2], port: 7946), c = NodeAddress(ip: [10, 0, 0, 3], port: 7946)
        let serf = NodeAddress(ip: [10, 0, 0, 4], port: 7946)
        for (name, address, meta) in [
            ("b", b, Node.advertisedMeta([:], generation: 1, as: .serf)), ("c", c, Node.advertisedMeta([:], generation: 1, as: .serf)),
            ("s", serf, NodeTags.encode(["role": "web"], as: .serf)),
        ] {
            _ = node.receive([.membership(.alive(Alive(incarnation: 1, node: name, address: address, meta: meta, versions: .serf)))], from: address, at: time)
        }
        // To one node: straight to it, not gossiped, not delivered here.
        let (event, effects) = try node.sendEvent(name: "deploy", payload: [1], coalesce: false, targets: ["c"])
        guard case .send(.replication(.event(let from, let id, let sent)), let to) = effects.first, effects.count == 1 else {
            Issue.record("expected one direct send: \(effects)")
            return
        }
        #expect(from == "a" && to == c && sent == event)
        #expect(throws: NodeError.self) { try node.sendEvent(name: "deploy", payload: [], coalesce: false, targets: ["s"]) }
        #expect(throws: NodeError.self) { try node.sendEvent(name: "deploy", payload: [], coalesce: false, targets: ["nobody"]) }
        // Past 512 bytes, to everyone: every Rumor node and this one; Serf agents cannot take it (logged).
        let (big, bigEffects) = try node.sendEvent(name: "big", payload: Array(repeating: 0, count: 4000), coalesce: false)
        let sends = bigEffects.compactMap { if case .send(_, let to) = $0 { to } else { nil } }
        #expect(sends.sorted() == [b, c] && bigEffects.contains(.userEvent(big)))
        #expect(bigEffects.contains { if case .log(let line) = $0 { line.level == .warning } else { false } })
        #expect(throws: NodeError.self) { try node.sendEvent(name: "x", payload: Array(repeating: 0, count: SerfLayer.directEventSizeLimit), coalesce: false) }
        // The receiver delivers each once.
        var receiver = Node(
            name: "c", address: c, settings: NodeSettings(), seeds: NodeSeeds(membership: 3, replication: 4), at: time)
        let frame = NodeMessage.replication(.event(from: "a", id: id, event))
        #expect(receiver.receive([frame], from: NodeAddress(ip: [10, 0, 0, 1], port: 7946), at: time) == [.userEvent(event)])
        #expect(receiver.receive([frame], from: NodeAddress(ip: [10, 0, 0, 1], port: 7946), at: time).isEmpty)
    }

    @Test func withPlainMemberlistEventsGoStraightToRumorNodes_andQueriesAreRefused() throws {
        let time = NodeTime(now: .zero, wallMilliseconds: 0)
        var settings = NodeSettings()
        settings.tagFormat = .text
        var node = Node(
            name: "a", address: NodeAddress(ip: [10, 0, 0, 1], port: 7946), settings: settings,
            seeds: NodeSeeds(membership: 1, replication: 2), at: time)
        let b = NodeAddress(ip: [10, 0, 0, 2], port: 7946)
        _ = node.receive(
            [.membership(.alive(Alive(incarnation: 1, node: "b", address: b, meta: Node.advertisedMeta([:], generation: 1, as: .text), versions: .rumor)))],
            from: b, at: time)
        let (event, effects) = try node.sendEvent(name: "deploy", payload: [1], coalesce: false)
        #expect(effects.contains(.userEvent(event)))
        #expect(effects.contains { if case .send(.replication(.event), let to) = $0 { to == b } else { false } })
        #expect(!effects.contains { if case .serfBroadcast = $0 { true } else { false } }, "no Serf gossip: its receivers would drop it")
        #expect(throws: NodeError.self) {
            try node.sendQuery(name: "q", payload: [], filters: [], wantsAck: true, relayFactor: 0, timeout: nil, at: time)
        }
    }

    @Test func aNodeInSerfModeLeavesWithTheIntentFirst() {
        var node = Node(
            name: "a", address: NodeAddress(ip: [10, 0, 0, 1], port: 7946), settings: NodeSettings(),
            seeds: NodeSeeds(membership: 1, replication: 2), at: NodeTime(now: .zero, wallMilliseconds: 0))
        let b = NodeAddress(ip: [10, 0, 0, 2], port: 7946)
        _ = node.receive(
            [.membership(.alive(Alive(incarnation: 1, node: "b", address: b, meta: Node.advertisedMeta([:], generation: 1, as: .serf), versions: .serf)))],
            from: b, at: NodeTime(now: .zero, wallMilliseconds: 0))
        let effects = node.leave(command: 1, at: NodeTime(now: .zero, wallMilliseconds: 0))
        #expect(effects.contains { if case .serfBroadcast(.leave) = $0 { true } else { false } })
        #expect(!node.membership.hasLeft, "memberlist's leave waits for the intent to spread")
        _ = node.timerFired(.leaveAfterIntent, at: NodeTime(now: Instant(nanoseconds: 600_000_000), wallMilliseconds: 600))
        #expect(node.membership.hasLeft)
    }
}
