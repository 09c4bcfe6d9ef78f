import Foundation
import RumorCore
import Testing

@testable import RumorWire

/// Bytes captured from real HashiCorp memberlist 0.2.2 nodes (tests/interop/capture).
enum GoFixtures {
    static func lines(_ name: String) throws -> [[UInt8]] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "hex", subdirectory: "Fixtures"))
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(hexBytes)
    }

    static func hexBytes(_ line: Substring) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = line.startIndex
        while index < line.endIndex {
            let next = line.index(index, offsetBy: 2)
            bytes.append(UInt8(line[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }
}

struct GoFixtureTests {
    @Test(arguments: ["go-packets-plain", "go-packets-compressed"])
    func everyPacketFromGoDecodes(fixture: String) throws {
        let codec = PacketCodec()
        var kinds: Set<String> = []
        var names: Set<String> = []
        for packet in try GoFixtures.lines(fixture) {
            let decoded = try codec.decode(packet)
            #expect(decoded.truncatedParts == 0)
            for message in decoded.messages {
                switch message {
                case .ping(let ping):
                    kinds.insert("ping")
                    names.insert(ping.target)
                    #expect(ping.source?.ip == [127, 0, 0, 1])
                case .indirectPing: kinds.insert("indirectPing")
                case .ack: kinds.insert("ack")
                case .nack: kinds.insert("nack")
                case .suspect(let suspect):
                    kinds.insert("suspect")
                    #expect(suspect.node == "charlie")
                case .alive(let alive):
                    kinds.insert("alive")
                    names.insert(alive.node)
                    #expect(alive.address.ip == [127, 0, 0, 1])
                    #expect(alive.meta == Array(alive.node.utf8), "the capture's delegate sets meta to the name")
                    #expect(alive.versions.protocolMax == 5)
                case .dead(let dead):
                    kinds.insert(dead.isLeave ? "leave" : "dead")
                case .user(let payload):
                    kinds.insert("user")
                    #expect(payload == Array("hello over udp".utf8))
                case .error: kinds.insert("error")
                }
            }
        }
        for expected in ["ping", "ack", "alive", "suspect", "user", "leave"] {
            #expect(kinds.contains(expected), "\(fixture) has a \(expected) message")
        }
        #expect(names.isSuperset(of: ["alpha", "bravo", "charlie"]))
    }

    @Test func goPacketsUseCRCAndCompoundAndCompression() throws {
        let compressed = try GoFixtures.lines("go-packets-compressed")
        #expect(compressed.contains { $0.first == 12 && $0[5] == 9 }, "CRC around a compressed message")
        let plain = try GoFixtures.lines("go-packets-plain")
        #expect(plain.contains { $0.first == 12 && $0[5] == 7 }, "CRC around a compound message")
    }

    @Test(arguments: ["go-streams-plain", "go-streams-compressed"])
    func everyStreamFromGoDecodes(fixture: String) throws {
        let codec = StreamCodec()
        var sawJoin = false
        var sawUser = false
        for stream in try GoFixtures.lines(fixture) {
            let decoded = try #require(try codec.decode(stream), "a whole stream message")
            switch decoded.message {
            case .pushPull(let state):
                let names = Set(state.nodes.map(\.name))
                #expect(names.isSubset(of: ["alpha", "bravo", "charlie"]) && !names.isEmpty)
                #expect(state.userState.starts(with: Array("state-of-".utf8)))
                sawJoin = sawJoin || state.join
            case .user(let payload):
                sawUser = true
                #expect(payload == Array("hello over tcp".utf8))
            default:
                break
            }
            // Any prefix of the stream is "need more bytes", never an error.
            for cut in stride(from: 0, to: stream.count, by: max(1, stream.count / 17)) {
                #expect(try codec.decode(Array(stream.prefix(cut))) == nil)
            }
        }
        #expect(sawJoin, "\(fixture) holds a join push-pull")
        if fixture == "go-streams-plain" { #expect(sawUser) }
    }

    /// Our encoding of a message equals Go's byte for byte (uncompressed, CRC stripped).
    @Test func reencodingGoMessagesReproducesGoBytes() throws {
        var compared = 0
        for packet in try GoFixtures.lines("go-packets-plain") {
            var body = packet
            if body.first == 12 { body = Array(body.dropFirst(5)) }
            guard let type = body.first, [0, 2, 3, 4, 5].contains(type) else { continue }
            let message = try MessageCodec.decode(body, 0..<body.count)
            #expect(MessageCodec.encode(message) == body, "re-encoding \(message)")
            compared += 1
        }
        #expect(compared > 10)
    }
}
