import RumorCore
import Testing

@testable import RumorWire

struct CodecTests {
    static let address = NodeAddress(ip: [10, 1, 2, 3], port: 7946)
    static let v6 = NodeAddress(ip: Array(repeating: 0, count: 15) + [1], port: 7000)
    /// A Pilot virtual address (network 0, node 2), as members of a swarm on Pilot have.
    static let pilot = NodeAddress(ip: [0, 0, 0, 0, 0, 2], port: 7946)

    static let messages: [Message] = [
        .ping(Ping(sequenceNumber: 7, target: "b", source: address, sourceName: "a")),
        .ping(Ping(sequenceNumber: .max, target: "")),
        .indirectPing(IndirectPing(sequenceNumber: 9, target: v6, targetName: "c", wantsNack: true, source: address, sourceName: "a")),
        .ack(Ack(sequenceNumber: 300, payload: [1, 2, 3])),
        .nack(Nack(sequenceNumber: 70_000)),
        .suspect(Suspect(incarnation: 5, node: "b", from: "a")),
        .alive(Alive(incarnation: 1 << 31, node: String(repeating: "n", count: 300), address: address, meta: Array(repeating: 7, count: 512), versions: .rumor)),
        .alive(Alive(incarnation: 3, node: "on-pilot", address: pilot, meta: [], versions: .rumor)),
        .ping(Ping(sequenceNumber: 8, target: "b", source: pilot, sourceName: "a")),
        .dead(Dead(incarnation: 2, node: "x", from: "x")),
        .user(Array("payload".utf8)),
        .error("boom"),
    ]

    @Test(arguments: messages)
    func messageRoundTrips(message: Message) throws {
        let bytes = MessageCodec.encode(message)
        #expect(try MessageCodec.decode(bytes, 0..<bytes.count) == message)
        #expect(bytes.count <= message.estimatedWireSize, "the core's size estimate is an upper bound")
    }

    @Test(arguments: [false, true], [false, true])
    func compoundPacketsRoundTrip(compression: Bool, checksum: Bool) throws {
        let codec = PacketCodec(label: "swarm-a", compression: compression)
        let packet = codec.encode(Self.messages, checksum: checksum)
        let decoded = try codec.decode(packet)
        #expect(decoded.messages == Self.messages)
        #expect(decoded.truncatedParts == 0)
    }

    @Test func addressesOfOtherLengthsAreRejected() throws {
        for length in [0, 5, 8, 15] {
            let alive = Message.alive(
                Alive(incarnation: 1, node: "x", address: NodeAddress(ip: Array(repeating: 1, count: length), port: 1), meta: [], versions: .rumor))
            let bytes = MessageCodec.encode(alive)
            #expect(throws: WireError.self) { try MessageCodec.decode(bytes, 0..<bytes.count) }
        }
    }

    @Test func pilotAddressesPrintInPilotsTextForm() {
        #expect(Self.pilot.description == "0:0000.0000.0002:7946")
        #expect(NodeAddress(ip: [0, 1, 0x0A, 0x0B, 0x0C, 0x0D], port: 1).host == "1:0001.0A0B.0C0D")
        #expect(PilotIPC.Address("1:0001.0A0B.0C0D")?.bytes == [0, 1, 0x0A, 0x0B, 0x0C, 0x0D])
    }

    @Test func labelMismatchIsItsOwnError() {
        let packet = PacketCodec(label: "red").encode([Self.messages[0]])
        #expect(throws: WireError(.labelMismatch(expected: "blue", received: "red"))) { try PacketCodec(label: "blue").decode(packet) }
        #expect(throws: WireError(.labelMismatch(expected: "", received: "red"))) { try PacketCodec().decode(packet) }
        let unlabelled = PacketCodec().encode([Self.messages[0]])
        #expect(throws: WireError(.labelMismatch(expected: "red", received: ""))) { try PacketCodec(label: "red").decode(unlabelled) }
    }

    @Test func corruptedChecksumIsRejected() {
        var packet = PacketCodec(compression: false).encode(Self.messages, checksum: true)
        packet[packet.count - 1] ^= 0x40
        #expect(throws: WireError(.badChecksum)) { try PacketCodec().decode(packet) }
    }

    @Test func cutCompoundCountsTruncatedParts() throws {
        let packet = PacketCodec(compression: false).encode(Array(Self.messages.prefix(4)))
        let decoded = try PacketCodec().decode(Array(packet.dropLast(3)))
        #expect(decoded.messages.count == 3)
        #expect(decoded.truncatedParts == 1)
    }

