import RumorAPI
import RumorCore

/// Serf's coalescing of what event handlers get (docs/serf-wire.md §5.5), so a burst runs a
/// handler once instead of once per event: user events sent with `coalesce` are grouped by name
/// (only those with the highest Lamport time survive), membership events by member (the
/// latest type wins, and one handler run per type carries every member of it). A batch is
/// handed over `quiescence` after its last event or `period` after its first, whichever comes
/// first; user events sent without `coalesce`, and queries, pass straight through. Pure: the
/// caller gives the time.
struct HandlerCoalescer {
    static let period: Duration = .seconds(3)
    static let quiescence: Duration = .seconds(1)

    /// When a batch opened and last grew.
    struct Window {
        var first: Instant
        var last: Instant

        var due: Instant { min(first + HandlerCoalescer.period, last + HandlerCoalescer.quiescence) }
    }

    private var userWindow: Window?
    /// Per event name, the highest Lamport time seen and the events at it.
    private var latestEvents: [String: [SerfUserEvent]] = [:]
    private var userSelf: (name: String, tags: [String: String]) = ("", [:])

    private var memberWindow: Window?
    /// Per member, its latest change in this batch (in arrival order of members).
    private var latestChanges: [String: (type: String, member: MemberSnapshot)] = [:]
    private var memberOrder: [String] = []
    /// Per member, the type last handed over (a repeat is not handed over again, updates aside).
    private var lastDelivered: [String: String] = [:]
    private var memberSelf: (name: String, tags: [String: String]) = ("", [:])

    /// When the next batch is due, if one is open.
    var nextDue: Instant? {
        [userWindow?.due, memberWindow?.due].compactMap { $0 }.min()
    }

    /// Takes an event; returns what runs now (events that are not coalesced).
    mutating func add(_ event: HandlerEvent, now: Instant) -> [HandlerEvent] {
        switch event {
        case .user(let user, let own) where user.coalesce:
            userSelf = own
            // Every coalesced event holds the batch back, as in Serf, even one that is dropped.
            userWindow = Window(first: userWindow?.first ?? now, last: now)
            var kept = latestEvents[user.name] ?? []
            if let time = kept.first?.time, time > user.time { return [] }
            if let time = kept.first?.time, time < user.time { kept = [] }
            if !kept.contains(user) { kept.append(user) }
            latestEvents[user.name] = kept
            return []
        case .member(let type, let members, let selfName, let selfTags):
            memberSelf = (selfName, selfTags)
            for member in members {
                if latestChanges[member.name] == nil { memberOrder.append(member.name) }
                latestChanges[member.name] = (type, member)
            }
            memberWindow = Window(first: memberWindow?.first ?? now, last: now)
            return []
        case .user, .query:
            return [event]
        }
    }

    /// Hands over every batch due at `now`.
    mutating func flush(now: Instant) -> [HandlerEvent] {
        var out: [HandlerEvent] = []
        if let window = memberWindow, window.due <= now {
            var byType: [(type: String, members: [MemberSnapshot])] = []
            for name in memberOrder {
                guard let (type, member) = latestChanges[name] else { continue }
                if lastDelivered[name] == type, type != "member-update" { continue }
                lastDelivered[name] = type
                if let index = byType.firstIndex(where: { $0.type == type }) {
                    byType[index].members.append(member)
                } else {
                    byType.append((type, [member]))
                }
            }
            if lastDelivered.count > 8192 { lastDelivered = [:] }
            out += byType.map { .member(type: $0.type, members: $0.members, selfName: memberSelf.name, selfTags: memberSelf.tags) }
            latestChanges = [:]
            memberOrder = []
            memberWindow = nil
        }
        if let window = userWindow, window.due <= now {
            for name in latestEvents.keys.sorted() {
                out += (latestEvents[name] ?? []).map { .user($0, self: userSelf) }
            }
            latestEvents = [:]
            userWindow = nil
        }
        return out
    }
}

extension Agent {
    /// Hands an event to the handlers through the coalescer: what is not coalesced runs now,
    /// a batch when it is due.
    func feedHandlers(_ event: HandlerEvent) {
        guard let handlers else { return }
        for ready in coalescer.add(event, now: time.now) { handlers.handle(ready) }
        scheduleCoalescerFlush()
    }

    private func scheduleCoalescerFlush() {
        guard let due = coalescer.nextDue, coalescerFlushAt.map({ due < $0 }) ?? true else { return }
        coalescerFlushAt = due
        let delay = due - time.now
        Task { [weak self] in
            try? await Task.sleep(for: max(delay, .zero))
            await self?.flushCoalescer()
        }
    }

    private func flushCoalescer() {
        coalescerFlushAt = nil
        for event in coalescer.flush(now: time.now) { handlers?.handle(event) }
        scheduleCoalescerFlush()
    }
}
