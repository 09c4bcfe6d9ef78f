/// What a node counts about its own protocol work (`rumor info` shows them with the driver's
/// socket counters). Names are the reported counter names.
public enum NodeCounter: String, Sendable, CaseIterable {
    case replicationPushesSent = "replication_pushes_sent"
    case replicationPushesReceived = "replication_pushes_received"
    case replicationAcknowledgementsSent = "replication_acknowledgements_sent"
    case replicationAcknowledgementsReceived = "replication_acknowledgements_received"
    case replicationPullsSent = "replication_pulls_sent"
    case replicationPullsAnswered = "replication_pulls_answered"
    case replicationPullsCompleted = "replication_pulls_completed"
    case replicationDeltasSent = "replication_deltas_sent"
    case replicationDeltasReceived = "replication_deltas_received"
    case replicationEntriesApplied = "replication_entries_applied"
    case valuesExpired = "values_expired"
    case tombstonesCollected = "tombstones_collected"
    case rateLimitedPushPull = "rate_limited_push_pull"
    case rateLimitedPull = "rate_limited_pull"
    case pushPullCompleted = "push_pull_completed"
    case pushPullFailed = "push_pull_failed"
    case userMessagesReceived = "user_messages_received"
    case nameConflicts = "name_conflicts"
    case keyringOperations = "keyring_operations"
    case memberEventsJoined = "member_events_joined"
    case memberEventsUpdated = "member_events_updated"
    case memberEventsSuspected = "member_events_suspected"
    case memberEventsRecovered = "member_events_recovered"
    case memberEventsFailed = "member_events_failed"
    case memberEventsLeft = "member_events_left"
    case memberEventsReaped = "member_events_reaped"

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
    private static let index: [NodeCounter: Int] = Dictionary(
        uniqueKeysWithValues: NodeCounter.allCases.enumerated().map { ($1, $0) })

    public init() {
        slots = Array(repeating: 0, count: NodeCounter.allCases.count)
    }

    public subscript(counter: NodeCounter) -> UInt64 {
        slots[Self.index[counter]!]
    }

    mutating func add(_ counter: NodeCounter, _ amount: Int = 1) {
        slots[Self.index[counter]!] &+= UInt64(amount)
    }

    /// The counters that moved, by name.
    public var values: [String: UInt64] {
        var out: [String: UInt64] = [:]
        for (counter, slot) in zip(NodeCounter.allCases, slots) where slot > 0 { out[counter.rawValue] = slot }
        return out
    }
}
