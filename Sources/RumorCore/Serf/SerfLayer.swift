/// The part of Serf's layer a Rumor node speaks (docs/serf-wire.md §3–5): Lamport clocks, join
/// and leave intents, and user events with Serf's recent-event ring, so Serf agents in the swarm
/// see Rumor nodes join and leave as Serf nodes do, receive their events, and get theirs relayed.
/// Pure: messages in, what to broadcast and deliver out.
public struct SerfLayer: Sendable {
    /// A Lamport clock as Serf keeps it: starts at 1; witnessing `t` moves it past `t`.
    public struct Clock: Sendable, Hashable {
        public private(set) var time: LamportTime = 1

        mutating func increment() -> LamportTime {
            time += 1
            return time
        }

        mutating func witness(_ other: LamportTime) {
            if other >= time { time = other + 1 }
        }

        /// Whether `other` is within the recent-event (or query) ring's reach of this clock:
        /// Serf drops what is older.
        func isRecent(_ other: LamportTime) -> Bool {
            let buffer = LamportTime(SerfLayer.eventBuffer)
            return time <= buffer || other >= time - buffer
        }
    }

    public enum Directive: Sendable, Hashable {
        /// Gossip this message to the swarm (Serf's transmit-limited queues).
        case broadcast(SerfMessage)
        /// A user event this node has not seen before.
        case deliver(SerfUserEvent)
    }

    /// Serf's `EventBuffer`: the recent-event ring's size, and how far back an event may be.
    public static let eventBuffer = 512
    /// Serf's `UserEventSizeLimit`: the largest name + payload an event may have.
    public static let eventSizeLimit = 512
    /// The largest name + payload of an event sent straight to Rumor nodes (over a stream when
    /// it does not fit a packet).
    public static let directEventSizeLimit = 1 << 20
    /// Direct events remembered, to deliver each once.
    static let directEventMemory = 4096
    /// How many nodes' latest intents are remembered (Serf keeps one per node).
    static let intentMemory = 4096

    let localName: String
    public private(set) var memberClock = Clock()
    public private(set) var eventClock = Clock()
    /// Queries received and sent, with their clock.
    public internal(set) var queries: SerfQueries
    /// Serf's recent-event ring, `eventBuffer` slots, allocated at the first event (8 KB a node:
    /// half of a simulated node's memory, for events the simulator never sends).
    private var eventRing: [SerfEventSlot?] = []
    /// The latest intent time seen per node (Serf's status times and recent-intent buffer).
    private var intentTimes: [String: LamportTime] = [:]
    private var hasLeft = false
    /// Events older than this are not delivered: those that were recent when this node joined
    /// (Serf's default, without `-replay`).
    private var eventMinTime: LamportTime = 0
    /// Direct events seen (sender and ID), oldest first, to deliver each once.
    private var directSeen: Set<DirectEventID> = []
    private var directOrder: [DirectEventID] = []
    private var random: SeededRandom

    struct DirectEventID: Hashable, Sendable {
        var from: String
        var id: UInt64
    }

    /// - Parameter seed: seeds query IDs and the choice of relays.
    public init(localName: String, seed: UInt64 = 0) {
        self.localName = localName
        self.queries = SerfQueries(seed: seed)
        self.random = SeededRandom(seed: seed &+ 1)
    }

    // MARK: - Local

    /// The join intent to gossip once this node has joined.
    public mutating func joined() -> [Directive] {
        let time = memberClock.time
        memberClock.witness(time)
        intentTimes[localName] = time
        return [.broadcast(.join(SerfJoin(time: time, node: localName)))]
    }

    /// The leave intent to gossip before leaving, so Serf agents list this node as `left`.
    public mutating func leaving() -> [Directive] {
        hasLeft = true
        let time = memberClock.time
        _ = memberClock.increment()
        intentTimes[localName] = time
        return [.broadcast(.leave(SerfLeave(time: time, node: localName)))]
    }

    /// A user event from this node: delivered here and gossiped.
    /// - Throws: `NodeError` `eventTooLarge` when name and payload pass Serf's 512 bytes.
    public mutating func sendEvent(name: String, payload: [UInt8], coalesce: Bool) throws(NodeError) -> (SerfUserEvent, [Directive]) {
        let event = try newEvent(name: name, payload: payload, coalesce: coalesce, limit: Self.eventSizeLimit)
        return (event, receiveEvent(event))
    }

    /// A user event from this node sent straight to chosen Rumor nodes, allowed past Serf's
    /// 512 bytes: Lamport-timed like any event, never gossiped nor kept in the recent-event
    /// ring. Returns the event and the ID that tells its copies apart.
    /// - Throws: `NodeError` `eventTooLarge` past `directEventSizeLimit`, or without a name.
    public mutating func sendDirectEvent(name: String, payload: [UInt8], coalesce: Bool) throws(NodeError) -> (SerfUserEvent, id: UInt64) {
        let event = try newEvent(name: name, payload: payload, coalesce: coalesce, limit: Self.directEventSizeLimit)
        let id = random.next()
        _ = rememberDirect(DirectEventID(from: localName, id: id))
        return (event, id)
    }

