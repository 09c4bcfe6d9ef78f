import Foundation
import RumorCore
import RumorWire

/// The replicated state at a glance, for `rumor status`.
public struct StateStatus: Codable, Sendable, Hashable {
    /// Keys with a live value (expired and departed-ephemeral values included until collected).
    public var values: Int
    /// Deletes still remembered (until the tombstone grace period passes).
    public var tombstones: Int
    /// Per writer (a node's process: `name#generation`), the timestamp up to which this node
    /// holds all its writes.
    public var digest: [String: String]
    /// Milliseconds since the last completed anti-entropy exchange; nil if none yet.
    public var lastSyncedMillisecondsAgo: UInt64?
    /// Whether the state survives restarts (a --data-dir is set).
    public var durable: Bool
    /// The newest change-log position (see `watch`).
    public var seq: UInt64
    /// Per live replicating peer, how this node's state compared with its at their last
    /// anti-entropy exchange (by state fingerprint).
    public var peers: [String: PeerSyncStatus]
    /// The catch-up under way, if this node is behind by more than one message.
    public var catchUp: CatchUpStatus?

    public init(
        values: Int, tombstones: Int, digest: [String: String], lastSyncedMillisecondsAgo: UInt64?, durable: Bool, seq: UInt64,
        peers: [String: PeerSyncStatus], catchUp: CatchUpStatus? = nil
    ) {
        self.peers = peers
        self.catchUp = catchUp
        self.values = values
        self.tombstones = tombstones
        self.digest = digest
        self.lastSyncedMillisecondsAgo = lastSyncedMillisecondsAgo
        self.durable = durable
        self.seq = seq
    }
}

/// How this node's state compared with a peer's at their last anti-entropy exchange.
public struct PeerSyncStatus: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable, Hashable {
        /// The state fingerprints matched: both held the same writes.
        case inSync = "in_sync"
        /// The peer lacked `versions` of this node's writes.
        case behind
        /// The fingerprints differed but the peer lacked none of ours: this node lacked some of its.
        case ahead
        /// No exchange with the peer's current process since this node started.
        case neverSynced = "never_synced"
    }

    public var state: State
    /// Versions the peer lacked (`behind`).
    public var versions: Int?
    /// Milliseconds since the exchange; nil when never synced.
    public var millisecondsAgo: UInt64?

    public init(state: State, versions: Int? = nil, millisecondsAgo: UInt64? = nil) {
        self.state = state
        self.versions = versions
        self.millisecondsAgo = millisecondsAgo
    }

    /// E.g. "in sync (0.4 s ago)", "behind by 12 versions (0.8 s ago)", "never synced".
    public var summary: String {
        let ago = millisecondsAgo.map { " (\($0 / 1000).\($0 % 1000 / 100) s ago)" } ?? ""
        switch state {
        case .inSync: return "in sync" + ago
        case .behind: return "behind by \(versions ?? 0) version\(versions == 1 ? "" : "s")" + ago
        case .ahead: return "ahead: this node lacked some of its writes" + ago
        case .neverSynced: return "never synced"
        }
    }
}

/// A catch-up under way: how far behind this node is and how far it got.
public struct CatchUpStatus: Codable, Sendable, Hashable {
    /// The peer sending the pages (host:port).
    public var peer: String
    public var pages: Int
    public var receivedEntries: UInt64
    public var receivedBytes: UInt64
    /// How far behind this node still is, by the sender's estimate.
    public var remainingEntries: UInt64
    public var remainingBytes: UInt64
    /// receivedEntries / (received + remaining), 0...1.
    public var progress: Double
    public var elapsedSeconds: Double

    public init(
        peer: String, pages: Int, receivedEntries: UInt64, receivedBytes: UInt64, remainingEntries: UInt64,
        remainingBytes: UInt64, elapsedSeconds: Double
    ) {
        self.peer = peer
        self.pages = pages
        self.receivedEntries = receivedEntries
        self.receivedBytes = receivedBytes
        self.remainingEntries = remainingEntries
        self.remainingBytes = remainingBytes
        let total = receivedEntries + remainingEntries
        self.progress = total == 0 ? 1 : Double(receivedEntries) / Double(total)
        self.elapsedSeconds = elapsedSeconds
    }
}
