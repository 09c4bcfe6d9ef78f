/// Network coordinates on the probes, as Serf's ping delegate: every ack carries this node's
/// coordinate, and the ack to each direct probe refines it with the measured round trip.
/// - SeeAlso: `NetworkCoordinates`; Serf's `serf/ping_delegate.go` and memberlist's
///   `probeNode` (only acks to the direct ping, before the probe timeout, are measured).
extension Membership {
    /// Turns coordinates on: acks carry `coordinates`' and acks received update it. Before
    /// `start`; a node without coordinates sends empty acks, as a memberlist node without a
    /// ping delegate (Go memberlist ignores ack payloads either way).
    public mutating func enableCoordinates(_ coordinates: NetworkCoordinates) {
        self.coordinates = coordinates
    }

    /// The coordinate of `name`: ours, or the one its last ack carried; nil when unknown.
    public func coordinate(of name: String) -> NetworkCoordinate? {
        guard let coordinates else { return nil }
        return name == localName ? coordinates.local : coordinates.peers[name]
    }

    /// The estimated round trip between two members from their coordinates; nil when either
    /// coordinate is unknown or their dimensionalities differ.
    public func estimatedRoundTrip(from first: String, to second: String) -> Duration? {
        guard let a = coordinate(of: first), let b = coordinate(of: second), a.isCompatible(with: b) else { return nil }
        return a.distance(to: b)
    }

    /// Feeds the ack to the current direct probe to the coordinates. Acks after the probe
    /// timeout are not measured: they may be relayed answers to the indirect probes, whose
    /// round trip is not this link's (memberlist measures only the direct ack).
    mutating func observeCoordinate(
        in ack: Ack, of probe: ProbeInFlight, now: Instant, into out: inout [MembershipDirective]
    ) {
        let roundTrip = now - probe.sentAt
        guard coordinates != nil, !ack.payload.isEmpty, !probe.timedOut else { return }
        do throws(CoordinateRejection) {
            try coordinates?.observe(payload: ack.payload, from: probe.target, roundTrip: roundTrip)
        } catch {
            out.append(.coordinateRejected(node: probe.target, error))
        }
    }
}
