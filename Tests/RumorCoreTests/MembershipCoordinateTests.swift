import Testing
import RumorSimulation

@testable import RumorCore

/// Coordinates on the probes, as Serf's ping delegate: acks carry ours, acks to our direct
/// probes refine it and teach us the peer's.
struct MembershipCoordinateTests {
    /// Bytes without msgpack: a marker, the dimension count, then each number's bit pattern.
    struct PlainCodec: CoordinateCodec {
        func encode(_ coordinate: NetworkCoordinate) -> [UInt8] {
            let numbers = [coordinate.error, coordinate.adjustment, coordinate.height] + coordinate.vector
            return [0xc0, UInt8(coordinate.vector.count)] + numbers.flatMap { number in
                (0..<8).map { UInt8(truncatingIfNeeded: number.bitPattern >> (8 * $0)) }
            }
        }

        func decode(_ payload: [UInt8]) throws(CoordinateRejection) -> NetworkCoordinate {
            guard payload.count >= 2, payload[0] == 0xc0, payload.count == 2 + 8 * (3 + Int(payload[1])) else {
                throw CoordinateRejection(.undecodable, "not a test coordinate")
            }
            let numbers = stride(from: 2, to: payload.count, by: 8).map { start in
                Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(payload[start + $1]) << (8 * UInt64($1)) })
            }
            return NetworkCoordinate(vector: Array(numbers[3...]), error: numbers[0], adjustment: numbers[1], height: numbers[2])
        }
    }

    static func machine(others: Int) -> Membership {
        var machine = MembershipRuleTests.machine(others: others)
        machine.enableCoordinates(NetworkCoordinates(codec: PlainCodec(), seed: 9))
        return machine
    }

    static let peerCoordinate = NetworkCoordinate(vector: [0.004, 0, 0, 0, 0, 0, 0, 0], error: 0.3, adjustment: 0, height: 1e-5)

    /// Starts a probe and returns its ping.
    static func probe(_ machine: inout Membership, at seconds: Double) -> Ping {
        let out = machine.timerFired(.probe, now: MembershipRuleTests.at(seconds))
        return MembershipRuleTests.sends(out).flatMap(\.1).compactMap { if case .ping(let ping) = $0 { ping } else { nil } }[0]
    }

    @Test func anAckCarriesOurCoordinate_andEmptyWithoutCoordinates() throws {
        var machine = Self.machine(others: 1)
        let ping = Ping(sequenceNumber: 7, target: "me", source: MembershipRuleTests.peer(2), sourceName: "p2")
        let out = machine.receive(.ping(ping), from: MembershipRuleTests.peer(2), now: .zero)
        let ack = try #require(MembershipRuleTests.sends(out).flatMap(\.1).compactMap { if case .ack(let ack) = $0 { ack } else { nil } }.first)
        #expect(try PlainCodec().decode(ack.payload) == NetworkCoordinate(settings: VivaldiSettings()))

        var plain = MembershipRuleTests.machine(others: 1)
        let plainOut = plain.receive(.ping(ping), from: MembershipRuleTests.peer(2), now: .zero)
        let plainAcks = MembershipRuleTests.sends(plainOut).flatMap(\.1).filter { if case .ack = $0 { true } else { false } }
        #expect(plainAcks == [.ack(Ack(sequenceNumber: 7))])
    }

    @Test func anAckToOurDirectProbe_movesOurCoordinate_andTeachesThePeers() {
        var machine = Self.machine(others: 1)
        let ping = Self.probe(&machine, at: 1)
        let ack = Ack(sequenceNumber: ping.sequenceNumber, payload: PlainCodec().encode(Self.peerCoordinate))
        let out = machine.receive(.ack(ack), from: MembershipRuleTests.peer(2), now: MembershipRuleTests.at(1.02))
        #expect(out.contains(.probeAnswered(roundTrip: .milliseconds(20))))
        #expect(machine.coordinate(of: "p2") == Self.peerCoordinate)
        #expect(machine.coordinate(of: "me") != NetworkCoordinate(settings: VivaldiSettings()))
        #expect(machine.coordinates?.updates == 1)
        #expect(machine.estimatedRoundTrip(from: "me", to: "p2") != nil)
        #expect(machine.estimatedRoundTrip(from: "me", to: "nobody") == nil)
    }

    @Test func anAckAfterTheProbeTimeout_isNotMeasured() {
        var machine = Self.machine(others: 1)
        let ping = Self.probe(&machine, at: 1)
        // Timed out: others are asked, and an ack now may be one they relayed.
        _ = machine.timerFired(.probeTimeout(sequence: ping.sequenceNumber), now: MembershipRuleTests.at(1.5))
        let ack = Ack(sequenceNumber: ping.sequenceNumber, payload: PlainCodec().encode(Self.peerCoordinate))
        _ = machine.receive(.ack(ack), from: MembershipRuleTests.peer(2), now: MembershipRuleTests.at(1.6))
        #expect(machine.coordinate(of: "p2") == nil)
        #expect(machine.coordinates?.updates == 0)
        #expect(machine.roundTrips.network == nil, "no round-trip sample either (Karn's rule)")
    }

    @Test func aBadCoordinate_isRefusedCountedAndReported_andChangesNothing() {
        var machine = Self.machine(others: 1)
        let before = machine.coordinate(of: "me")
        var poisoned = Self.peerCoordinate
        poisoned.vector[0] = .infinity
        for (payload, code) in [
            (PlainCodec().encode(poisoned), CoordinateRejection.Code.notFinite),
            ([0x01, 0x02], .undecodable),
            (PlainCodec().encode(NetworkCoordinate(vector: [1, 2], error: 1, adjustment: 0, height: 1e-5)), .wrongDimensionality),
        ] {
            let ping = Self.probe(&machine, at: Double(machine.coordinates!.rejected + 1))
            let out = machine.receive(
                .ack(Ack(sequenceNumber: ping.sequenceNumber, payload: payload)), from: MembershipRuleTests.peer(2),
                now: MembershipRuleTests.at(Double(machine.coordinates!.rejected + 1) + 0.01))
            let rejected = out.compactMap { if case .coordinateRejected(let node, let rejection) = $0 { (node, rejection.code) } else { nil } }
            #expect(rejected.count == 1 && rejected.first?.0 == "p2" && rejected.first?.1 == code, "\(out)")
        }
        #expect(machine.coordinates?.rejected == 3)
        #expect(machine.coordinate(of: "me") == before)
        #expect(machine.coordinate(of: "p2") == nil)
    }

    @Test func anEmptyAckPayload_isNoSampleAndNoError() {
        var machine = Self.machine(others: 1)
        let ping = Self.probe(&machine, at: 1)
        let out = machine.receive(.ack(Ack(sequenceNumber: ping.sequenceNumber)), from: MembershipRuleTests.peer(2), now: MembershipRuleTests.at(1.01))
        #expect(!out.contains { if case .coordinateRejected = $0 { true } else { false } })
        #expect(machine.coordinates?.updates == 0 && machine.coordinates?.rejected == 0)
    }

    @Test func aReapedMember_isForgotten() {
        var settings = MembershipSettings.lan
        settings.gossipToTheDeadTime = .seconds(1)
        var machine = MembershipRuleTests.machine(others: 2, settings: settings)
        machine.enableCoordinates(NetworkCoordinates(codec: PlainCodec(), seed: 9))
        // Probe until p2 answers (the probe order is shuffled).
        var second = 1.0
        while machine.coordinate(of: "p2") == nil, second < 10 {
            let ping = Self.probe(&machine, at: second)
            if ping.target == "p2" {
                let ack = Ack(sequenceNumber: ping.sequenceNumber, payload: PlainCodec().encode(Self.peerCoordinate))
                _ = machine.receive(.ack(ack), from: MembershipRuleTests.peer(2), now: MembershipRuleTests.at(second + 0.01))
            }
            second += 1
        }
        #expect(machine.coordinate(of: "p2") != nil)
        _ = machine.receive(.dead(Dead(incarnation: 1, node: "p2", from: "p3")), from: MembershipRuleTests.peer(3), now: MembershipRuleTests.at(second))
        for tick in 1...6 { _ = machine.timerFired(.probe, now: MembershipRuleTests.at(second + 2 + Double(tick))) }
        #expect(machine.members["p2"] == nil)
        #expect(machine.coordinate(of: "p2") == nil)
    }
}

