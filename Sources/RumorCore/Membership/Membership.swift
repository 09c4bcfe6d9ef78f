/// The SWIM membership protocol with Lifeguard, as a pure state machine.
///
/// One `mutating` entry point per event (a received message, a fired timer, a finished stream
/// exchange, an operator command); each returns the `MembershipDirective`s the driver must carry
/// out: packets to send, timers to start, push-pull exchanges to run, events to report. The
/// machine reads no clock (every event carries `now`), draws randomness only from its seeded
/// generator and performs no I/O, so the agent, the simulator and the tests drive the same code.
///
/// Semantics follow HashiCorp memberlist (`state.go`) so that Rumor and Go nodes agree on every
/// rule: incarnation numbers, refutation, suspicion with Lifeguard confirmations, dead/left.
/// - SeeAlso: SWIM (Das et al., 2002); Lifeguard (Dadgar et al., 2018).
public struct Membership: Sendable {
    public let settings: MembershipSettings
    public let localName: String
    /// The addresses peers may name for this node to send to (`MembershipSettings.addressRule`).
    public let addressRule: AddressRule

    /// Every known member, this node included, by name.
    public internal(set) var members: [String: Member]
    /// Probe order: member names, shuffled each time a full round completes.
    var probeOrder: [String]
    var probeIndex = 0
    var awareness: Awareness
    var suspicions: [String: Suspicion] = [:]
    var broadcasts = BroadcastQueue()
    var random: SeededRandom
    /// Members declared dead (not left), kept after reaping until `reconnectTimeout` so the
    /// reconnect timer can offer them push-pull exchanges: how a partition heals.
    var failedMembers: [String: FailedMember] = [:]
    /// When the join answers of the last second were given (see `joinAnswer`).
    var recentJoinAnswers: [Instant] = []
    /// The join storm this node is hearing of, if any (see `noteNewMemberByGossip`).
    var storm = JoinStorm()
    /// Round-trip times to members, from probe acks here and from replication's requests (the
    /// node records those): every timer that waits for a member derives from them.
    public internal(set) var roundTrips = RoundTripTimes()
    /// Vivaldi network coordinates, carried in acks as Serf does (`Membership+Coordinates.swift`);
    /// nil (the default) sends empty acks, as a memberlist node without a ping delegate.
    public internal(set) var coordinates: NetworkCoordinates?

    struct FailedMember {
        var address: NodeAddress
        var since: Instant
        /// Whether this node has offered it a push-pull yet.
        var offered = false
    }
    var sequence: UInt32 = 0
    var probe: ProbeInFlight?
    var relays: [UInt32: Relay] = [:]
    var leave = LeaveProgress.none
    /// When news was last gossiped eagerly, and whether a deferred flush is scheduled.
    var lastEagerGossip: Instant?
    var flushScheduled = false
    /// Whether the gossip timer is running: it stops while nothing is queued (an idle node then
    /// has no gossip ticks to serve) and restarts when something is.
    var gossipTimerArmed = true

    /// One direct probe in progress.
    struct ProbeInFlight: Sendable {
        var sequence: UInt32
        var target: String
        /// When the ping went out (for the round-trip time an ack reports).
        var sentAt: Instant
        var acknowledged = false
        /// Whether the direct probe timed out and others were asked: an ack could then be a
        /// relayed one, whose round trip is not the direct link's.
        var timedOut = false
        var contactedByStream = false
        var expectedNacks = 0
        var nacks = 0
    }

    /// An indirect probe we run for another member.
    struct Relay: Sendable {
        var requesterSequence: UInt32
        var requester: NodeAddress
        var wantsNack: Bool
    }

    enum LeaveProgress: Sendable {
        case none
        /// The leave announcement is being gossiped.
        case announcing
        /// The announcement has been sent as often as gossip sends anything.
        case done
    }

