/// The broadcast tree: relays of fresh writes over the address ring (`AddressRing`), their
/// confirmations, retries and hand-overs. See `Replication` for the whole picture.
extension Replication {
    /// Pushes `entries` down the tree: splits the members after this node on `ring`, up to
    /// `end` (nil: all of them), into `treeFanout` ranges and sends each range's first member a
    /// push relaying the rest of that range, tracked until it confirms.
    mutating func relay(
        _ entries: [Entry], acknowledge: Bool, after: HybridTimestamp?, over ring: AddressRing, until end: NodeAddress?,
        now: Instant, roundTrips: RoundTripTimes
    ) -> [ReplicationDirective] {
        guard let first = entries.first else { return [] }
        let confirmed = Self.fitsAPacket(entries, settings: settings)
        let fanout = Self.treeFanout(members: ring.count + 1, oneWayDelay: roundTrips.oneWayDelay, settings: settings)
        var out: [ReplicationDirective] = []
        for (child, childEnd) in ring.children(until: end, fanout: fanout) {
            out.append(.push(entries, relay: .range(end: childEnd), acknowledge: acknowledge, after: after, to: child))
            guard confirmed, relaysInFlight.count < Self.maximumRelaysInFlight else { continue }
            let key = RelayInFlight.Key(child: child, version: first.version)
            relaysInFlight[key] = RelayInFlight(
                entries: entries, acknowledge: acknowledge, after: after, child: child, end: childEnd, sends: 1,
                handedOver: false, sentAt: now, due: now + confirmTimeout(for: child, sends: 1, roundTrips: roundTrips))
        }
        return out + armRelayTimer(now: now)
    }

    /// `peer` confirmed the tree push whose first entry is `version`. Returns the round trip it
    /// took when the push was sent once (Karn's rule: a confirmation of a push sent again could
    /// answer either send).
    public mutating func relayConfirmed(_ version: Version, by peer: NodeAddress, now: Instant) -> Duration? {
        guard let relay = relaysInFlight.removeValue(forKey: RelayInFlight.Key(child: peer, version: version)),
            relay.sends == 1
        else { return nil }
        return now - relay.sentAt
    }

    /// The relay timer fired: sends again every tree push its child has not confirmed in time.
    /// After `relayAttemptsBeforeHandOver` sends the next member of the child's range is asked
    /// to relay the range, and the child is sent the push for itself alone (its range shrunk to
    /// nothing): a crashed child delays its range by a few timeouts, a lossy link costs a copy.
    public mutating func relayTimerFired(peers: [NodeAddress], now: Instant, roundTrips: RoundTripTimes) -> [ReplicationDirective] {
        relayTimerDue = nil
        guard !relaysInFlight.isEmpty else { return [] }
        var out: [ReplicationDirective] = []
        let ring = AddressRing(peers, local: localAddress)
        let due = relaysInFlight.filter { $0.value.due <= now }
        for child in Set(due.keys.map(\.child)).sorted() { out.append(.noAnswer(from: child)) }
        for key in due.keys.sorted(by: { ($0.version, $0.child) < ($1.version, $1.child) }) {
            guard var relay = relaysInFlight.removeValue(forKey: key), relay.sends < settings.relayAttempts else { continue }
            if !relay.handedOver, relay.sends >= settings.relayAttemptsBeforeHandOver,
                let next = ring.member(after: relay.child, before: relay.end)
            {
                var heir = relay
                heir.child = next
                heir.sends = 1
                heir.sentAt = now
                out.append(.push(heir.entries, relay: .range(end: heir.end), acknowledge: heir.acknowledge, after: heir.after, to: next))
                heir.due = now + confirmTimeout(for: next, sends: 1, roundTrips: roundTrips)
                relaysInFlight[RelayInFlight.Key(child: next, version: key.version)] = heir
                relay.end = next
                relay.handedOver = true
            }
            relay.sends += 1
            relay.due = now + confirmTimeout(for: relay.child, sends: relay.sends, roundTrips: roundTrips)
            out.append(.push(relay.entries, relay: .range(end: relay.end), acknowledge: relay.acknowledge, after: relay.after, to: relay.child))
            relaysInFlight[key] = relay
        }
        return out + armRelayTimer(now: now)
    }

    /// Starts the relay timer for the earliest confirmation due, unless one runs that fires by
    /// then (a timer is never cancelled: one that fires early finds nothing due and re-arms).
    private mutating func armRelayTimer(now: Instant) -> [ReplicationDirective] {
        guard let next = relaysInFlight.values.lazy.map(\.due).min() else { return [] }
        if let armed = relayTimerDue, armed <= next { return [] }
        relayTimerDue = next
        return [.startRelayTimer(after: max(.zero, next - now))]
    }