/// Whole nodes on the virtual clock: coordinates learned from real probes converge on the
/// network's round trip.
struct CoordinateClusterTests {
    @Test func nodesOnAFixedLatencyNetwork_estimateItsRoundTrip() {
        var cluster = TestCluster(observer: EventLog(), seed: 5)
        cluster.network.latencyMinimum = .milliseconds(20)  // 40 ms round trips
        cluster.network.latencyMeanExtra = .zero
        var settings = NodeSettings()
        settings.coordinateCodec = MembershipCoordinateTests.PlainCodec()
        for index in 0..<6 {
            cluster.add(settings: settings, seeds: NodeSeeds(membership: UInt64(index) &* 7919, replication: UInt64(index) &+ 1))
            cluster.start(index)
            if index > 0 { cluster.join(index, through: [0]) }
        }
        cluster.run(for: .seconds(60))
        for a in 0..<6 {
            let membership = cluster.nodes[a].membership
            #expect(membership.coordinates?.rejected == 0)
            for b in 0..<6 where a != b {
                guard let estimate = membership.estimatedRoundTrip(from: TestCluster.name(of: a), to: TestCluster.name(of: b)) else {
                    Issue.record("n\(a) has no coordinate for n\(b)")
                    continue
                }
                let milliseconds = Double(estimate.nanosecondsClamped) / 1e6
                // Within 25 % (seed 5 gives 37.6–45.6 ms after a minute, about 12 probes per pair).
                #expect(abs(milliseconds - 40) < 10, "n\(a) estimates n\(b) at \(milliseconds) ms")
            }
        }
    }
}
