import Testing

@testable import RumorCore

/// The Vivaldi client on its own: convergence on a known latency matrix, and refusals that
/// leave it unchanged.
struct VivaldiTests {
    /// A swarm laid out on a plane with access links (heights): the true round trip between
    /// two nodes is their distance plus both links, as Vivaldi's height model assumes.
    struct Layout {
        var points: [(x: Double, y: Double)]
        var links: [Double]

        init(nodes: Int, random: inout SeededRandom) {
            points = (0..<nodes).map { _ in (Double.random(in: 0..<0.1, using: &random), Double.random(in: 0..<0.1, using: &random)) }
            links = (0..<nodes).map { _ in Double.random(in: 0.0005..<0.005, using: &random) }
        }

        /// Seconds.
        func roundTrip(_ a: Int, _ b: Int) -> Double {
            let dx = points[a].x - points[b].x
            let dy = points[a].y - points[b].y
            return (dx * dx + dy * dy).squareRoot() + links[a] + links[b]
        }
    }

    @Test func aSwarmConvergesOnASyntheticLatencyMatrix() throws {
        var random = SeededRandom(seed: 42)
        let layout = Layout(nodes: 12, random: &random)
        var clients = (0..<12).map { _ in VivaldiClient() }
        for _ in 0..<400 {
            for index in clients.indices {
                var peer = Int.random(in: 0..<(clients.count - 1), using: &random)
                if peer >= index { peer += 1 }
                // ±5 % jitter, as real round trips have.
                let measured = layout.roundTrip(index, peer) * Double.random(in: 0.95..<1.05, using: &random)
                try clients[index].update(
                    peer: "n\(peer)", remote: clients[peer].coordinate, roundTrip: .nanoseconds(Int64(measured * 1e9)),
                    random: &random)
            }
        }
        var errors: [Double] = []
        for a in clients.indices {
            for b in clients.indices where a < b {
                let estimate = NetworkCoordinate.seconds(clients[a].coordinate.distance(to: clients[b].coordinate))
                errors.append(abs(estimate - layout.roundTrip(a, b)) / layout.roundTrip(a, b))
            }
        }
        errors.sort()
        let median = errors[errors.count / 2]
        let p90 = errors[errors.count * 9 / 10]
        #expect(median < 0.1, "median relative error \(median)")
        #expect(p90 < 0.25, "90th percentile relative error \(p90)")
        #expect(clients.allSatisfy { $0.coordinate.error < 0.5 && $0.resets == 0 })
    }

    @Test func theFirstSampleFromTheOrigin_movesTheCoordinateAway() throws {
        var client = VivaldiClient()
        var random = SeededRandom(seed: 1)
        let peer = NetworkCoordinate(settings: VivaldiSettings())
        let moved = try client.update(peer: "p", remote: peer, roundTrip: .milliseconds(10), random: &random)
        #expect(moved.vector != peer.vector)
        #expect(moved.error < VivaldiSettings().errorMaximum)
    }

    @Test func aNonFiniteOrForeignCoordinate_isRefusedAndChangesNothing() {
        var client = VivaldiClient()
        var random = SeededRandom(seed: 1)
        let before = client.coordinate
        var poisoned = NetworkCoordinate(settings: VivaldiSettings())
        poisoned.vector[3] = .nan
        #expect(throws: CoordinateRejection(.notFinite, "a component is NaN or infinite")) {
            try client.update(peer: "p", remote: poisoned, roundTrip: .milliseconds(1), random: &random)
        }
        var infinite = NetworkCoordinate(settings: VivaldiSettings())
        infinite.height = .infinity
        #expect(throws: CoordinateRejection.self) {
            try client.update(peer: "p", remote: infinite, roundTrip: .milliseconds(1), random: &random)
        }
        let threeDimensions = NetworkCoordinate(vector: [0, 0, 0], error: 1, adjustment: 0, height: 1e-5)
        do {
            try client.update(peer: "p", remote: threeDimensions, roundTrip: .milliseconds(1), random: &random)
            Issue.record("a 3-dimensional coordinate was taken")
        } catch {
            #expect(error.code == .wrongDimensionality)
        }
        #expect(client.coordinate == before)
    }

    @Test func aRoundTripOutOfRange_isRefused() {
        var client = VivaldiClient()
        var random = SeededRandom(seed: 1)
        for roundTrip: Duration in [.milliseconds(-1), .seconds(11)] {
            do {
                try client.update(peer: "p", remote: NetworkCoordinate(settings: VivaldiSettings()), roundTrip: roundTrip, random: &random)
                Issue.record("\(roundTrip) was taken")
            } catch {
                #expect(error.code == .roundTripOutOfRange)
            }
        }
    }

    @Test func theLatencyFilter_takesTheMedianOfTheLastThree() throws {
        // One late ack among fast ones moves the coordinate as a fast one would.
        var random = SeededRandom(seed: 7)
        let peer = NetworkCoordinate(vector: [0.01, 0, 0, 0, 0, 0, 0, 0], error: 0.2, adjustment: 0, height: 1e-5)
        var steady = VivaldiClient()
        var spiky = VivaldiClient()
        var steadyRandom = random
        for roundTrip: Duration in [.milliseconds(10), .milliseconds(10), .milliseconds(10)] {
            try steady.update(peer: "p", remote: peer, roundTrip: roundTrip, random: &steadyRandom)
        }
        for roundTrip: Duration in [.milliseconds(10), .milliseconds(10), .milliseconds(900)] {
            try spiky.update(peer: "p", remote: peer, roundTrip: roundTrip, random: &random)
        }
        #expect(steady.coordinate == spiky.coordinate)
    }

    @Test func distance_addsHeightsAndAdjustments_unlessThatGoesNegative() {
        let a = NetworkCoordinate(vector: [0.003, 0.004], error: 1, adjustment: 0.001, height: 0.0005)
        let b = NetworkCoordinate(vector: [0, 0], error: 1, adjustment: 0.0005, height: 0.0005)
        #expect(abs(NetworkCoordinate.seconds(a.distance(to: b)) - 0.0075) < 1e-8)
        var negative = b
        negative.adjustment = -1
        #expect(abs(NetworkCoordinate.seconds(a.distance(to: negative)) - 0.006) < 1e-8)
    }

    @Test func settingsValidation_namesTheBadSetting() {
        var settings = VivaldiSettings()
        settings.dimensionality = 0
        #expect(throws: SettingsError(setting: "dimensionality", problem: "must be greater than zero")) { try settings.validate() }
        #expect(throws: Never.self) { try VivaldiSettings().validate() }
    }
}
