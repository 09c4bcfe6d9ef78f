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

    /// Every known member, this node included, by name.
    public private(set) var members: [String: Member]
    /// Probe order: member names, shuffled each time a full round completes.
    private var probeOrder: [String]
    private var probeIndex = 0
    private var awareness: Awareness
    private var suspicions: [String: Suspicion] = [:]
    private var broadcasts = BroadcastQueue()
    private var random: SeededRandom
    /// Members declared dead (not left), kept after reaping until `reconnectTimeout` so the
    /// reconnect timer can offer them push-pull exchanges: how a partition heals.
    private var failedMembers: [String: FailedMember] = [:]

    private struct FailedMember {
        var address: NodeAddress
        var since: Instant
    }
    private var sequence: UInt32 = 0
    private var probe: ProbeInFlight?
    private var relays: [UInt32: Relay] = [:]
    private var leave = LeaveProgress.none
    /// When news was last gossiped eagerly, and whether a deferred flush is scheduled.
    private var lastEagerGossip: Instant?
    private var flushScheduled = false
    /// Whether the gossip timer is running: it stops while nothing is queued (an idle node then
    /// has no gossip ticks to serve) and restarts when something is.
    private var gossipTimerArmed = true

    /// One direct probe in progress.
    private struct ProbeInFlight: Sendable {
        var sequence: UInt32
        var target: String
        var acknowledged = false
        var contactedByStream = false
        var expectedNacks = 0
        var nacks = 0
    }

    /// An indirect probe we run for another member.
    private struct Relay: Sendable {
        var requesterSequence: UInt32
        var requester: NodeAddress
        var wantsNack: Bool
    }

    private enum LeaveProgress: Sendable {
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
        self.awareness = Awareness(maximum: settings.awarenessMaxMultiplier)
        self.random = SeededRandom(seed: seed)
        let local = Member(
            name: name, address: address, meta: meta, incarnation: 1, state: .alive, stateChanged: now,
            versions: .rumor)
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
            handleAck(ack, into: &out)
        case .nack(let nack):
            if probe?.sequence == nack.sequenceNumber { probe?.nacks += 1 }
        case .suspect(let suspect):
            handleSuspect(suspect, now: now, into: &out)
        case .alive(let alive):
            handleAlive(alive, now: now, into: &out)
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
    public mutating func receivePushPull(_ remote: PushPull, from sender: NodeAddress, now: Instant) -> (
        reply: PushPull, directives: [MembershipDirective]
    ) {
        let reply = pushPullState(join: false)
        var out: [MembershipDirective] = []
        merge(remote.nodes, now: now, into: &out)
        gossipNews(now: now, into: &out)
        return (reply, out)
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
        merge(remote.nodes, now: now, into: &out)
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
            out.append(.startTimer(.probe, after: awareness.scale(settings.probeInterval)))
        case .probeTimeout(let sequence):
            probeTimedOut(sequence: sequence, now: now, into: &out)
        case .relayTimeout(let sequence):
            if let relay = relays.removeValue(forKey: sequence), relay.wantsNack {
                send([.nack(Nack(sequenceNumber: relay.requesterSequence))], to: relay.requester, into: &out)
            }
        case .gossip:
            gossip(now: now, into: &out)
            gossipTimerArmed = !broadcasts.isEmpty
            if gossipTimerArmed { out.append(.startTimer(.gossip, after: settings.gossipInterval)) }
        case .pushPull:
            if leave == .none, let peer = randomMembers(1, where: { $0.state == .alive }).first {
                out.append(.pushPull(to: peer.address, state: pushPullState(join: false)))
            }
            out.append(.startTimer(.pushPull, after: settings.scaledPushPullInterval(memberCount: members.count)))
        case .reconnect:
            failedMembers = failedMembers.filter { now - $0.value.since < settings.reconnectTimeout }
            if leave == .none, !failedMembers.isEmpty {
                let names = failedMembers.keys.sorted()
                let name = names[Int(random.next() % UInt64(names.count))]
                out.append(.pushPull(to: failedMembers[name]!.address, state: pushPullState(join: false)))
            }
            out.append(.startTimer(.reconnect, after: settings.reconnectInterval))
        case .suspicionTimeout(let name):
            suspicionExpired(name, now: now, into: &out)
        case .flushGossip:
            flushScheduled = false
        }
        gossipNews(now: now, into: &out)
        return out
    }

    // MARK: - Probing (SWIM failure detection)

    private mutating func startProbe(now: Instant, into out: inout [MembershipDirective]) {
        guard let target = nextProbeTarget(now: now, into: &out) else { return }
        let sequence = nextSequence()
        let local = localMember
        let ping = Ping(sequenceNumber: sequence, target: target.name, source: local.address, sourceName: localName)
        probe = ProbeInFlight(sequence: sequence, target: target.name)
        var messages: [Message] = [.ping(ping)]
        if target.state != .alive {
            // A suspect is told directly, so it can refute at once.
            messages.append(.suspect(Suspect(incarnation: target.incarnation, node: target.name, from: localName)))
        }
        send(messages, to: target.address, checksum: target.versions.protocolMax >= 5, into: &out)
        out.append(.startTimer(.probeTimeout(sequence: sequence), after: settings.probeTimeout))
    }

    /// The next member in probe order that is neither us nor dead/left, reshuffling (and reaping
    /// long-dead members) each time the order is exhausted.
    private mutating func nextProbeTarget(now: Instant, into out: inout [MembershipDirective]) -> Member? {
        var checked = 0
        while checked <= probeOrder.count {
            if probeIndex >= probeOrder.count {
                resetProbeOrder(now: now, into: &out)
                probeIndex = 0
                checked += 1
                continue
            }
            let name = probeOrder[probeIndex]
            probeIndex += 1
            checked += 1
            if name != localName, let member = members[name], !member.isDeadOrLeft {
                return member
            }
        }
        return nil
    }

    private mutating func resetProbeOrder(now: Instant, into out: inout [MembershipDirective]) {
        var kept: [String] = []
        kept.reserveCapacity(probeOrder.count)
        for name in probeOrder {
            guard let member = members[name] else { continue }
            if name != localName, member.isDeadOrLeft, now - member.stateChanged > settings.gossipToTheDeadTime {
                members[name] = nil
                suspicions[name] = nil
                out.append(.event(MemberEvent(kind: .reaped, member: member)))
            } else {
                kept.append(name)
            }
        }
        kept.shuffle(using: &random)
        probeOrder = kept
    }

    /// The direct probe got no ack in `probeTimeout`: ask others to probe indirectly, and try a
    /// stream ping in case only UDP is failing.
    private mutating func probeTimedOut(sequence: UInt32, now: Instant, into out: inout [MembershipDirective]) {
        guard var current = probe, current.sequence == sequence, !current.acknowledged,
            let target = members[current.target]
        else { return }
        let helpers = randomMembers(settings.indirectChecks) {
            $0.state == .alive && $0.name != target.name
        }
        let local = localMember
        for helper in helpers {
            let wantsNack = helper.versions.protocolMax >= 4
            if wantsNack { current.expectedNacks += 1 }
            let request = IndirectPing(
                sequenceNumber: sequence, target: target.address, targetName: target.name, wantsNack: wantsNack,
                source: local.address, sourceName: localName)
            send([.indirectPing(request)], to: helper.address, checksum: helper.versions.protocolMax >= 5, into: &out)
        }
        probe = current
        if target.versions.protocolMax >= 3 {
            let ping = Ping(sequenceNumber: sequence, target: target.name, source: local.address, sourceName: localName)
            let remaining = awareness.scale(settings.probeInterval) - settings.probeTimeout
            out.append(.streamPing(to: target.address, ping: ping, deadline: now + remaining))
        }
    }

    /// Closes the probe started one probe interval ago: on silence, suspect the target and adjust
    /// local health by how many nacks were missing (Lifeguard).
    private mutating func finishProbe(now: Instant, into out: inout [MembershipDirective]) {
        guard let finished = probe else { return }
        probe = nil
        if finished.acknowledged || finished.contactedByStream {
            if finished.acknowledged { awareness.apply(-1) }
            return
        }
        if finished.expectedNacks > 0 {
            awareness.apply(max(0, finished.expectedNacks - finished.nacks))
        } else {
            awareness.apply(1)
        }
        guard let target = members[finished.target], target.state == .alive || target.state == .suspect else { return }
        handleSuspect(Suspect(incarnation: target.incarnation, node: target.name, from: localName), now: now, into: &out)
    }

    private mutating func handlePing(_ ping: Ping, from sender: NodeAddress, into out: inout [MembershipDirective]) {
        // A ping for a previous node at our address must not be answered on its behalf.
        guard ping.target.isEmpty || ping.target == localName else { return }
        let replyTo = ping.source ?? sender
        send([.ack(Ack(sequenceNumber: ping.sequenceNumber))], to: replyTo, checksum: checksumFor(ping.sourceName), into: &out)
    }

    private mutating func handleIndirectPing(
        _ request: IndirectPing, from sender: NodeAddress, into out: inout [MembershipDirective]
    ) {
        let sequence = nextSequence()
        let local = localMember
        relays[sequence] = Relay(
            requesterSequence: request.sequenceNumber, requester: request.source ?? sender, wantsNack: request.wantsNack)
        let ping = Ping(sequenceNumber: sequence, target: request.targetName, source: local.address, sourceName: localName)
        send([.ping(ping)], to: request.target, checksum: checksumFor(request.targetName), into: &out)
        out.append(.startTimer(.relayTimeout(sequence: sequence), after: settings.probeTimeout))
    }

    private mutating func handleAck(_ ack: Ack, into out: inout [MembershipDirective]) {
        if probe?.sequence == ack.sequenceNumber {
            probe?.acknowledged = true
        } else if let relay = relays.removeValue(forKey: ack.sequenceNumber) {
            send(
                [.ack(Ack(sequenceNumber: relay.requesterSequence, payload: ack.payload))], to: relay.requester,
                into: &out)
        }
    }

    // MARK: - Gossip (alive / suspect / dead)

    private mutating func handleAlive(_ alive: Alive, now: Instant, into out: inout [MembershipDirective]) {
        if alive.node == localName {
            handleAliveAboutLocalNode(alive, now: now, into: &out)
            return
        }
        guard alive.address.ip.count == 4 || alive.address.ip.count == 16 else { return }
        guard var member = members[alive.node] else {
            let member = Member(
                name: alive.node, address: alive.address, meta: alive.meta, incarnation: alive.incarnation,
                state: .alive, stateChanged: now, versions: alive.versions)
            insertIntoProbeOrder(member.name)
            members[member.name] = member
            broadcasts.enqueue(.alive(alive), about: alive.node)
            out.append(.event(MemberEvent(kind: .joined, member: member)))
            return
        }
        var movesAddress = false
        if member.address != alive.address {
            let reclaimable = settings.deadNodeReclaimTime > .zero
                && now - member.stateChanged > settings.deadNodeReclaimTime
            guard member.state == .left || (member.state == .dead && reclaimable) else {
                out.append(.conflict(existing: member, claimed: alive))
                return
            }
            movesAddress = true
        }
        guard alive.incarnation > member.incarnation || movesAddress else { return }

        suspicions[alive.node] = nil
        failedMembers[alive.node] = nil
        broadcasts.enqueue(.alive(alive), about: alive.node)
        let previous = member
        member.incarnation = alive.incarnation
        member.address = alive.address
        member.meta = alive.meta
        member.versions = alive.versions
        if member.state != .alive {
            member.state = .alive
            member.stateChanged = now
        }
        members[alive.node] = member
        let kind: MemberEvent.Kind? =
            switch previous.state {
            case .dead, .left: .joined
            case .suspect: .recovered
            case .alive: previous.meta != member.meta || previous.address != member.address ? .updated : nil
            }
        if let kind { out.append(.event(MemberEvent(kind: kind, member: member))) }
    }

    /// Someone gossips about us. Our own announcement coming back is fine; anything newer or
    /// different claims something about us that is not true, so we refute it.
    private mutating func handleAliveAboutLocalNode(_ alive: Alive, now: Instant, into out: inout [MembershipDirective]) {
        let local = localMember
        guard alive.incarnation >= local.incarnation, leave == .none else { return }
        if alive.incarnation == local.incarnation, alive.meta == local.meta, alive.address == local.address,
            alive.versions == local.versions
        {
            return
        }
        refute(accusedIncarnation: alive.incarnation, now: now, into: &out)
    }

    private mutating func handleSuspect(_ suspect: Suspect, now: Instant, into out: inout [MembershipDirective]) {
        guard var member = members[suspect.node], suspect.incarnation >= member.incarnation else { return }
        if var suspicion = suspicions[suspect.node] {
            if suspicion.confirm(from: suspect.from) {
                suspicions[suspect.node] = suspicion
                broadcasts.enqueue(.suspect(suspect), about: suspect.node)
                out.append(.startTimer(.suspicionTimeout(node: suspect.node), after: max(.zero, suspicion.deadline - now)))
            }
            return
        }
        guard member.state == .alive else { return }
        if suspect.node == localName {
            guard leave == .none else { return }
            refute(accusedIncarnation: suspect.incarnation, now: now, into: &out)
            return
        }
        broadcasts.enqueue(.suspect(suspect), about: suspect.node)
        member.incarnation = suspect.incarnation
        member.state = .suspect
        member.stateChanged = now
        members[suspect.node] = member

        // k: confirmations expected before the timeout reaches its minimum; none when too few
        // others could possibly confirm.
        let memberCount = members.count
        var expected = settings.suspicionMultiplier - 2
        if memberCount - 2 < expected { expected = 0 }
        let minimum = settings.minimumSuspicionTimeout(memberCount: memberCount)
        let maximum = minimum * settings.suspicionMaxTimeoutMultiplier
        let suspicion = Suspicion(
            from: suspect.from, start: now, minimum: minimum, maximum: maximum, expectedConfirmations: expected)
        suspicions[suspect.node] = suspicion
        out.append(.startTimer(.suspicionTimeout(node: suspect.node), after: suspicion.deadline - now))
        out.append(.event(MemberEvent(kind: .suspected, member: member)))
    }

    private mutating func suspicionExpired(_ name: String, now: Instant, into out: inout [MembershipDirective]) {
        guard let suspicion = suspicions[name], now >= suspicion.deadline,
            let member = members[name], member.state == .suspect
        else { return }
        handleDead(Dead(incarnation: member.incarnation, node: name, from: localName), now: now, into: &out)
    }

    private mutating func handleDead(_ dead: Dead, now: Instant, into out: inout [MembershipDirective]) {
        guard var member = members[dead.node], dead.incarnation >= member.incarnation else { return }
        suspicions[dead.node] = nil
        guard !member.isDeadOrLeft else { return }
        if dead.node == localName {
            // Only our own leave may say we are gone; anyone else is wrong and is refuted.
            if leave == .none { refute(accusedIncarnation: dead.incarnation, now: now, into: &out) }
            return
        }
        broadcasts.enqueue(.dead(dead), about: dead.node)
        member.incarnation = dead.incarnation
        member.state = dead.isLeave ? .left : .dead
        member.stateChanged = now
        members[dead.node] = member
        if dead.isLeave {
            failedMembers[dead.node] = nil
        } else {
            failedMembers[dead.node] = FailedMember(address: member.address, since: now)
            if failedMembers.count > Self.maximumFailedMembers, let oldest = failedMembers.min(by: { $0.value.since < $1.value.since }) {
                failedMembers[oldest.key] = nil
            }
        }
        out.append(.event(MemberEvent(kind: dead.isLeave ? .left : .failed, member: member)))
    }

    /// Claims a higher incarnation than the accusation and announces we are alive; refuting is a
    /// sign we may be slow, so local health worsens (Lifeguard).
    private mutating func refute(accusedIncarnation: UInt32, now: Instant, into out: inout [MembershipDirective]) {
        var local = localMember
        local.incarnation = max(local.incarnation, accusedIncarnation) &+ 1
        members[localName] = local
        awareness.apply(1)
        broadcasts.enqueue(.alive(local.aliveMessage), about: localName)
    }

    /// Merges a remote push-pull state: remote `alive` as alive, `left` as a leave, and remote
    /// `suspect`/`dead` as a suspicion only, so a node is never declared dead on hearsay.
    private mutating func merge(_ nodes: [PushNodeState], now: Instant, into out: inout [MembershipDirective]) {
        for node in nodes {
            switch node.state {
            case .alive:
                let alive = Alive(
                    incarnation: node.incarnation, node: node.name, address: node.address, meta: node.meta,
                    versions: node.versions)
                handleAlive(alive, now: now, into: &out)
            case .left:
                handleDead(Dead(incarnation: node.incarnation, node: node.name, from: node.name), now: now, into: &out)
            case .dead, .suspect:
                handleSuspect(Suspect(incarnation: node.incarnation, node: node.name, from: localName), now: now, into: &out)
            }
        }
    }

    // MARK: - Dissemination

    /// Rumor's eager gossip: sends never-sent broadcasts at once (see
    /// `MembershipSettings.eagerGossipSpacing`), or schedules a flush when one went out just now.
    private mutating func gossipNews(now: Instant, into out: inout [MembershipDirective]) {
        if !gossipTimerArmed, !broadcasts.isEmpty {
            gossipTimerArmed = true
            out.append(.startTimer(.gossip, after: settings.gossipInterval))
        }
        guard let spacing = settings.eagerGossipSpacing, broadcasts.hasFresh else { return }
        if let last = lastEagerGossip, now - last < spacing {
            if !flushScheduled {
                flushScheduled = true
                out.append(.startTimer(.flushGossip, after: spacing - (now - last)))
            }
            return
        }
        lastEagerGossip = now
        gossip(now: now, into: &out)
    }

    /// Sends queued broadcasts to `gossipNodes` random members: alive or suspect ones, and dead
    /// ones for `gossipToTheDeadTime` so they can learn of it and refute.
    private mutating func gossip(now: Instant, into out: inout [MembershipDirective]) {
        guard !broadcasts.isEmpty else { return }
        let deadGossipWindow = settings.gossipToTheDeadTime
        let targets = randomMembers(settings.gossipNodes) { member in
            switch member.state {
            case .alive, .suspect: true
            case .dead: now - member.stateChanged <= deadGossipWindow
            case .left: false
            }
        }
        for target in targets {
            let (messages, retired) = takeBroadcasts(budget: settings.packetBudget - compoundHeader)
            noteRetired(retired, into: &out)
            guard !messages.isEmpty else { break }
            out.append(.send(to: target.address, messages: messages, checksum: target.versions.protocolMax >= 5))
        }
    }

    /// Sends a packet carrying `messages` plus as much queued gossip as fits the packet budget.
    private mutating func send(
        _ messages: [Message], to address: NodeAddress, checksum: Bool = false, into out: inout [MembershipDirective]
    ) {
        let used = messages.reduce(compoundHeader) { $0 + $1.estimatedWireSize + compoundPartOverhead }
        var all = messages
        if used < settings.packetBudget {
            let (extra, retired) = takeBroadcasts(budget: settings.packetBudget - used, maximumCount: 255 - messages.count)
            all += extra
            noteRetired(retired, into: &out)
        }
        out.append(.send(to: address, messages: all, checksum: checksum))
    }

    private mutating func takeBroadcasts(budget: Int, maximumCount: Int = 255) -> (sent: [Message], retired: [Message]) {
        broadcasts.take(
            budget: budget, overhead: compoundPartOverhead,
            limit: settings.retransmitLimit(memberCount: members.count), maximumCount: maximumCount)
    }

    private mutating func noteRetired(_ retired: [Message], into out: inout [MembershipDirective]) {
        guard leave == .announcing else { return }
        for message in retired {
            if case .dead(let dead) = message, dead.node == localName {
                leave = .done
                out.append(.leaveCompleted)
            }
        }
    }

    // MARK: - Helpers

    private var compoundHeader: Int { 2 }
    private var compoundPartOverhead: Int { 2 }

    private func checksumFor(_ name: String) -> Bool {
        guard !name.isEmpty, let member = members[name] else { return false }
        return member.versions.protocolMax >= 5
    }

    private mutating func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    private mutating func stagger(_ interval: Duration) -> Duration {
        let nanoseconds = max(1, interval.nanosecondsClamped)
        return .nanoseconds(Int64.random(in: 0..<nanoseconds, using: &random))
    }

    /// Inserts a new member at a random place in the probe order, so newcomers are not all
    /// probed last (memberlist does the same).
    private mutating func insertIntoProbeOrder(_ name: String) {
        probeOrder.append(name)
        let index = Int.random(in: 0..<probeOrder.count, using: &random)
        probeOrder.swapAt(index, probeOrder.count - 1)
    }

    /// Up to `count` distinct random members other than us satisfying `isEligible`, sampled like
    /// memberlist's `kRandomNodes` (at most `3 * N` draws).
    private mutating func randomMembers(_ count: Int, where isEligible: (Member) -> Bool) -> [Member] {
        guard count > 0, probeOrder.count > 1 else { return [] }
        var chosen: [Member] = []
        var chosenNames: Set<String> = []
        let draws = 3 * probeOrder.count
        for _ in 0..<draws where chosen.count < count {
            let name = probeOrder[Int.random(in: 0..<probeOrder.count, using: &random)]
            guard name != localName, !chosenNames.contains(name), let member = members[name], isEligible(member)
            else { continue }
            chosen.append(member)
            chosenNames.insert(name)
        }
        return chosen
    }
}