    /// Creates the machine for the local node, alive at incarnation 1.
    /// - Parameters:
    ///   - name: this node's unique name.
    ///   - address: where others reach this node (its advertised address).
    ///   - meta: node metadata, at most 512 bytes (memberlist's `MetaMaxSize`).
    ///   - seed: seeds every random choice; the same seed and events give the same directives.
    ///   - now: the driver's current time.
    public init(
        name: String, address: NodeAddress, meta: [UInt8] = [], settings: MembershipSettings = .lan,
        seed: UInt64, now: Instant
    ) {
        self.settings = settings
        self.localName = name
        self.addressRule = settings.addressRule ?? AddressRule(for: address)
        self.awareness = Awareness(maximum: settings.awarenessMaxMultiplier)
        self.random = SeededRandom(seed: seed)
        let local = Member(
            name: name, address: address, meta: meta, incarnation: 1, state: .alive, stateChanged: now,
            versions: settings.versions)
        self.members = [name: local]
        self.probeOrder = [name]
        broadcasts.enqueue(.alive(local.aliveMessage), about: name)
    }

    // MARK: - Reading

    /// This node's own record.
    public var localMember: Member { members[localName]! }

    /// Lifeguard local health score: 0 is healthy.
    public var healthScore: Int { awareness.score }

    /// True once a graceful leave has been announced.
    public var hasLeft: Bool { leave != .none }

    /// Messages waiting to be gossiped.
    public var pendingBroadcasts: Int { broadcasts.count }

    /// Members counted for protocol formulas (memberlist's `estNumNodes`: every listed member).
    public var memberCount: Int { members.count }

    /// Most failed members remembered for reconnecting (the oldest is forgotten first).
    static let maximumFailedMembers = 1024

    /// The full state as sent in a push-pull exchange.
    public func pushPullState(join: Bool) -> PushPull {
        PushPull(join: join, nodes: probeOrder.compactMap { members[$0]?.pushState })
    }

    // MARK: - Operator commands

    /// Starts the periodic work: probing, gossip and push-pull, each first fired after a random
    /// stagger within its interval so that nodes started together do not move in lockstep.
    public mutating func start(now: Instant) -> [MembershipDirective] {
        var out: [MembershipDirective] = [
            .startTimer(.probe, after: stagger(settings.probeInterval)),
            .startTimer(.gossip, after: stagger(settings.gossipInterval)),
        ]
        if settings.pushPullInterval > .zero {
            out.append(.startTimer(.pushPull, after: stagger(settings.pushPullInterval)))
        }
        if settings.reconnectInterval > .zero {
            out.append(.startTimer(.reconnect, after: stagger(settings.reconnectInterval)))
        }
        return out
    }

    /// Asks each seed for a push-pull exchange flagged as a join. The driver reports each answer
    /// with `receivePushPullReply` (or nothing, on failure).
    public mutating func join(seeds: [NodeAddress], now: Instant) -> [MembershipDirective] {
        let state = pushPullState(join: true)
        return seeds.map { .pushPull(to: $0, state: state) }
    }

    /// Announces a graceful leave: gossips `dead` about ourselves with `from` = our own name, as
    /// memberlist does. `leaveCompleted` is emitted once the announcement has been gossiped as
    /// often as any broadcast is (immediately when nobody else is alive).
    public mutating func leave(now: Instant) -> [MembershipDirective] {
        guard leave == .none else { return [] }
        var local = localMember
        let announcement = Dead(incarnation: local.incarnation, node: localName, from: localName)
        local.state = .left
        local.stateChanged = now
        members[localName] = local
        leave = .announcing
        let othersAlive = members.values.contains { $0.name != localName && $0.state == .alive }
        guard othersAlive else {
            leave = .done
            return [.leaveCompleted]
        }
        broadcasts.enqueue(.dead(announcement), about: localName)
        var out: [MembershipDirective] = [.event(MemberEvent(kind: .left, member: local))]
        gossipNews(now: now, into: &out)
        return out
    }

    /// Queues a message to gossip that is about no member (a Serf message in a user message).
    public mutating func queueBroadcast(_ message: Message, now: Instant) -> [MembershipDirective] {
        broadcasts.enqueue(message, about: nil)
        var out: [MembershipDirective] = []
        gossipNews(now: now, into: &out)
        return out
    }

