/// Why a node refused a command or a command failed: a stable code, what happened, and what to
/// do. A refused write (`empty_key`, `key_too_long`, `value_too_large`, `left`) wrote nothing.
public struct NodeError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case emptyKey = "empty_key"
        case keyTooLong = "key_too_long"
        case valueTooLarge = "value_too_large"
        case left
        case joinFailed = "join_failed"
        case replicationTimeout = "replication_timeout"
        /// A peer refused a write someone waits for (`put --wait`): its limits, or a stamp no node takes.
        case replicationRefused = "replication_refused"
        /// This node's clock is beyond the maximum offset from a majority of its peers: it refuses local writes.
        case clockSkew = "clock_skew"
        case keyringPartial = "keyring_partial"
        case watchCompacted = "watch_compacted"
        case watchAhead = "watch_ahead"
        case tagsTooLarge = "tags_too_large"
        case eventTooLarge = "event_too_large"
        /// A command named a node that is not a live member (or not a Rumor node).
        case unknownNode = "unknown_node"
        /// A Serf feature (queries) on a node that speaks plain memberlist.
        case needsSerf = "needs_serf"
    }

    public var code: Code
    public var message: String
    public var hint: String

    public init(_ code: Code, _ message: String, hint: String) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { "\(code.rawValue): \(message) (\(hint))" }
}
