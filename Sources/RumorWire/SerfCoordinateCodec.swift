import RumorCore

/// Serf's ack payload (`serf/ping_delegate.go`): the version byte `PingVersion` (1), then the
/// coordinate as go-msgpack encodes Serf's `coordinate.Coordinate`: a map with the keys in the
/// order go-msgpack writes them (`Adjustment`, `Error`, `Height`, `Vec`), every number a
/// float64. Read liberally: keys in any order, unknown keys skipped, any float or integer width.
public struct SerfCoordinateCodec: CoordinateCodec {
    /// Serf's `PingVersion`.
    public static let version: UInt8 = 1
    /// Dimensions beyond this are refused before anything is allocated (Serf uses 8).
    public static let maximumDimensions = 64

    public init() {}

    public func encode(_ coordinate: NetworkCoordinate) -> [UInt8] {
        var writer = MessagePackWriter(reservingCapacity: 48 + 9 * coordinate.vector.count)
        writer.writeByte(Self.version)
        writer.writeMapHeader(4)
        writer.writeKey("Adjustment"); writer.writeDouble(coordinate.adjustment)
        writer.writeKey("Error"); writer.writeDouble(coordinate.error)
        writer.writeKey("Height"); writer.writeDouble(coordinate.height)
        writer.writeKey("Vec")
        writer.writeArrayHeader(coordinate.vector.count)
        for component in coordinate.vector { writer.writeDouble(component) }
        return writer.bytes
    }

    public func decode(_ payload: [UInt8]) throws(CoordinateRejection) -> NetworkCoordinate {
        guard let version = payload.first else { throw CoordinateRejection(.undecodable, "empty payload") }
        guard version == Self.version else {
            throw CoordinateRejection(.unsupportedVersion, "ping version \(version), expected \(Self.version)")
        }
        var reader = MessagePackReader(payload, offset: 1)
        var coordinate = NetworkCoordinate(vector: [], error: 0, adjustment: 0, height: 0)
        do throws(WireError) {
            try reader.readMap { reader, key throws(WireError) in
                switch key {
                case "Adjustment": coordinate.adjustment = try reader.readDouble()
                case "Error": coordinate.error = try reader.readDouble()
                case "Height": coordinate.height = try reader.readDouble()
                case "Vec":
                    if try reader.readNil() { coordinate.vector = []; return true }
                    let count = try reader.readArrayHeader()
                    guard count <= Self.maximumDimensions else {
                        throw WireError(.tooLarge, "\(count) dimensions; at most \(Self.maximumDimensions)")
                    }
                    coordinate.vector = []
                    coordinate.vector.reserveCapacity(count)
                    for _ in 0..<count { coordinate.vector.append(try reader.readDouble()) }
                default: return false
                }
                return true
            }
        } catch {
            throw CoordinateRejection(.undecodable, error.description)
        }
        return coordinate
    }
}

extension MessagePackWriter {
    /// A float64 (go-msgpack writes every `float64` so, whatever its value).
    mutating func writeDouble(_ value: Double) {
        writeByte(0xcb)
        writeBigEndian(value.bitPattern)
    }
}

extension MessagePackReader {
    /// A float64, a float32 or an integer, as a `Double`.
    mutating func readDouble() throws(WireError) -> Double {
        guard remaining > 0 else { throw WireError(.truncated, "expected a number") }
        switch bytes[offset] {
        case 0xcb:
            _ = try readByte()
            return Double(bitPattern: try readBigEndian(UInt64.self))
        case 0xca:
            _ = try readByte()
            return Double(Float(bitPattern: try readBigEndian(UInt32.self)))
        default:
            return Double(try readInteger())
        }
    }
}
