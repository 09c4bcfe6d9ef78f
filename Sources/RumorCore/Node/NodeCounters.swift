/// What a node counts about its own protocol work (`rumor info` shows them with the driver's
/// socket counters). Names are the reported counter names.
public enum NodeCounter: Int, Sendable, CaseIterable {
    case replicationPushesSent
    case replicationPushesReceived
    case replicationAcknowledgementsSent
    case replicationAcknowledgementsReceived
    case replicationRelaysConfirmed
    case replicationPullsSent
    case replicationPullsAnswered
    case replicationPullsCompleted
    case replicationDeltasSent
    case replicationDeltasReceived
    case replicationEntriesApplied
    case catchUpPagesSent
    case catchUpPagesReceived
    case catchUpsServed
    case catchUpsCompleted
    case catchUpsInterrupted
    case valuesExpired
    case tombstonesCollected
    case rateLimitedPushPull
    case rateLimitedPull
    case pushPullCompleted
    case pushPullFailed
    case userMessagesReceived
    case nameConflicts
    case keyringOperations
    case directEventsSent
    case memberEventsJoined
    case memberEventsUpdated
    case memberEventsSuspected
    case memberEventsRecovered
    case memberEventsFailed
    case memberEventsLeft
    case memberEventsReaped

    /// The reported name.
    public var name: String { Self.names[rawValue] }

    private static let names = [
        "replication_pushes_sent",
        "replication_pushes_received",
        "replication_acknowledgements_sent",
        "replication_acknowledgements_received",
        "replication_relays_confirmed",
        "replication_pulls_sent",
        "replication_pulls_answered",
        "replication_pulls_completed",
        "replication_deltas_sent",
        "replication_deltas_received",
        "replication_entries_applied",
        "catch_up_pages_sent",
        "catch_up_pages_received",
        "catch_ups_served",
        "catch_ups_completed",
        "catch_ups_interrupted",
        "values_expired",
        "tombstones_collected",
        "rate_limited_push_pull",
        "rate_limited_pull",
        "push_pull_completed",
        "push_pull_failed",
        "user_messages_received",
        "name_conflicts",
        "keyring_operations",
        "member_events_joined",
        "member_events_updated",
        "member_events_suspected",
        "member_events_recovered",
        "member_events_failed",
        "member_events_left",
        "member_events_reaped",
    ]

    static func memberEvents(_ kind: MemberEvent.Kind) -> NodeCounter {
        switch kind {
        case .joined: .memberEventsJoined
        case .updated: .memberEventsUpdated
        case .suspected: .memberEventsSuspected
        case .recovered: .memberEventsRecovered
        case .failed: .memberEventsFailed
        case .left: .memberEventsLeft
        case .reaped: .memberEventsReaped
        }
    }
}

/// The node's counters: one slot per `NodeCounter` (cheap enough for 100k simulated nodes).
public struct NodeCounters: Sendable, Hashable {
    private var slots: [UInt64]

    public init() {
        slots = Array(repeating: 0, count: NodeCounter.allCases.count)
    }

    public subscript(counter: NodeCounter) -> UInt64 {
        slots[counter.rawValue]
    }

    mutating func add(_ counter: NodeCounter, _ amount: Int = 1) {
        slots[counter.rawValue] &+= UInt64(amount)
    }

    /// The counters that moved, by name.
    public var values: [String: UInt64] {
        var out: [String: UInt64] = [:]
        for (counter, slot) in zip(NodeCounter.allCases, slots) where slot > 0 { out[counter.name] = slot }
        return out
    }
}
