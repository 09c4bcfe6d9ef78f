import RumorCore

/// Every machine-readable error code the agent, its API and the CLI report, with the HTTP status
/// the API answers it with.
///
/// The raw value is the code on the wire (`"code":"bad_config"`) and on the CLI's stderr; it is
/// part of the contract: scripts and tests match on it, so a raw value MUST NOT change.
public enum ErrorCode: String, Codable, Sendable, Hashable, CaseIterable {
    // Requests the API refuses.
    case badRequest = "bad_request"
    case notFound = "not_found"
    case tooLarge = "too_large"
    case unauthorized
    /// A request the API refuses for where it comes from: a Host that is not the API's own
    /// address or an allowed name (DNS rebinding), or a foreign web page (its Origin or
    /// `Sec-Fetch-Site`).
    case forbidden
    /// A state-changing request (POST, PUT, PATCH, DELETE) without `Content-Type: application/json`.
    case unsupportedMediaType = "unsupported_media_type"
    /// The API holds `api_max_connections` connections that all have a request under way.
    case tooManyConnections = "too_many_connections"
    /// The API holds `api_max_streams` streams (watches, events, monitor, queries) already.
    case tooManyStreams = "too_many_streams"
    case badAddress = "bad_address"
    case badKey = "bad_key"
    // Writes the replication core refuses (see `NodeError.Code`).
    case emptyKey = "empty_key"
    case keyTooLong = "key_too_long"
    case valueTooLarge = "value_too_large"
    /// Tags whose encoding passes the 512-byte metadata limit.
    case tagsTooLarge = "tags_too_large"
    /// A user event whose name and payload pass Serf's 512 bytes (or that has no name).
    case eventTooLarge = "event_too_large"
    /// A query whose encoding passes Serf's 1024 bytes.
    case queryTooLarge = "query_too_large"
    // The agent's state refuses the operation.
    case left
    case keyNotFound = "key_not_found"
    /// A command named a node that is not a live Rumor member.
    case unknownNode = "unknown_node"
    /// No network coordinate is known for a node yet (none of its acks carried one: it was
    /// not probed yet, or it is a plain memberlist node).
    case noCoordinate = "no_coordinate"
    /// A Serf feature (queries) asked of a node that speaks plain memberlist.
    case needsSerf = "needs_serf"
    /// A read asked of a node that has not synced with a peer since it started (`ReadinessSnapshot`).
    case notReady = "not_ready"
    case watchCompacted = "watch_compacted"
    case watchAhead = "watch_ahead"
    /// A watch resumed with the epoch of a change log the agent no longer has.
    case watchEpochChanged = "watch_epoch_changed"
    case encryptionDisabled = "encryption_disabled"
    case encryptionMigrating = "encryption_migrating"
    // Other nodes did not (all) answer.
    case joinFailed = "join_failed"
    case replicationTimeout = "replication_timeout"
    /// A peer refused a write `put --wait` waited for (its limits, or a stamp no node takes).
    case replicationRefused = "replication_refused"
    /// This node's clock is beyond the maximum offset from a majority of its peers: local writes are fenced.
    case clockSkew = "clock_skew"
    case keyringPartial = "keyring_partial"
    case badAnswer = "bad_answer"
    /// A Pilot peer the daemon does not know (no such hostname or address).
    case peerUnknown = "peer_unknown"
    /// A Pilot peer that did not grant trust (refused, or not in time).
    case trustRefused = "trust_refused"
    // Start-up and local failures.
    case badConfig = "bad_config"
    case badKeyring = "bad_keyring"
    case keyringNotSaved = "keyring_not_saved"
    case storageFailed = "storage_failed"
    case storageFull = "storage_full"
    case storageCorrupt = "storage_corrupt"
    case bindFailed = "bind_failed"
    /// The local Pilot daemon cannot be reached through its socket.
    case pilotUnavailable = "pilot_unavailable"
    case `internal`
    // Raised by the CLI only.
    case badArguments = "bad_arguments"
    case agentUnreachable = "agent_unreachable"
    case badResponse = "bad_response"
    case agentFailed = "agent_failed"
    case watchEnded = "watch_ended"
    case eventsEnded = "events_ended"
    case writeFailed = "write_failed"

    /// The HTTP status of an API answer carrying this code: 4xx when the request (or the node's
    /// state) is at fault, 502/504 when other nodes are, 500 for everything else (codes the API
    /// never sends included).
    public var httpStatus: Int {
        switch self {
        case .badRequest, .badAddress, .badKey, .emptyKey, .keyTooLong, .valueTooLarge, .tagsTooLarge, .eventTooLarge, .queryTooLarge: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .unsupportedMediaType: 415
        case .tooManyConnections, .tooManyStreams: 503
        case .notFound, .keyNotFound, .unknownNode, .noCoordinate: 404
        case .left, .watchAhead, .encryptionDisabled, .encryptionMigrating, .needsSerf: 409
        case .watchCompacted, .watchEpochChanged: 410
        case .tooLarge: 413
        case .peerUnknown: 404
        case .joinFailed, .keyringPartial, .trustRefused, .replicationRefused: 502
        case .pilotUnavailable, .notReady, .clockSkew: 503
        case .replicationTimeout: 504
        case .storageFull: 507
        case .badAnswer, .badConfig, .badKeyring, .keyringNotSaved, .storageFailed, .storageCorrupt, .bindFailed,
            .internal, .badArguments, .agentUnreachable, .badResponse, .agentFailed, .watchEnded, .eventsEnded, .writeFailed:
            500
        }
    }

    /// The code of an error a node command ended with (a refused write, a failed join…).
    public init(_ code: NodeError.Code) {
        switch code {
        case .emptyKey: self = .emptyKey
        case .keyTooLong: self = .keyTooLong
        case .valueTooLarge: self = .valueTooLarge
        case .left: self = .left
        case .joinFailed: self = .joinFailed
        case .replicationTimeout: self = .replicationTimeout
        case .replicationRefused: self = .replicationRefused
        case .clockSkew: self = .clockSkew
        case .keyringPartial: self = .keyringPartial
        case .watchCompacted: self = .watchCompacted
        case .watchAhead: self = .watchAhead
        case .tagsTooLarge: self = .tagsTooLarge
        case .eventTooLarge: self = .eventTooLarge
        case .unknownNode: self = .unknownNode
        case .needsSerf: self = .needsSerf
        }
    }
}