    /// An event of this node at the event clock's time (which then moves on).
    private mutating func newEvent(name: String, payload: [UInt8], coalesce: Bool, limit: Int) throws(NodeError) -> SerfUserEvent {
        guard !name.isEmpty else {
            throw NodeError(.eventTooLarge, "an event needs a name", hint: "e.g. rumor event deploy v1.2")
        }
        let size = name.utf8.count + payload.count
        guard size <= limit else {
            throw NodeError(
                .eventTooLarge, "the event's name and payload take \(size) bytes; the limit is \(limit)",
                hint: limit == Self.eventSizeLimit
                    ? "send a smaller payload, or send it to the Rumor nodes only (rumor event --node …, or over 512 bytes to all of them)"
                    : "put the data in a key and send its name")
        }
        let event = SerfUserEvent(time: eventClock.time, name: name, payload: payload, coalesce: coalesce)
        _ = eventClock.increment()
        return event
    }

    /// A direct event from another node: delivered once.
    public mutating func receiveDirect(_ event: SerfUserEvent, from sender: String, id: UInt64) -> [Directive] {
        eventClock.witness(event.time)
        guard rememberDirect(DirectEventID(from: sender, id: id)) else { return [] }
        return [.deliver(event)]
    }

    private mutating func rememberDirect(_ id: DirectEventID) -> Bool {
        guard directSeen.insert(id).inserted else { return false }
        directOrder.append(id)
        if directOrder.count > Self.directEventMemory {
            directSeen.remove(directOrder.removeFirst())
        }
        return true
    }

    // MARK: - Received

    public mutating func receive(_ message: SerfMessage) -> [Directive] {
        switch message {
        case .join(let join):
            memberClock.witness(join.time)
            guard remember(join.node, at: join.time) else { return [] }
            return [.broadcast(message)]
        case .leave(let leave):
            memberClock.witness(leave.time)
            guard remember(leave.node, at: leave.time) else { return [] }
            if leave.node == localName, !hasLeft {
                // Someone says we left while we are alive: refute, as Serf does.
                let time = memberClock.time
                memberClock.witness(time)
                intentTimes[localName] = time
                return [.broadcast(.join(SerfJoin(time: time, node: localName)))]
            }
            return [.broadcast(message)]
        case .userEvent(let event):
            return receiveEvent(event)
        case .query, .queryResponse, .relay, .pushPull:
            // Queries need the node's tags, address and time (`Node.receiveSerf` hands them to
            // `queries`); push-pull state comes with membership's exchanges (`merge`).
            return []
        }
    }

    private mutating func receiveEvent(_ event: SerfUserEvent) -> [Directive] {
        eventClock.witness(event.time)
        guard event.time >= eventMinTime, eventClock.isRecent(event.time) else { return [] }
        let index = Int(event.time % LamportTime(Self.eventBuffer))
        let entry = SerfEventSlot.Event(name: event.name, payload: event.payload)
        if eventRing.isEmpty { eventRing = Array(repeating: nil, count: Self.eventBuffer) }
        if var slot = eventRing[index], slot.time == event.time {
            guard !slot.events.contains(entry) else { return [] }
            slot.events.append(entry)
            eventRing[index] = slot
        } else {
            eventRing[index] = SerfEventSlot(time: event.time, events: [entry])
        }
        return [.deliver(event), .broadcast(.userEvent(event))]
    }

    // MARK: - Push-pull

    /// This node's part of a push-pull exchange (Serf's `LocalState`): its clocks, every intent
    /// time it knows, the members that left (`left`, from membership) and its recent events.
    public func pushPullState(leftMembers: [String]) -> SerfPushPull {
        SerfPushPull(
            memberTime: memberClock.time, statusTimes: intentTimes, leftMembers: leftMembers, eventTime: eventClock.time,
            events: eventRing.isEmpty ? Array(repeating: nil, count: Self.eventBuffer) : eventRing, queryTime: queries.clock.time)
    }

    /// Merges a peer's push-pull state (Serf's `MergeRemoteState`): clocks witnessed, intents
    /// remembered (a leave about this live node refuted), and the events in its ring that this
    /// node has not delivered delivered now, so a node that was away gets what it missed.
    /// Nothing is regossiped. `joining`: this node's own join, whose old events are not replayed.
    public mutating func merge(_ remote: SerfPushPull, joining: Bool) -> [Directive] {
        if remote.memberTime > 0 { memberClock.witness(remote.memberTime - 1) }
        if remote.eventTime > 0 { eventClock.witness(remote.eventTime - 1) }
        if remote.queryTime > 0 { queries.witness(remote.queryTime - 1) }
        var out: [Directive] = []
        let left = Set(remote.leftMembers)
        for (node, time) in remote.statusTimes.sorted(by: { $0.key < $1.key }) {
            let directives = left.contains(node) ? receive(.leave(SerfLeave(time: time + 1, node: node))) : receive(.join(SerfJoin(time: time, node: node)))
            // Only a refutation of a leave about this node is gossiped.
            out += directives.filter { if case .broadcast(.join(let join)) = $0 { join.node == localName } else { false } }
        }
        if joining { eventMinTime = max(eventMinTime, remote.eventTime) }
        for slot in remote.events.compactMap({ $0 }) {
            for event in slot.events {
                out += receiveEvent(SerfUserEvent(time: slot.time, name: event.name, payload: event.payload, coalesce: false))
                    .filter { if case .deliver = $0 { true } else { false } }
            }
        }
        return out
    }


    /// Records `node`'s intent at `time`; false when an intent as new was already seen.
    private mutating func remember(_ node: String, at time: LamportTime) -> Bool {
        if let known = intentTimes[node], known >= time { return false }
        if intentTimes[node] == nil, intentTimes.count >= Self.intentMemory, let stale = intentTimes.min(by: { $0.value < $1.value }) {
            intentTimes[stale.key] = nil
        }
        intentTimes[node] = time
        return true
    }
}
