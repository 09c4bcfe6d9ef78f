/// The broadcast tree: relays of fresh writes over the address ring (`AddressRing`), their
/// confirmations, retries and hand-overs. See `Replication` for the whole picture.
extension Replication {
    /// Pushes `entries` down the tree: splits the members after this node on `ring`, up to
    /// `end` (nil: all of them), into `fanout` ranges and sends each range's first member a push
    /// relaying the rest of that range, tracked until it confirms.
    mutating func relay(
        _ entries: [Entry], acknowledge: Bool, after: HybridTimestamp?, over ring: AddressRing, until end: NodeAddress?,
        wallMilliseconds: UInt64
    ) -> [ReplicationDirective] {
        guard let first = entries.first else { return [] }
        let confirmed = Self.fitsAPacket(entries, settings: settings)
        var out: [ReplicationDirective] = []
        for (child, childEnd) in ring.children(until: end, fanout: settings.fanout) {
            out.append(.push(entries, relay: .range(end: childEnd), acknowledge: acknowledge, after: after, to: child))
            guard confirmed, relaysInFlight.count < Self.maximumRelaysInFlight else { continue }
            let key = RelayInFlight.Key(child: child, version: first.version)
            relaysInFlight[key] = RelayInFlight(
                entries: entries, acknowledge: acknowledge, after: after, child: child, end: childEnd, sends: 1,
                handedOver: false, dueMilliseconds: wallMilliseconds + confirmTimeoutMilliseconds)
        }
        if !relaysInFlight.isEmpty, !relayTimerArmed {
            relayTimerArmed = true
            out.append(.startRelayTimer(after: settings.relayConfirmTimeout))
        }
        return out
    }

    /// `peer` confirmed the tree push whose first entry is `version`.
    public mutating func relayConfirmed(_ version: Version, by peer: NodeAddress) {
        relaysInFlight[RelayInFlight.Key(child: peer, version: version)] = nil
    }

    /// The relay timer fired: sends again every tree push its child has not confirmed in time.
    /// After `relayAttemptsBeforeHandOver` sends the next member of the child's range is asked
    /// to relay the range, and the child is sent the push for itself alone (its range shrunk to
    /// nothing): a crashed child delays its range by a few timeouts, a lossy link costs a copy.
    public mutating func relayTimerFired(peers: [NodeAddress], wallMilliseconds: UInt64) -> [ReplicationDirective] {
        relayTimerArmed = false
        guard !relaysInFlight.isEmpty else { return [] }
        var out: [ReplicationDirective] = []
        let ring = AddressRing(peers, local: localAddress)
        let due = relaysInFlight.filter { $0.value.dueMilliseconds <= wallMilliseconds }
        for key in due.keys.sorted(by: { ($0.version, $0.child) < ($1.version, $1.child) }) {
            guard var relay = relaysInFlight.removeValue(forKey: key), relay.sends < settings.relayAttempts else { continue }
            if !relay.handedOver, relay.sends >= settings.relayAttemptsBeforeHandOver,
                let next = ring.member(after: relay.child, before: relay.end)
            {
                var heir = relay
                heir.child = next
                heir.sends = 1
                out.append(.push(heir.entries, relay: .range(end: heir.end), acknowledge: heir.acknowledge, after: heir.after, to: next))
                heir.dueMilliseconds = wallMilliseconds + confirmTimeoutMilliseconds
                relaysInFlight[RelayInFlight.Key(child: next, version: key.version)] = heir
                relay.end = next
                relay.handedOver = true
            }
            relay.sends += 1
            relay.dueMilliseconds = wallMilliseconds + confirmTimeoutMilliseconds
            out.append(.push(relay.entries, relay: .range(end: relay.end), acknowledge: relay.acknowledge, after: relay.after, to: relay.child))
            relaysInFlight[key] = relay
        }
        if !relaysInFlight.isEmpty {
            relayTimerArmed = true
            out.append(.startRelayTimer(after: settings.relayConfirmTimeout))
        }
        return out
    }

    /// Tree relays awaiting confirmation.
    public var relaysAwaitingConfirmation: Int { relaysInFlight.count }

    /// Most tree relays tracked at once (past it, pushes go unconfirmed: anti-entropy repairs).
    static let maximumRelaysInFlight = 100_000

    var confirmTimeoutMilliseconds: UInt64 {
        UInt64(max(1, settings.relayConfirmTimeout.nanosecondsClamped / 1_000_000))
    }

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
    var dueMilliseconds: UInt64
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
