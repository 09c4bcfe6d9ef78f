#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in Vivaldi's latency space: a Euclidean vector plus a height (the access link every
/// path from the node crosses), with the node's confidence in it and an offset learned from
/// how far the estimates have been off. All lengths are in seconds, as Serf's `Coordinate`,
/// so a coordinate read off the wire means the same here and in Serf.
/// - SeeAlso: Dabek et al., "Vivaldi: A Decentralized Network Coordinate System" (SIGCOMM
///   2004), §5.3 "Height vectors"; Serf's `coordinate` package for the adjustment term.
public struct NetworkCoordinate: Sendable, Hashable {
    /// The position in Euclidean space (seconds), `VivaldiSettings.dimensionality` long.
    public var vector: [Double]
    /// How wrong the node believes the coordinate is: a relative error, at most
    /// `VivaldiSettings.errorMaximum` (1.5 when nothing has been measured yet).
    public var error: Double
    /// Added to every distance from this node (seconds): half the mean of recent
    /// measured-minus-estimated round trips, which corrects what the space cannot represent.
    public var adjustment: Double
    /// The length of the node's own link (seconds), never below `VivaldiSettings.heightMinimum`.
    public var height: Double

    public init(vector: [Double], error: Double, adjustment: Double, height: Double) {
        self.vector = vector
        self.error = error
        self.adjustment = adjustment
        self.height = height
    }

    /// A node's coordinate before any measurement: at the origin, with the largest error.
    public init(settings: VivaldiSettings) {
        self.init(
            vector: Array(repeating: 0, count: settings.dimensionality), error: settings.errorMaximum, adjustment: 0,
            height: settings.heightMinimum)
    }

    /// Whether every component is a finite number (a NaN or an infinity from a peer would
    /// poison every coordinate it touches).
    public var isFinite: Bool {
        vector.allSatisfy(\.isFinite) && error.isFinite && adjustment.isFinite && height.isFinite
    }

    /// Whether both coordinates live in spaces of the same dimensionality.
    public func isCompatible(with other: NetworkCoordinate) -> Bool {
        vector.count == other.vector.count
    }

    /// The estimated round trip to `other`, truncated to whole nanoseconds as Serf's
    /// `DistanceTo` (the algorithm reads it back in seconds, so the truncation is part of it).
    /// The adjustments are applied unless that makes the estimate negative.
    /// - Precondition: `isCompatible(with: other)`.
    public func distance(to other: NetworkCoordinate) -> Duration {
        precondition(isCompatible(with: other), "coordinates of different dimensionality")
        let raw = rawDistance(to: other)
        let adjusted = raw + adjustment + other.adjustment
        return Self.duration(seconds: adjusted > 0 ? adjusted : raw)
    }

    /// The distance in the space plus both heights, without adjustments (seconds).
    func rawDistance(to other: NetworkCoordinate) -> Double {
        Self.magnitude(Self.difference(vector, other.vector)) + height + other.height
    }

    /// This coordinate moved by `force` seconds along the line from `other` (away from it when
    /// positive), its height scaled in proportion; coincident points move in a random direction.
    /// - SeeAlso: Vivaldi §5.3: with heights, the force also pushes the height up or down.
    func applying(
        force: Double, from other: NetworkCoordinate, settings: VivaldiSettings, random: inout some RandomNumberGenerator
    ) -> NetworkCoordinate {
        precondition(isCompatible(with: other), "coordinates of different dimensionality")
        var moved = self
        let (unit, length) = Self.unitVector(from: other.vector, to: vector, random: &random)
        for index in moved.vector.indices { moved.vector[index] += unit[index] * force }
        if length > Self.zeroThreshold {
            moved.height = max((moved.height + other.height) * force / length + moved.height, settings.heightMinimum)
        }
        return moved
    }

    /// Lengths below this are zero (seconds).
    static let zeroThreshold = 1.0e-6

    /// Seconds as Go's `time.Duration(seconds * 1e9)`: truncated toward zero, clamped.
    static func duration(seconds: Double) -> Duration {
        let nanoseconds = seconds * 1.0e9
        guard nanoseconds.isFinite else { return nanoseconds < 0 ? .nanoseconds(Int64.min) : .nanoseconds(Int64.max) }
        if nanoseconds >= 9.2e18 { return .nanoseconds(Int64.max) }
        if nanoseconds <= -9.2e18 { return .nanoseconds(Int64.min) }
        return .nanoseconds(Int64(nanoseconds))
    }

    /// A duration in seconds, computed as Go's `Duration.Seconds()` (whole seconds plus the
    /// nanoseconds left over), so the algorithm's arithmetic matches Serf's bit for bit.
    static func seconds(_ duration: Duration) -> Double {
        let nanoseconds = duration.nanosecondsClamped
        let whole = nanoseconds / 1_000_000_000
        let rest = nanoseconds % 1_000_000_000
        return Double(whole) + Double(rest) / 1.0e9
    }

    static func difference(_ left: [Double], _ right: [Double]) -> [Double] {
        zip(left, right).map { $0 - $1 }
    }

    static func magnitude(_ vector: [Double]) -> Double {
        var sum = 0.0
        for component in vector { sum += component * component }
        return sqrt(sum)
    }

    /// The unit vector pointing from `origin` to `point` and the distance between them; when
    /// they coincide, a random direction (or the first axis) and a distance of 0. Scaled by
    /// the reciprocal of the length, as Serf does (a division would differ in the last bit).
    static func unitVector(
        from origin: [Double], to point: [Double], random: inout some RandomNumberGenerator
    ) -> (unit: [Double], length: Double) {
        let offset = difference(point, origin)
        let length = magnitude(offset)
        if length > zeroThreshold { return (offset.map { $0 * (1.0 / length) }, length) }
        let direction = offset.map { _ in Double.random(in: 0..<1, using: &random) - 0.5 }
        let directionLength = magnitude(direction)
        if directionLength > zeroThreshold { return (direction.map { $0 * (1.0 / directionLength) }, 0) }
        var axis = Array(repeating: 0.0, count: offset.count)
        if !axis.isEmpty { axis[0] = 1 }
        return (axis, 0)
    }
}
