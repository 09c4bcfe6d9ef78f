/// Who wrote a value and when: the winner for a key is the greatest version, ordered by hybrid
/// timestamp, then by writer name, so every node picks the same winner.
public struct Version: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var timestamp: HybridTimestamp
    public var origin: String

    public init(timestamp: HybridTimestamp, origin: String) {
        self.timestamp = timestamp
        self.origin = origin
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.timestamp, lhs.origin) < (rhs.timestamp, rhs.origin)
    }

    public var description: String { "\(timestamp)@\(origin)" }
}

/// One key's latest write: a value, or a tombstone recording a delete.
public struct Entry: Hashable, Sendable {
    public var key: String
    /// nil for a tombstone, or for a value kept on disk only (`storedValueBytes`).
    public var value: [UInt8]?
    /// The size of the value when a durable node keeps it on disk only (memory holds what merge
    /// and digests need: key, version, expiry); the driver loads it before the entry leaves the
    /// node. nil when the value (or tombstone) is in `value`.
    public var storedValueBytes: Int?
    public var version: Version
    /// When the value expires (milliseconds since the epoch), if it has a time to live.
    public var expiresAtMilliseconds: UInt64?
    /// True when the value lives only as long as its writer (`version.origin`) stays in the swarm.
    public var ephemeral: Bool

    public init(key: String, value: [UInt8]?, version: Version, expiresAtMilliseconds: UInt64? = nil, ephemeral: Bool = false) {
        self.key = key
        self.value = value
        self.version = version
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.ephemeral = ephemeral
    }

    public var isTombstone: Bool { value == nil && storedValueBytes == nil }

    /// The value's size, in memory or on disk (0 for a tombstone).
    public var valueBytes: Int { value?.count ?? storedValueBytes ?? 0 }

    /// Whether the value must be loaded from disk before the entry is sent or shown.
    public var isValueOnDisk: Bool { storedValueBytes != nil }
}