    @Test(arguments: [false, true])
    func pushPullStreamRoundTrips(compression: Bool) throws {
        let nodes = (0..<200).map {
            PushNodeState(name: "node-\($0)", address: Self.address, meta: [UInt8]("m\($0)".utf8), incarnation: UInt32($0), state: MemberState(rawValue: $0 % 4)!, versions: .rumor)
        }
        let message = StreamMessage.pushPull(PushPull(join: true, nodes: nodes, userState: [9, 8, 7]))
        let codec = StreamCodec(label: "s", compression: compression)
        let bytes = codec.encode(message) + [0xff]  // trailing bytes are not consumed
        let decoded = try #require(try codec.decode(bytes))
        #expect(decoded.message == message)
        #expect(decoded.consumed == bytes.count - 1)
        #expect(try codec.decode(Array(bytes.prefix(bytes.count / 2))) == nil)
    }

    @Test func streamClaimingHugeCountsIsRejectedBeforeAllocating() {
        var writer = MessagePackWriter()
        writer.writeByte(6)
        writer.writeMapHeader(3)
        writer.writeKey("Nodes"); writer.writeSigned(Int64(Int32.max))
        writer.writeKey("UserStateLen"); writer.writeSigned(0)
        writer.writeKey("Join"); writer.writeBool(false)
        #expect(throws: WireError.self) { try StreamCodec().decode(writer.bytes) }
    }

    @Test func lzwRoundTripsAndMatchesKnownGoOutput() throws {
        var random = SeededRandom(seed: 1)
        for size in [0, 1, 2, 100, 5000, 70_000] {
            let noise = (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) }
            let text = (0..<size).map { UInt8(truncatingIfNeeded: $0 % 7 + 65) }
            for input in [noise, text] {
                #expect(try LZW.decompress(LZW.compress(input)[...], limit: 1 << 20) == input)
            }
        }
        // Go: lzw.NewWriter(&buf, lzw.LSB, 8) writing "TOBEORNOTTOBEORTOBEORNOT".
        let go: [UInt8] = [0x00, 0xa9, 0x3c, 0x11, 0x52, 0xe4, 0x89, 0x14, 0x27, 0x4f, 0xa8, 0x08, 0x24, 0x68, 0x70, 0x61, 0xc1, 0x83, 0x09, 0x03, 0x02]
        #expect(try LZW.decompress(go[...], limit: 100) == Array("TOBEORNOTTOBEORTOBEORNOT".utf8))
        #expect(LZW.compress(Array("TOBEORNOTTOBEORTOBEORNOT".utf8)) == go, "our compressor writes Go's exact bytes")
    }

    @Test func lzwOutputIsBounded() {
        let bomb = LZW.compress(Array(repeating: 0, count: 100_000))
        #expect(throws: WireError.self) { try LZW.decompress(bomb[...], limit: 10_000) }
    }

    @Test func crc32MatchesIEEE() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    /// Random and mutated inputs never crash the decoders: they decode or throw.
    @Test func decodersSurviveRandomAndMutatedInput() throws {
        var random = SeededRandom(seed: 2026)
        let packetCodec = PacketCodec()
        let streamCodec = StreamCodec(maximumMessageSize: 1 << 20)
        var seeds = try GoFixtures.lines("go-packets-plain") + GoFixtures.lines("go-packets-compressed")
        seeds += try GoFixtures.lines("go-streams-plain") + GoFixtures.lines("go-streams-compressed")
        seeds.append(PacketCodec(compression: false).encode(Self.messages, checksum: false))
        seeds += SerfCodecTests.fixtures.map { SerfCodecTests.hex($0.0) }
        for round in 0..<60_000 {
            var input: [UInt8]
            if round % 3 == 0 {
                input = (0..<Int.random(in: 0...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                input = seeds[Int.random(in: 0..<seeds.count, using: &random)]
                for _ in 0..<Int.random(in: 1...4, using: &random) where !input.isEmpty {
                    let index = Int.random(in: 0..<input.count, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: input[index] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
                    case 1: input = Array(input.prefix(index))
                    default: input[index] = [0x00, 0xff, 0xdb, 0xdf, 0xc0, 0x7f][Int.random(in: 0..<6, using: &random)]
                    }
                }
            }
            _ = try? packetCodec.decode(input)
            _ = try? streamCodec.decode(input)
            _ = try? SerfCodec.decode(input)
            _ = try? SerfCodec.decodeTags(input)
        }
    }
}
