import RumorCore
import Testing

@testable import RumorWire

/// Serf's ack payload, byte for byte, and Serf's Vivaldi arithmetic, bit for bit: the golden
/// values were printed once by Serf's own Go code (tests/interop/coordinate_golden/main.go).
struct SerfCoordinateCodecTests {
    static let golden: [String: String] = [
        "fresh": "0184aa41646a7573746d656e74cb0000000000000000a54572726f72cb3ff8000000000000a6486569676874cb3ee4f8" +
            "b588e368f1a356656398cb0000000000000000cb0000000000000000cb0000000000000000cb0000000000000000cb00" +
            "00000000000000cb0000000000000000cb0000000000000000cb0000000000000000",
        "sample": "0184aa41646a7573746d656e74cbbf1a36e2eb1c432da54572726f72cb3fe8000000000000a6486569676874cb3ef4f8" +
            "b588e368f1a356656398cb3f50624dd2f1a9fccbbf60624dd2f1a9fccb3fe0000000000000cb0000000000000000cb00" +
            "00000000000000cb0000000000000000cb0000000000000000cb3e112e0be826d695",
        "step 0": "0184aa41646a7573746d656e74cb3f379e042efcd5c0a54572726f72cb3ff4bd5ceb2801a7a6486569676874cb3efa78" +
            "fdfd652926a356656398cb3f87518da669959fcbbf66b568efcb1a4fcb0000000000000000cb0000000000000000cb00" +
            "00000000000000cb0000000000000000cb0000000000000000cb0000000000000000",
        "step 1": "0184aa41646a7573746d656e74cb3f36a804ba316cb0a54572726f72cb3ff1df4076a62162a6486569676874cb3efa2f" +
            "4f953b588aa356656398cb3f8702679b48baf3cbbf66a033b5d02a61cb3f031faa052be9bccb0000000000000000cb00" +
            "00000000000000cb0000000000000000cb0000000000000000cb0000000000000000",
        "step 2": "0184aa41646a7573746d656e74cb3f5b974d8dcdd123a54572726f72cb3ff0b96be1b27061a6486569676874cb3f149e" +
            "d01ede5e64a356656398cb3f90727a4307f531cbbf89aee48aabe6d3cb3f0b56de58f935f9cb0000000000000000cb00" +
            "00000000000000cb0000000000000000cb0000000000000000cb0000000000000000",
        "step 3": "0184aa41646a7573746d656e74cb3f5937c84af79d6ea54572726f72cb3fee0287049cc28ea6486569676874cb3f13dc" +
            "c8b1e4ef5aa356656398cb3f8ec64616d47f02cbbf891b23c21570aacb3f321141e71295e0cb0000000000000000cb00" +
            "00000000000000cb0000000000000000cb0000000000000000cb0000000000000000",
        "step 4": "0184aa41646a7573746d656e74cb3f6520189d052101a54572726f72cb3febfba8adb8f5e7a6486569676874cb3f1db8" +
            "9cbfc950e0a356656398cb3f92adf5edcecd04cbbf939eeeab0ce330cb3f35eee2753ab822cb0000000000000000cb00" +
            "00000000000000cb0000000000000000cb0000000000000000cb0000000000000000",
        "step 5": "0184aa41646a7573746d656e74cb3f630612b9c47aa3a54572726f72cb3fea0b0ac419eea2a6486569676874cb3f1c58" +
            "6ae9f7879da356656398cb3f9117bc1ca38669cbbf92fd94a7f78898cb3f4523d18a50075ecb0000000000000000cb00" +
            "00000000000000cb0000000000000000cb0000000000000000cb0000000000000000",
    ]

    static func bytes(_ name: String) -> [UInt8] { GoFixtures.hexBytes(Substring(golden[name]!)) }

    static func vector(_ values: Double...) -> [Double] { values + Array(repeating: 0, count: 8 - values.count) }

