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
    case replicationEntriesRefused
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
    /// Acks whose network coordinate (or round trip) was refused (`CoordinateRejection`).
    case coordinatesRejected
    /// Messages (or push-pull member records) dropped for naming an address `AddressRule`
    /// refuses (port 0, broadcast, multicast, unspecified, wrong family).
    case addressesRefused

    /// The reported name.
    public var name: String { Self.names[rawValue] }

    /// Each case's name in snake case, in order (`replicationPushesSent` is
    /// `replication_pushes_sent`): derived, so a new case cannot shift the names of the others.
    private static let names: [String] = allCases.map { counter in
        String("\(counter)".flatMap { $0.isUppercase ? ["_", Character($0.lowercased())] : [$0] })
    }

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

    /// Adds `amount` and says whether the count passed 1, 2, 4, 8…: a refusal logged then is
    /// visible in the log without a flood flooding it.
    mutating func addPassingPowerOfTwo(_ counter: NodeCounter, _ amount: Int = 1) -> Bool {
        let before = slots[counter.rawValue]
        add(counter, amount)
        let after = slots[counter.rawValue]
        return after > before && (before == 0 || before.leadingZeroBitCount != after.leadingZeroBitCount)
    }

    /// The counters that moved, by name.
    public var values: [String: UInt64] {
        var out: [String: UInt64] = [:]
        for (counter, slot) in zip(NodeCounter.allCases, slots) where slot > 0 { out[counter.name] = slot }
        return out
    }
}