    /// Replaces this node's metadata and announces it with a new incarnation.
    public mutating func updateMeta(_ meta: [UInt8], now: Instant) -> [MembershipDirective] {
        var local = localMember
        local.meta = meta
        local.incarnation &+= 1
        members[localName] = local
        broadcasts.enqueue(.alive(local.aliveMessage), about: localName)
        var out: [MembershipDirective] = [.event(MemberEvent(kind: .updated, member: local))]
        gossipNews(now: now, into: &out)
        return out
    }

    // MARK: - Events

    /// Handles one message received in a packet (or a stream) from `sender`.
    public mutating func receive(_ message: Message, from sender: NodeAddress, now: Instant) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        switch message {
        case .ping(let ping):
            handlePing(ping, from: sender, into: &out)
        case .indirectPing(let request):
            handleIndirectPing(request, from: sender, into: &out)
        case .ack(let ack):
            handleAck(ack, now: now, into: &out)
        case .nack(let nack):
            if probe?.sequence == nack.sequenceNumber { probe?.nacks += 1 }
        case .suspect(let suspect):
            handleSuspect(suspect, now: now, into: &out)
        case .alive(let alive):
            // Our own address is ours to announce: an alive about us is refuted, not followed.
            guard alive.node == localName || admits(alive.address, "alive address", from: sender, into: &out) else { break }
            let isNew = alive.node != localName && members[alive.node] == nil
            handleAlive(alive, now: now, into: &out)
            if isNew, members[alive.node] != nil { noteNewMemberByGossip(now: now, into: &out) }
        case .dead(let dead):
            handleDead(dead, now: now, into: &out)
        case .user(let payload):
            out.append(.deliver(payload, from: sender))
        case .error:
            break
        }
        gossipNews(now: now, into: &out)
        return out
    }

    /// Answers a push-pull request that arrived on a stream: returns our state (taken before
    /// merging, as memberlist does) and merges theirs.
    /// - Parameter sampled: answer a join with a sample whatever the join rate (the driver's
    ///   rate limit says this host is asking too often for whole states).
    public mutating func receivePushPull(_ remote: PushPull, from sender: NodeAddress, now: Instant, sampled: Bool = false) -> (
        reply: PushPull, directives: [MembershipDirective]
    ) {
        let reply = remote.join ? joinAnswer(now: now, sampled: sampled) : pushPullState(join: false)
        var out: [MembershipDirective] = []
        merge(remote.nodes, from: sender, now: now, into: &out)
        gossipNews(now: now, into: &out)
        return (reply, out)
    }

    /// The state a joiner gets: all of it, unless more than `joinStormRate` joins came
    /// within the last second (a storm through this seed); then this node and a random sample.
    mutating func joinAnswer(now: Instant, sampled: Bool = false) -> PushPull {
        recentJoinAnswers.removeAll { now - $0 >= .seconds(1) }
        recentJoinAnswers.append(now)
        guard sampled || recentJoinAnswers.count > settings.joinStormRate else { return pushPullState(join: false) }
        let sample = drawRandomMembers(settings.joinSampleSize, where: { $0.state == .alive })
        return PushPull(join: false, nodes: [localMember.pushState] + sample.map(\.pushState))
    }

    /// One more push-pull after joining, with a random alive member other than `seeds`: the
    /// joiner learns who joined meanwhile, and what a sampled join answer left out.
    public mutating func followUpJoin(excluding seeds: [NodeAddress], now: Instant) -> [MembershipDirective] {
        guard leave == .none,
            let peer = drawRandomMembers(1, where: { $0.state == .alive && !seeds.contains($0.address) }).first
        else { return [] }
        return [.pushPull(to: peer.address, state: pushPullState(join: false))]
    }

    /// Merges the answer to a push-pull exchange we started.
    ///
    /// When the answer says we are dead (a healed partition: the peer declared us dead while
    /// cut off), we refute and at once send the peer our state again with the new incarnation,
    /// which it accepts; it would otherwise learn we are alive only when gossip happens to
    /// reach it.
    public mutating func receivePushPullReply(_ remote: PushPull, from sender: NodeAddress, now: Instant) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        let incarnation = localMember.incarnation
        merge(remote.nodes, from: sender, now: now, into: &out)
        if localMember.incarnation != incarnation, leave == .none {
            out.append(.pushPull(to: sender, state: pushPullState(join: false)))
        }
        gossipNews(now: now, into: &out)
        return out
    }

    /// Reports the outcome of a stream (TCP) fallback ping started by a `streamPing` directive.
    public mutating func streamPingFinished(sequence: UInt32, contacted: Bool, now: Instant) {
        if contacted, probe?.sequence == sequence { probe?.contactedByStream = true }
    }

    /// Handles a timer the machine asked for earlier.
    public mutating func timerFired(_ timer: MembershipTimer, now: Instant) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        switch timer {
        case .probe:
            finishProbe(now: now, into: &out)
            if leave == .none { startProbe(now: now, into: &out) }
            let target = probe.flatMap { members[$0.target]?.address }
            out.append(.startTimer(.probe, after: awareness.scale(probePeriod(for: target))))
        case .probeTimeout(let sequence):
            handleProbeTimeout(sequence: sequence, now: now, into: &out)
        case .relayTimeout(let sequence):
            if let relay = relays.removeValue(forKey: sequence), relay.wantsNack {
                send([.nack(Nack(sequenceNumber: relay.requesterSequence))], to: relay.requester, into: &out)
            }
        case .gossip:
            gossip(now: now, into: &out)
            gossipTimerArmed = !broadcasts.isEmpty
            if gossipTimerArmed { out.append(.startTimer(.gossip, after: settings.gossipInterval)) }
        case .pushPull:
            if leave == .none, let peer = drawRandomMembers(1, where: { $0.state == .alive }).first {
                out.append(.pushPull(to: peer.address, state: pushPullState(join: false)))
            }
            out.append(.startTimer(.pushPull, after: settings.scaledPushPullInterval(memberCount: memberCount)))
        case .stormSettle:
            settleStorm(now: now, into: &out)
        case .reconnect:
            failedMembers = failedMembers.filter { now - $0.value.since < settings.reconnectTimeout }
            if leave == .none, let name = drawReconnectTarget() {
                failedMembers[name]?.offered = true
                out.append(.pushPull(to: failedMembers[name]!.address, state: pushPullState(join: false)))
            }
            // Lifeguard's buddy rule on a timer as well as on probes: tell one suspect directly
            // that it is suspected, so one that is reachable again (a healed partition) refutes
            // now rather than when the suspicion times out.
            if leave == .none, !suspicions.isEmpty {
                let names = suspicions.keys.sorted()
                let name = names[Int(random.next() % UInt64(names.count))]
                if let member = members[name], member.state == .suspect {
                    send([.suspect(Suspect(incarnation: member.incarnation, node: name, from: localName))], to: member.address, into: &out)
                }
            }
            out.append(.startTimer(.reconnect, after: settings.reconnectInterval))
        case .suspicionTimeout(let name):
            handleSuspicionTimeout(name, now: now, into: &out)
        case .flushGossip:
            flushScheduled = false
        }
        gossipNews(now: now, into: &out)
        return out
    }

    /// The failed member this reconnect tick offers a push-pull, if any. Each failed member is
    /// offered once by every node that holds it failed (a node whose view alone is stale heals
    /// then, and so do both halves of a partition); after that, Serf's rule: an offer with
    /// probability failed/alive, so a dead address gets about one offer per interval from the
    /// whole swarm rather than one from every node.
    mutating func drawReconnectTarget() -> String? {
        guard !failedMembers.isEmpty else { return nil }
        let fresh = failedMembers.filter { !$0.value.offered }.keys.sorted()
        if !fresh.isEmpty { return fresh[Int(random.next() % UInt64(fresh.count))] }
        let alive = members.values.count { $0.state == .alive }
        let probability = Double(failedMembers.count) / Double(max(1, alive))
        guard probability >= 1 || Double.random(in: 0..<1, using: &random) < probability else { return nil }
        let names = failedMembers.keys.sorted()
        return names[Int(random.next() % UInt64(names.count))]
    }

    private mutating func stagger(_ interval: Duration) -> Duration {
        let nanoseconds = max(1, interval.nanosecondsClamped)
        return .nanoseconds(Int64.random(in: 0..<nanoseconds, using: &random))
    }
}
