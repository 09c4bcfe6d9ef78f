/// A hybrid logical clock timestamp: milliseconds of physical time in the high 48 bits, a logical
/// counter in the low 16. Ordered as a plain integer.
/// - SeeAlso: Kulkarni et al., "Logical Physical Clocks" (2014).
public struct HybridTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(milliseconds: UInt64, logical: UInt16) {
        rawValue = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | UInt64(logical)
    }

    public static let zero = HybridTimestamp(rawValue: 0)

    /// Every node refuses entries stamped at or past this (2^47 ms, in the year 6429): a rule no
    /// clock enters, so all nodes refuse the same ones, and a clock passing a stamp still has
    /// 2^47 ms of room to count in.
    public static let latestAccepted = HybridTimestamp(milliseconds: 1 << 47, logical: 0)

    public var milliseconds: UInt64 { rawValue >> 16 }
    public var logical: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "\(milliseconds).\(logical)" }
}

/// Issues hybrid timestamps that always increase, whatever the wall clock does.
///
/// The wall clock is an input (milliseconds since the epoch), never read here. A remote
/// timestamp moves the clock forward only as far as `bound` past the local wall clock (the
/// swarm's maximum clock offset): one node with a wild clock cannot drag every clock into the
/// future by being heard. What must pass a timestamp whatever it is (a local write of a key
/// replaces the value held, so it is stamped above it) uses `pass`.
public struct HybridClock: Sendable {
    public private(set) var last: HybridTimestamp = .zero

    public init() {}

    /// A timestamp for a local event: greater than every timestamp issued or passed before, and
    /// at least the wall clock. A wall clock that jumps backwards only stops the physical part;
    /// the logical part keeps counting.
    public mutating func tick(wallMilliseconds: UInt64) -> HybridTimestamp {
        let wall = HybridTimestamp(milliseconds: wallMilliseconds, logical: 0)
        last = wall > last ? wall : HybridTimestamp(rawValue: last.rawValue &+ 1)
        return last
    }

    /// Takes a remote timestamp into account so later local timestamps exceed it, as far as
    /// `boundMilliseconds` past the wall clock (beyond that, only up to there).
    public mutating func observe(_ remote: HybridTimestamp, wallMilliseconds: UInt64, boundMilliseconds: UInt64) {
        let limit = HybridTimestamp(milliseconds: wallMilliseconds &+ boundMilliseconds, logical: 0)
        pass(min(remote, limit))
    }

    /// Makes later local timestamps exceed `stamp`, however far ahead it is.
    public mutating func pass(_ stamp: HybridTimestamp) {
        if stamp > last { last = stamp }
    }
}