/// Something the driver must do on the machine's behalf.
public enum MembershipDirective: Sendable, Hashable {
    /// Send one UDP packet holding `messages` (a compound when more than one), with a CRC when
    /// `checksum` is set (memberlist adds one for peers speaking protocol 5).
    case send(to: NodeAddress, messages: [Message], checksum: Bool)
    /// Call `timerFired(timer)` after `after`. Timers are never cancelled: the machine ignores
    /// those that no longer apply.
    case startTimer(MembershipTimer, after: Duration)
    /// Open a stream to `to`, send `state` as a push-pull, read the reply and hand it to
    /// `receivePushPullReply`. Failure needs no report.
    case pushPull(to: NodeAddress, state: PushPull)
    /// Fallback probe: send `ping` over a stream and wait for its ack until `deadline`; report
    /// with `streamPingFinished`.
    case streamPing(to: NodeAddress, ping: Ping, deadline: Instant)
    /// An application (user) message arrived.
    case deliver([UInt8], from: NodeAddress)
    /// Membership changed.
    case event(MemberEvent)
    /// Another node claims a name we know at a different address; it was ignored.
    case conflict(existing: Member, claimed: Alive)
    /// Our leave announcement has been gossiped as often as any broadcast is.
    case leaveCompleted
}

/// Timers the membership machine asks its driver for.
public enum MembershipTimer: Sendable, Hashable {
    /// Close the current probe and start the next (every probe interval, scaled by local health).
    case probe
    /// The direct ack for probe `sequence` is overdue: go indirect.
    case probeTimeout(sequence: UInt32)
    /// An indirect probe we relay got no ack in time: nack the requester if it asked.
    case relayTimeout(sequence: UInt32)
    /// Gossip queued broadcasts.
    case gossip
    /// Run a push-pull exchange with a random member.
    case pushPull
    /// The suspicion of `node` may have expired.
    case suspicionTimeout(node: String)
    /// Offer a push-pull exchange to one failed member (partition healing).
    case reconnect
    /// Gossip news that arrived too soon after the last eager gossip.
    case flushGossip
}
