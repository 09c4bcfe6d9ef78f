/// The rules for `alive`, `suspect` and `dead` claims, received as messages or merged from a
/// push-pull state: incarnation order, refutation, Lifeguard suspicion. They follow
/// memberlist's `aliveNode`, `suspectNode` and `deadNode` (`state.go`).
/// - SeeAlso: SWIM (Das et al., 2002) §4.2; Lifeguard (Dadgar et al., 2018) §IV-B.
extension Membership {
    mutating func handleAlive(_ alive: Alive, now: Instant, into out: inout [MembershipDirective]) {
        if alive.node == localName {
            handleAliveAboutLocalNode(alive, now: now, into: &out)
            return
        }
        // Callers report a refused address (`admits`); this guard keeps every path safe.
        guard addressRule.allows(alive.address) else { return }
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

    mutating func handleSuspect(_ suspect: Suspect, now: Instant, into out: inout [MembershipDirective]) {
        guard var member = members[suspect.node], suspect.incarnation >= member.incarnation else {
            if suspect.node == localName { answerStaleAccusation(from: suspect.from, into: &out) }
            return
        }
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
        var expected = settings.suspicionMultiplier - 2
        if memberCount - 2 < expected { expected = 0 }
        let minimum = settings.minimumSuspicionTimeout(
            memberCount: memberCount, probeInterval: probePeriod(for: member.address))
        let maximum = minimum * settings.suspicionMaxTimeoutMultiplier
        let suspicion = Suspicion(
            from: suspect.from, start: now, minimum: minimum, maximum: maximum, expectedConfirmations: expected)
        suspicions[suspect.node] = suspicion
        out.append(.startTimer(.suspicionTimeout(node: suspect.node), after: suspicion.deadline - now))
        out.append(.event(MemberEvent(kind: .suspected, member: member)))
    }

    mutating func handleSuspicionTimeout(_ name: String, now: Instant, into out: inout [MembershipDirective]) {
        guard let suspicion = suspicions[name], now >= suspicion.deadline,
            let member = members[name], member.state == .suspect
        else { return }
        handleDead(Dead(incarnation: member.incarnation, node: name, from: localName), now: now, into: &out)
    }

    mutating func handleDead(_ dead: Dead, now: Instant, into out: inout [MembershipDirective]) {
        guard var member = members[dead.node], dead.incarnation >= member.incarnation else {
            if dead.node == localName { answerStaleAccusation(from: dead.from, into: &out) }
            return
        }
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

    /// An accusation older than our incarnation: the accuser missed our refutation (gossip of it
    /// has died out), so it would keep us suspect or dead until its next push-pull. Tell it
    /// directly: one alive message to the accuser.
    private mutating func answerStaleAccusation(from accuser: String, into out: inout [MembershipDirective]) {
        guard leave == .none, accuser != localName, let member = members[accuser] else { return }
        send([.alive(localMember.aliveMessage)], to: member.address, into: &out)
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

    /// Merges a remote push-pull state from `sender`: remote `alive` as alive, `left` as a leave,
    /// and remote `suspect`/`dead` as a suspicion only, so a node is never declared dead on
    /// hearsay. A record whose address `addressRule` refuses is dropped (and reported); the
    /// others are merged. Our own record is never taken from a peer, whatever its address.
    mutating func merge(_ nodes: [PushNodeState], from sender: NodeAddress, now: Instant, into out: inout [MembershipDirective]) {
        for node in nodes {
            guard node.name == localName || admits(node.address, "push-pull member address", from: sender, into: &out) else {
                continue
            }
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
}
