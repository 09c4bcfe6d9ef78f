/// The seam between the coordinates and their bytes: how a coordinate rides in a probe's ack
/// payload. The core never reads bytes itself; the wire module supplies Serf's encoding
/// (`SerfCoordinateCodec`: a version byte, then the msgpack-encoded coordinate).
public protocol CoordinateCodec: Sendable {
    /// The ack payload announcing `coordinate`.
    func encode(_ coordinate: NetworkCoordinate) -> [UInt8]
    /// The coordinate in an ack payload.
    /// - Throws: `CoordinateRejection` (`.undecodable` or `.unsupportedVersion`) when the
    ///   payload holds no coordinate this codec reads.
    func decode(_ payload: [UInt8]) throws(CoordinateRejection) -> NetworkCoordinate
}

/// Why a peer's coordinate (or a round trip to it) was not used. Nothing changed: the sample
/// is dropped, counted and logged.
public struct CoordinateRejection: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        /// The ack payload is not a coordinate (bytes this codec does not read).
        case undecodable = "undecodable"
        /// The payload's version byte is not one this codec knows.
        case unsupportedVersion = "unsupported_version"
        /// The coordinate has another number of dimensions than ours.
        case wrongDimensionality = "wrong_dimensionality"
        /// A component is NaN or infinite.
        case notFinite = "not_finite"
        /// The round trip is negative or longer than `VivaldiSettings.roundTripMaximum`.
        case roundTripOutOfRange = "round_trip_out_of_range"
    }

    public var code: Code
    /// What exactly was wrong, for logs.
    public var detail: String

    public init(_ code: Code, _ detail: String = "") {
        self.code = code
        self.detail = detail
    }

    public var description: String { detail.isEmpty ? code.rawValue : "\(code.rawValue): \(detail)" }
}