    @Test func encodesAsSerfDoes() throws {
        let codec = SerfCoordinateCodec()
        #expect(codec.encode(NetworkCoordinate(settings: VivaldiSettings())) == Self.bytes("fresh"))
        let sample = NetworkCoordinate(
            vector: [0.001, -0.002, 0.5, 0, 0, 0, 0, 1e-9], error: 0.75, adjustment: -0.0001, height: 0.00002)
        #expect(codec.encode(sample) == Self.bytes("sample"))
        #expect(try codec.decode(Self.bytes("sample")) == sample)
    }

    /// The same six updates as Serf's client, from the same start: every coordinate equal to the
    /// last bit.
    @Test func updatesAsSerfDoes() throws {
        var client = VivaldiClient()
        try client.setCoordinate(NetworkCoordinate(vector: Self.vector(0.01), error: 1.5, adjustment: 0, height: 10.0e-6))
        let a = NetworkCoordinate(vector: Self.vector(0, 0.02), error: 0.5, adjustment: 0.001, height: 0.0001)
        let b = NetworkCoordinate(vector: Self.vector(-0.03, 0, 0.01), error: 1.0, adjustment: 0, height: 0.00005)
        var random = SeededRandom(seed: 1)
        for (step, milliseconds) in [40, 42, 90, 38, 85, 41].enumerated() {
            let (peer, name) = step % 2 == 0 ? (a, "a") : (b, "b")
            let updated = try client.update(peer: name, remote: peer, roundTrip: .milliseconds(milliseconds), random: &random)
            let expected = try SerfCoordinateCodec().decode(Self.bytes("step \(step)"))
            #expect(updated == expected, "step \(step)")
        }
        #expect(client.distance(to: a) == .nanoseconds(45_539_822))
    }

    @Test func readsLiberally_keysInAnyOrder_unknownKeys_float32AndIntegers() throws {
        var writer = MessagePackWriter()
        writer.writeByte(1)
        writer.writeMapHeader(5)
        writer.writeKey("Vec"); writer.writeArrayHeader(2); writer.writeByte(0xca); writer.writeBigEndian(Float(0.5).bitPattern); writer.writeUnsigned(1)
        writer.writeKey("Extra"); writer.writeString("ignored")
        writer.writeKey("Height"); writer.writeDouble(0.25)
        writer.writeKey("Error"); writer.writeUnsigned(1)
        writer.writeKey("Adjustment"); writer.writeSigned(-2)
        let decoded = try SerfCoordinateCodec().decode(writer.bytes)
        #expect(decoded == NetworkCoordinate(vector: [0.5, 1], error: 1, adjustment: -2, height: 0.25))
    }

    @Test func refusesWhatIsNotACoordinate() {
        let codec = SerfCoordinateCodec()
        var tooManyDimensions = MessagePackWriter()
        tooManyDimensions.writeByte(1)
        tooManyDimensions.writeMapHeader(1)
        tooManyDimensions.writeKey("Vec")
        tooManyDimensions.writeArrayHeader(65)
        for _ in 0..<65 { tooManyDimensions.writeDouble(0) }
        var fresh = Self.bytes("fresh")
        fresh[0] = 2
        let cases: [([UInt8], CoordinateRejection.Code)] = [
            ([], .undecodable),
            (fresh, .unsupportedVersion),
            (Array(Self.bytes("fresh").dropLast(3)), .undecodable),
            ([1, 0x93], .undecodable),
            (tooManyDimensions.bytes, .undecodable),
        ]
        for (payload, code) in cases {
            do {
                _ = try codec.decode(payload)
                Issue.record("decoded \(payload)")
            } catch {
                #expect(error.code == code)
            }
        }
    }

    @Test func decodingNeverCrashes_onMutatedPayloads() {
        var random = SeededRandom(seed: 3)
        let base = Self.bytes("sample")
        for _ in 0..<2_000 {
            var payload = base
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                payload[Int.random(in: 0..<payload.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            payload = Array(payload.prefix(Int.random(in: 0...payload.count, using: &random)))
            _ = try? SerfCoordinateCodec().decode(payload)
        }
    }
}
