/// One process of a node as a writer: the node's name and the generation of the process (a
/// hybrid timestamp taken when it started, so each start of a node is a new writer).
///
/// Anti-entropy summarizes what a store holds per writer (`KeyValueStore.digest`): "every write
/// of this writer up to T". Only the process that made the writes can vouch for that chain, and a
/// restarted process does not know what its predecessor wrote; so each start begins a chain of
/// its own, and the predecessor's chain stays whole and keeps being repaired from whoever holds
/// it. Generation 0 is a writer from state saved before generations existed.
/// - SeeAlso: chitchat's and Cassandra's generation of a node.
public struct Writer: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var name: String
    public var generation: UInt64

    public init(name: String, generation: UInt64) {
        self.name = name
        self.generation = generation
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.name, lhs.generation) < (rhs.name, rhs.generation)
    }

    public var description: String { "\(name)#\(HybridTimestamp(rawValue: generation))" }
}

/// Per writer, a timestamp up to which a store holds every write of that writer (or a newer
/// write of the same key).
public typealias Digest = [Writer: HybridTimestamp]

/// Per writer, timestamps of writes held beyond the digest.
public typealias HeldWrites = [Writer: [HybridTimestamp]]

/// Who wrote a value and when: the winner for a key is the greatest version, ordered by hybrid
/// timestamp, then by writer (name, then generation), so every node picks the same winner.
public struct Version: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var timestamp: HybridTimestamp
    public var writer: Writer

    public init(timestamp: HybridTimestamp, writer: Writer) {
        self.timestamp = timestamp
        self.writer = writer
    }

    /// A version by generation `generation` of the node named `origin`.
    public init(timestamp: HybridTimestamp, origin: String, generation: UInt64 = 0) {
        self.init(timestamp: timestamp, writer: Writer(name: origin, generation: generation))
    }

    /// The writing node's name.
    public var origin: String { writer.name }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.timestamp, lhs.writer) < (rhs.timestamp, rhs.writer)
    }

    public var description: String { "\(timestamp)@\(writer)" }
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
    /// True when the value lives only as long as the process that wrote it (`version.writer`)
    /// stays in the swarm.
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
