/// Dissemination: piggybacking queued broadcasts on packets, the periodic and eager gossip,
/// and drawing random members to gossip with.
/// - SeeAlso: SWIM (Das et al., 2002) §4.1.
extension Membership {
    /// Rumor's eager gossip: sends never-sent broadcasts at once (see
    /// `MembershipSettings.eagerGossipSpacing`), or schedules a flush when one went out just now.
    mutating func gossipNews(now: Instant, into out: inout [MembershipDirective]) {
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
    mutating func gossip(now: Instant, into out: inout [MembershipDirective]) {
        guard !broadcasts.isEmpty else { return }
        let deadGossipWindow = settings.gossipToTheDeadTime
        let targets = drawRandomMembers(settings.gossipNodes) { member in
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
            out.append(.send(to: target.address, messages: messages, checksum: target.versions.acceptsChecksums))
        }
    }

    /// Sends a packet carrying `messages` plus as much queued gossip as fits the packet budget.
    mutating func send(
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
            limit: settings.retransmitLimit(memberCount: memberCount), maximumCount: maximumCount)
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

    private var compoundHeader: Int { 2 }

    private var compoundPartOverhead: Int { 2 }

    /// Up to `count` distinct random members other than us satisfying `isEligible`, sampled like
    /// memberlist's `kRandomNodes` (at most `3 * N` draws).
    mutating func drawRandomMembers(_ count: Int, where isEligible: (Member) -> Bool) -> [Member] {
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
