import Testing

@testable import RumorWire

/// The pilot-daemon IPC format, against frames captured from pilotprotocol 1.18.0
/// (docs/pilot-ipc.md §3).
struct PilotIPCTests {
    static func hex(_ text: String) -> [UInt8] {
        text.split(separator: " ").map { UInt8($0, radix: 16)! }
    }

    @Test func requestsEncodeAsTheDaemonExpects() {
        let node2 = PilotIPC.Address(network: 0, node: 1)
        #expect(PilotIPC.Frame(.info).bytes == Self.hex("00 00 00 01 0d"))
        #expect(PilotIPC.resolve(hostname: "node-2").bytes == Self.hex("00 00 00 07 11 6e 6f 64 65 2d 32"))
        #expect(PilotIPC.bind(port: 7000).bytes == Self.hex("00 00 00 03 01 1b 58"))
        #expect(PilotIPC.dial(node2, port: 7100).bytes == Self.hex("00 00 00 09 03 00 00 00 00 00 01 1b bc"))
        #expect(PilotIPC.close(connection: 1).bytes == Self.hex("00 00 00 05 08 00 00 00 01"))
        #expect(
            PilotIPC.sendTo(node2, port: 7000, Array("hello-dgram".utf8), confirmed: true).bytes
                == Self.hex("00 00 00 14 39 00 00 00 00 00 01 1b 58 68 65 6c 6c 6f 2d 64 67 72 61 6d"))
        #expect(
            PilotIPC.handshake(.request, node: 1, text: "rumor gossip").bytes
                == Self.hex("00 00 00 12 0f 01 00 00 00 01 72 75 6d 6f 72 20 67 6f 73 73 69 70"))
        #expect(
            PilotIPC.handshake(.wait, node: 1, timeoutMilliseconds: 2000).bytes
                == Self.hex("00 00 00 0a 0f 07 00 00 00 01 00 00 07 d0"))
    }

    @Test func pushesDecode() throws {
        let accept = try #require(try PilotIPC.decodeFrame(Self.hex("00 00 00 0f 05 1b bc 00 00 00 01 00 00 00 00 00 03 c0 1b")[...]))
        #expect(accept.consumed == 19)
        #expect(
            try PilotIPC.event(accept.frame)
                == .accepted(port: 7100, connection: 1, from: PilotIPC.Address(network: 0, node: 3), fromPort: 49179))
        let datagram = try #require(try PilotIPC.decodeFrame(Self.hex("00 00 00 10 0c 00 00 00 00 00 03 c0 01 1b 58 68 65 6c 6c 6f")[...]))
        #expect(
            try PilotIPC.event(datagram.frame)
                == .datagram(from: PilotIPC.Address(network: 0, node: 3), fromPort: 49153, toPort: 7000, bytes: Array("hello".utf8)))
        let closed = try #require(try PilotIPC.decodeFrame(Self.hex("00 00 00 05 09 00 00 00 01")[...]))
        #expect(try PilotIPC.event(closed.frame) == .closed(connection: 1))
        let error = try #require(try PilotIPC.decodeFrame((Self.hex("00 00 00 15 0a 00 01") + Array("connection refused".utf8))[...]))
        #expect(PilotIPC.errorMessage(error.frame) == "connection refused")
        #expect(try PilotIPC.event(error.frame) == nil, "a reply, not a push")
    }

    @Test func framesAreCutFromAStream_andOversizedOnesRefused() throws {
        let two = PilotIPC.Frame(.health).bytes + PilotIPC.close(connection: 7).bytes
        let first = try #require(try PilotIPC.decodeFrame(two[...]))
        #expect(first.frame.command == 0x21 && first.consumed == 5)
        let second = try #require(try PilotIPC.decodeFrame(two[first.consumed...]))
        #expect(second.frame == PilotIPC.close(connection: 7))
        #expect(try PilotIPC.decodeFrame(PilotIPC.close(connection: 7).bytes.prefix(7)[...]) == nil, "incomplete")
        #expect(try PilotIPC.decodeFrame(([0, 0, 0, 0] + PilotIPC.Frame(.info).bytes)[...])?.frame == PilotIPC.Frame(.info), "empty frames skipped")
        #expect(throws: PilotIPC.DecodeError.tooLarge((1 << 20) + 1)) { try PilotIPC.decodeFrame([0x00, 0x10, 0x00, 0x01, 0x0d][...]) }
        #expect(throws: PilotIPC.DecodeError.self) { try PilotIPC.event(PilotIPC.Frame(command: 0x05, payload: [1, 2])) }
    }

    @Test func addressesReadAndWriteTheirTextForm() {
        #expect(PilotIPC.Address("0:0000.0000.0002") == PilotIPC.Address(network: 0, node: 2))
        #expect(PilotIPC.Address("1:0001.0A0B.0C0D")?.bytes == [0x00, 0x01, 0x0A, 0x0B, 0x0C, 0x0D])
        #expect(PilotIPC.Address(network: 1, node: 0x0A0B_0C0D).description == "1:0001.0A0B.0C0D")
        for bad in ["", "0:0000.0000", "1:0000.0000.0002", "0:00000.000.0002", "x:0000.0000.0002", "0:0000.0000.zzzz"] {
            #expect(PilotIPC.Address(bad) == nil, "\(bad)")
        }
    }
}
