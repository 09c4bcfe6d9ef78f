/// Tunables of the Vivaldi client. Defaults equal Serf's `coordinate.DefaultConfig()`: a swarm
/// of Rumor and Serf nodes must use the same ones, or their coordinates drift apart.
public struct VivaldiSettings: Sendable, Hashable {
    /// Dimensions of the Euclidean part. Coordinates of another dimensionality are refused, so
    /// every node of a swarm must agree. Default 8 (Serf's; Dabek et al. found 2–3 plus a
    /// height enough, more dimensions cost little and fit odd topologies better).
    public var dimensionality: Int = 8
    /// The largest error a coordinate may have, and the error of a fresh one. Default 1.5.
    public var errorMaximum: Double = 1.5
    /// How fast the error estimate follows new samples (Vivaldi's `c_e`). Default 0.25.
    public var errorGain: Double = 0.25
    /// How far one sample moves the coordinate (Vivaldi's `c_c`). Default 0.25.
    public var movementGain: Double = 0.25
    /// How many recent measured-minus-estimated samples the adjustment averages; 0 turns the
    /// adjustment off. Default 20.
    public var adjustmentWindow: Int = 20
    /// The smallest height (seconds). Default 10 µs.
    public var heightMinimum: Double = 10.0e-6
    /// Round trips per peer of which the median is used, so one late ack moves nothing.
    /// Default 3.
    public var latencyFilterSize: Int = 3
    /// Gravity toward the origin, so the whole swarm's coordinates do not drift away together:
    /// a coordinate `d` seconds out is pulled back by `(d / gravityRho)²`. Default 150.
    public var gravityRho: Double = 150.0
    /// Round trips beyond this are refused as measurements. Default 10 s (Serf's).
    public var roundTripMaximum: Duration = .seconds(10)

    public init() {}

    /// Reports the first value that cannot work.
    public func validate() throws(SettingsError) {
        guard dimensionality > 0 else { throw SettingsError(setting: "dimensionality", problem: "must be greater than zero") }
        guard latencyFilterSize > 0 else {
            throw SettingsError(setting: "latencyFilterSize", problem: "must be greater than zero")
        }
        guard adjustmentWindow >= 0 else { throw SettingsError(setting: "adjustmentWindow", problem: "must not be negative") }
        for (value, name) in [(errorMaximum, "errorMaximum"), (gravityRho, "gravityRho"), (heightMinimum, "heightMinimum")] {
            guard value.isFinite, value > 0 else { throw SettingsError(setting: name, problem: "must be a positive number") }
        }
        for (value, name) in [(errorGain, "errorGain"), (movementGain, "movementGain")] {
            guard value.isFinite, value > 0, value <= 1 else {
                throw SettingsError(setting: name, problem: "must be in (0, 1]")
            }
        }
    }
}
