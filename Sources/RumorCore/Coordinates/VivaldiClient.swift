/// One node's Vivaldi client: its coordinate, refined by every measured round trip to a peer
/// whose coordinate is known. The same algorithm and arithmetic as Serf's `coordinate.Client`,
/// so Rumor and Serf nodes in one swarm place each other consistently.
///
/// Pure: no clock (round trips are inputs) and no global randomness (the generator that picks
/// a direction between coincident coordinates is passed in).
/// - SeeAlso: Dabek et al., "Vivaldi" (SIGCOMM 2004), §3 (the spring relaxation), §4
///   (adaptive timestep from the error estimates), §5.3 (height vectors); Serf's
///   `coordinate/client.go` for the latency filter, the adjustment and gravity.
public struct VivaldiClient: Sendable {
    public let settings: VivaldiSettings
    /// The current coordinate.
    public private(set) var coordinate: NetworkCoordinate
    /// How often an update produced a coordinate that was not finite and was started afresh.
    public private(set) var resets = 0
    private let origin: NetworkCoordinate
    private var adjustmentSamples: [Double]
    private var adjustmentIndex = 0
    /// The last `latencyFilterSize` round trips to each peer (seconds), oldest first.
    private var latencySamples: [String: [Double]] = [:]

    /// A client at the origin with the largest error.
    /// - Precondition: `settings.validate()` does not throw.
    public init(settings: VivaldiSettings = VivaldiSettings()) {
        self.settings = settings
        self.coordinate = NetworkCoordinate(settings: settings)
        self.origin = NetworkCoordinate(settings: settings)
        self.adjustmentSamples = Array(repeating: 0, count: settings.adjustmentWindow)
    }

    /// Replaces the coordinate (a restart restoring a saved one; tests).
    /// - Throws: `CoordinateRejection` when `coordinate` is not finite or has another
    ///   dimensionality; the client is then unchanged.
    public mutating func setCoordinate(_ coordinate: NetworkCoordinate) throws(CoordinateRejection) {
        try check(coordinate)
        self.coordinate = coordinate
    }

    /// Refines the coordinate from one round trip to `peer`, whose coordinate is `remote`.
    /// - Returns: the new coordinate.
    /// - Throws: `CoordinateRejection` when `remote` is not finite or of another dimensionality,
    ///   or `roundTrip` is negative or above `settings.roundTripMaximum`; the client is then
    ///   unchanged (the sample is not even filtered).
    @discardableResult
    public mutating func update(
        peer: String, remote: NetworkCoordinate, roundTrip: Duration, random: inout some RandomNumberGenerator
    ) throws(CoordinateRejection) -> NetworkCoordinate {
        try check(remote)
        guard roundTrip >= .zero, roundTrip <= settings.roundTripMaximum else {
            throw CoordinateRejection(.roundTripOutOfRange, "round trip \(roundTrip) is not within 0…\(settings.roundTripMaximum)")
        }
        let filtered = filter(peer: peer, seconds: NetworkCoordinate.seconds(roundTrip))
        updateVivaldi(remote: remote, roundTrip: filtered, random: &random)
        updateAdjustment(remote: remote, roundTrip: filtered)
        updateGravity(random: &random)
        if !coordinate.isFinite {
            resets += 1
            coordinate = NetworkCoordinate(settings: settings)
        }
        return coordinate
    }

    /// Drops the round trips kept for `peer` (it was reaped).
    public mutating func forget(peer: String) {
        latencySamples[peer] = nil
    }

    /// The estimated round trip from this node to a node at `remote`.
    /// - Precondition: `remote` has this client's dimensionality.
    public func distance(to remote: NetworkCoordinate) -> Duration {
        coordinate.distance(to: remote)
    }

    private func check(_ remote: NetworkCoordinate) throws(CoordinateRejection) {
        guard coordinate.isCompatible(with: remote) else {
            throw CoordinateRejection(
                .wrongDimensionality, "\(remote.vector.count) dimensions where \(coordinate.vector.count) are expected")
        }
        guard remote.isFinite else { throw CoordinateRejection(.notFinite, "a component is NaN or infinite") }
    }

    /// The median of the last few round trips to `peer`, this one included.
    private mutating func filter(peer: String, seconds: Double) -> Double {
        var samples = latencySamples[peer] ?? []
        samples.append(seconds)
        if samples.count > settings.latencyFilterSize { samples.removeFirst() }
        latencySamples[peer] = samples
        let sorted = samples.sorted()
        return sorted[sorted.count / 2]
    }

    /// Vivaldi proper: move along the spring between the two nodes by a step weighted by how
    /// sure each side is, and update the error estimate (Vivaldi §4, Figure 3).
    private mutating func updateVivaldi(remote: NetworkCoordinate, roundTrip: Double, random: inout some RandomNumberGenerator) {
        let zero = NetworkCoordinate.zeroThreshold
        let estimate = NetworkCoordinate.seconds(coordinate.distance(to: remote))
        let measured = max(roundTrip, zero)
        let wrongness = abs(estimate - measured) / measured
        let weight = coordinate.error / max(coordinate.error + remote.error, zero)
        let errorStep = settings.errorGain * weight
        coordinate.error = min(errorStep * wrongness + coordinate.error * (1.0 - errorStep), settings.errorMaximum)
        let force = settings.movementGain * weight * (measured - estimate)
        coordinate = coordinate.applying(force: force, from: remote, settings: settings, random: &random)
    }

    /// Serf's adjustment: half the mean of the last `adjustmentWindow` errors of the raw
    /// distance, which absorbs what the space cannot embed (non-Euclidean paths).
    private mutating func updateAdjustment(remote: NetworkCoordinate, roundTrip: Double) {
        guard settings.adjustmentWindow > 0 else { return }
        adjustmentSamples[adjustmentIndex] = roundTrip - coordinate.rawDistance(to: remote)
        adjustmentIndex = (adjustmentIndex + 1) % settings.adjustmentWindow
        var sum = 0.0
        for sample in adjustmentSamples { sum += sample }
        coordinate.adjustment = sum / (2.0 * Double(settings.adjustmentWindow))
    }

    /// Serf's gravity: a pull toward the origin growing with the square of the distance.
    private mutating func updateGravity(random: inout some RandomNumberGenerator) {
        let distance = NetworkCoordinate.seconds(origin.distance(to: coordinate))
        let ratio = distance / settings.gravityRho
        coordinate = coordinate.applying(force: -(ratio * ratio), from: origin, settings: settings, random: &random)
    }
}
