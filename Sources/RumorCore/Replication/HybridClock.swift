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

    public var milliseconds: UInt64 { rawValue >> 16 }
    public var logical: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "\(milliseconds).\(logical)" }
}

/// Issues hybrid timestamps that always increase, whatever the wall clock does.
///
/// The wall clock is an input (milliseconds since the epoch), never read here.
public struct HybridClock: Sendable {
    public private(set) var last: HybridTimestamp = .zero
    /// Remote timestamps further ahead of our wall clock than this are refused, so one node with
    /// a wild clock cannot drag every clock into the future. Default 60 s.
    public var maximumDriftMilliseconds: UInt64

    public init(maximumDriftMilliseconds: UInt64 = 60_000) {
        self.maximumDriftMilliseconds = maximumDriftMilliseconds
    }

    /// A timestamp for a local event: greater than every timestamp issued or observed before, and
    /// at least the wall clock. A wall clock that jumps backwards only stops the physical part;
    /// the logical part keeps counting.
    public mutating func tick(wallMilliseconds: UInt64) -> HybridTimestamp {
        let wall = HybridTimestamp(milliseconds: wallMilliseconds, logical: 0)
        last = wall > last ? wall : HybridTimestamp(rawValue: last.rawValue &+ 1)
        return last
    }

    /// Takes a remote timestamp into account so later local timestamps exceed it.
    /// - Throws: `ClockDriftError` (state unchanged) when `remote` is more than
    ///   `maximumDriftMilliseconds` ahead of `wallMilliseconds`.
    public mutating func observe(_ remote: HybridTimestamp, wallMilliseconds: UInt64) throws(ClockDriftError) {
        guard remote.milliseconds <= wallMilliseconds &+ maximumDriftMilliseconds else {
            throw ClockDriftError(remote: remote, wallMilliseconds: wallMilliseconds)
        }
        if remote > last { last = remote }
    }
}

/// A remote timestamp too far in the future to trust.
public struct ClockDriftError: Error, Hashable, Sendable, CustomStringConvertible {
    public var remote: HybridTimestamp
    public var wallMilliseconds: UInt64

    public var description: String {
        "remote timestamp \(remote) is \(remote.milliseconds &- wallMilliseconds) ms ahead of the local clock"
    }
}
