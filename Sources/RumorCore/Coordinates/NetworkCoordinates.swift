/// What a node knows of network coordinates: its own Vivaldi client and the coordinate each
/// peer last sent in an ack, as Serf's ping delegate keeps them (`serf/ping_delegate.go`).
///
/// Membership owns it: acks to others' probes carry `ackPayload()`, and each ack to one of our
/// own direct probes is `observe`d with its round trip. Pure, like the rest of the core.
public struct NetworkCoordinates: Sendable {
    public let codec: any CoordinateCodec
    public private(set) var client: VivaldiClient
    /// Each peer's coordinate as its last usable ack carried it, by member name.
    public private(set) var peers: [String: NetworkCoordinate] = [:]
    /// Acks whose coordinate (or round trip) was refused.
    public private(set) var rejected = 0
    /// Updates applied.
    public private(set) var updates = 0
    /// Picks a direction between coincident coordinates (Vivaldi's random push apart); its own
    /// stream, so coordinates do not shift membership's random choices.
    private var random: SeededRandom

    /// - Parameter seed: seeds the generator that separates coincident coordinates.
    public init(settings: VivaldiSettings = VivaldiSettings(), codec: any CoordinateCodec, seed: UInt64) {
        self.codec = codec
        self.client = VivaldiClient(settings: settings)
        self.random = SeededRandom(seed: seed)
    }

    /// This node's coordinate.
    public var local: NetworkCoordinate { client.coordinate }

    /// The ack payload announcing this node's coordinate.
    public func ackPayload() -> [UInt8] { codec.encode(client.coordinate) }

    /// Refines this node's coordinate from an ack of `peer` to a direct probe, `roundTrip` after
    /// the ping, and remembers `peer`'s coordinate. An empty payload (a Go memberlist node, or
    /// a node with coordinates off) is no sample and no error.
    /// - Throws: `CoordinateRejection` when the payload holds no usable coordinate or the round
    ///   trip is out of range; nothing changed except the `rejected` count.
    public mutating func observe(payload: [UInt8], from peer: String, roundTrip: Duration) throws(CoordinateRejection) {
        guard !payload.isEmpty else { return }
        do throws(CoordinateRejection) {
            let remote = try codec.decode(payload)
            try client.update(peer: peer, remote: remote, roundTrip: roundTrip, random: &random)
            peers[peer] = remote
            updates += 1
        } catch {
            rejected += 1
            throw error
        }
    }

    /// Forgets `peer`'s coordinate and round trips (it was reaped).
    public mutating func forget(peer: String) {
        peers[peer] = nil
        client.forget(peer: peer)
    }

    /// Restores a coordinate saved earlier (ignored when it is not usable).
    public mutating func restore(_ coordinate: NetworkCoordinate) {
        try? client.setCoordinate(coordinate)
    }
}