    /// How long the `sends`th send of a push to `child` waits for its confirmation: the child's
    /// retransmission timeout (`RoundTripTimes`), at least `relayConfirmTimeout`. The sends
    /// before the hand-over wait one timeout each, so a crashed child delays its range by a
    /// few round trips; those after it (the child alone, over a link that keeps losing) back off
    /// exponentially up to the anti-entropy interval, which repairs the rest.
    func confirmTimeout(for child: NodeAddress, sends: Int, roundTrips: RoundTripTimes) -> Duration {
        roundTrips.timeout(
            for: child, backOff: sends - settings.relayAttemptsBeforeHandOver, floor: settings.relayConfirmTimeout,
            cap: settings.antiEntropyInterval)
    }

    /// Children per node in the tree of `members` nodes: the fanout that informs the last node
    /// soonest, given that each level costs a one-way delay and each child the time to send it
    /// one more datagram (`ReplicationSettings.sendCost`). On loopback that is a few children
    /// (each level costs little); at tens of milliseconds a level costs more than a hundred
    /// sends, and the tree flattens to two or three levels. At least `fanout`, at most
    /// `maximumFanout`; `fanout` alone until a round trip was measured.
    static func treeFanout(members: Int, oneWayDelay: Duration?, settings: ReplicationSettings) -> Int {
        let smallest = max(1, settings.fanout)
        guard let oneWayDelay, members > smallest + 1 else { return smallest }
        let delay = Double(oneWayDelay.nanosecondsClamped)
        let sendCost = Double(settings.sendCost.nanosecondsClamped)
        var best = (fanout: smallest, time: Double.infinity)
        var fanout = smallest
        while fanout <= max(smallest, settings.maximumFanout) {
            let time = Double(levels(members: members, fanout: fanout)) * delay + Double(fanout) * sendCost
            if time < best.time { best = (fanout, time) }
            if fanout >= members - 1 { break }
            fanout += max(1, fanout / 8)
        }
        return best.fanout
    }

    /// About how long after a write the tree has delivered it to every one of `members` nodes,
    /// one lost push included: a one-way delay per level, and one retransmission timeout. An
    /// anti-entropy answer leaves out writes younger than this (`answerPull(heldBack:)`): the
    /// tree is still on its way with them, and the copy would be a second one.
    static func treeDeliveryTime(members: Int, roundTrips: RoundTripTimes, settings: ReplicationSettings) -> Duration {
        guard let oneWay = roundTrips.oneWayDelay else { return .zero }
        let fanout = treeFanout(members: members, oneWayDelay: oneWay, settings: settings)
        let levels = members <= settings.directPushLimit ? 1 : levels(members: members, fanout: fanout)
        return oneWay * levels + roundTrips.timeout(for: nil, floor: settings.relayConfirmTimeout, cap: settings.antiEntropyInterval)
    }

    /// Levels of a tree over `members` nodes (the writer included) with `fanout` children each.
    static func levels(members: Int, fanout: Int) -> Int {
        var remaining = members - 1
        var levels = 0
        while remaining > 0 {
            levels += 1
            remaining = (remaining + fanout - 1) / fanout - 1
        }
        return levels
    }

    /// Tree relays awaiting confirmation.
    public var relaysAwaitingConfirmation: Int { relaysInFlight.count }

    /// Most tree relays tracked at once (past it, pushes go unconfirmed: anti-entropy repairs).
    static let maximumRelaysInFlight = 100_000

    /// Whether a push of `entries` surely fits a datagram (an upper bound of the encoded size):
    /// only those are confirmed; a larger push goes over a stream, whose sender knows it arrived.
    static func fitsAPacket(_ entries: [Entry], settings: ReplicationSettings) -> Bool {
        let overhead = 48  // header, flags, `after`, the range end, the entry count
        let size = entries.reduce(overhead) { size, entry in
            size + entry.key.utf8.count + entry.version.writer.name.utf8.count + 8 + entry.valueBytes + 3 * 3 + 1 + 8 + 8
        }
        return size <= settings.packetPushBytes
    }
}

/// A tree push sent to `child` and not yet confirmed.
struct RelayInFlight: Sendable {
    struct Key: Hashable, Sendable {
        var child: NodeAddress
        var version: Version
    }

    var entries: [Entry]
    var acknowledge: Bool
    var after: HybridTimestamp?
    var child: NodeAddress
    /// The end of the child's range.
    var end: NodeAddress
    var sends: Int
    /// Whether the next member of the range took the range over (`end` is then that member).
    var handedOver: Bool
    /// When the push was first sent to `child` (its round trip, when confirmed after one send).
    var sentAt: Instant
    /// When the current send stops waiting for its confirmation.
    var due: Instant
}

/// A set that remembers only its latest `capacity` insertions.
struct RecentKeys<Key: Hashable & Sendable>: Sendable {
    let capacity: Int
    private var members: Set<Key> = []
    private var order: [Key] = []
    private var next = 0

    init(capacity: Int) { self.capacity = capacity }

    /// Inserts `key`; false when it was already there.
    mutating func insert(_ key: Key) -> Bool {
        guard members.insert(key).inserted else { return false }
        if order.count < capacity {
            order.append(key)
        } else {
            members.remove(order[next])
            order[next] = key
            next = (next + 1) % capacity
        }
        return true
    }
}
