/// Join storms as a member sees them: many members it had never heard of, announced by gossip
/// within a second. Once the storm has passed, the member runs one push-pull with a random
/// member, so that what gossip did not bring (a few announcements among thousands) arrives in
/// seconds, not at the next scaled push-pull.
struct JoinStorm: Sendable {
    /// When the latest new members were heard of, oldest first (at most `joinStormRate + 1`).
    var recentNewMembers: [Instant] = []
    /// When the current storm began; nil when none is going on.
    var began: Instant?
    /// When the latest new member of the current storm was heard of.
    var lastNewMember: Instant?
    /// Whether a `stormSettle` timer is pending.
    var timerArmed = false
}

extension Membership {
    /// Notes a member first heard of through a gossiped `alive` (not a push-pull: our own join and
    /// its answers bring many members at once without any storm). More than `joinStormRate` in a
    /// second start (or continue) a storm, and arm the settle timer.
    mutating func noteNewMemberByGossip(now: Instant, into out: inout [MembershipDirective]) {
        guard settings.stormSettleDelay > .zero, leave == .none else { return }
        storm.recentNewMembers.append(now)
        if storm.recentNewMembers.count > settings.joinStormRate + 1 { storm.recentNewMembers.removeFirst() }
        let isStorm =
            storm.began != nil
            || (storm.recentNewMembers.count > settings.joinStormRate && now - storm.recentNewMembers[0] < .seconds(1))
        guard isStorm else { return }
        if storm.began == nil { storm.began = now }
        storm.lastNewMember = now
        if !storm.timerArmed {
            storm.timerArmed = true
            out.append(.startTimer(.stormSettle, after: settings.stormSettleDelay))
        }
    }

    /// The settle timer fired: push-pull with a random alive member once no new member has been
    /// heard of for `stormSettleDelay`, or once the storm has lasted that long since it began (or
    /// since the last settling exchange) — a long storm settles in steps.
    mutating func settleStorm(now: Instant, into out: inout [MembershipDirective]) {
        storm.timerArmed = false
        guard let began = storm.began, let last = storm.lastNewMember, leave == .none else { return }
        let delay = settings.stormSettleDelay
        let quietSince = now - last
        let lasted = now - began
        guard quietSince >= delay || lasted >= delay * 5 else {
            storm.timerArmed = true
            out.append(.startTimer(.stormSettle, after: delay - quietSince))
            return
        }
        if quietSince >= delay {
            storm.began = nil
        } else {
            // Still storming after five delays: settle what has come so far, and again later.
            storm.began = now
            storm.timerArmed = true
            out.append(.startTimer(.stormSettle, after: delay))
        }
        if let peer = drawRandomMembers(1, where: { $0.state == .alive }).first {
            out.append(.pushPull(to: peer.address, state: pushPullState(join: false)))
        }
    }
}
