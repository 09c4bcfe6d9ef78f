import Testing

@testable import RumorWire

/// The multicast DNS of `--discover`: Serf's service name, our answer read back, a compressed
/// answer as Go's DNS library writes it, and hostile input refused.
struct MDNSTests {
    static let service = MDNS.service(swarm: "alpha")

    static func hex(_ text: String) -> [UInt8] { SerfCodecTests.hex(text) }

    @Test func aQuestionAsksForTheSwarmsService() throws {
        #expect(Self.service == "_serf_alpha._tcp.local.")
        let message = try MDNS.decode(MDNS.query(for: Self.service, id: 7))
        #expect(message.asks(for: Self.service))
        #expect(message.asks(for: "_SERF_alpha._tcp.local."), "DNS names compare without case")
        #expect(!message.asks(for: MDNS.service(swarm: "beta")), "another swarm's nodes are not asked")
        #expect(message.instances(of: Self.service).isEmpty)
    }

    @Test func ourAnswerNamesTheNodesAddressAndPort() throws {
        let answer = MDNS.answer(
            service: Self.service, instance: "a1", host: "a1.local.", port: 7946, addresses: [[10, 0, 0, 1]], text: "Serf 'alpha' cluster")
        let message = try MDNS.decode(answer)
        #expect(message.isResponse && !message.asks(for: Self.service))
        #expect(message.instances(of: Self.service).map { "\($0.ip)/\($0.port)" } == ["[10, 0, 0, 1]/7946"])
        #expect(message.records.contains(.text(name: "a1._serf_alpha._tcp.local.", strings: ["Serf 'alpha' cluster"])))
        #expect(message.instances(of: MDNS.service(swarm: "beta")).isEmpty)
        let v6 = MDNS.answer(service: Self.service, instance: "a1", host: "a1.local.", port: 1, addresses: [Array(repeating: 1, count: 16)], text: "")
        #expect(try MDNS.decode(v6).instances(of: Self.service).first?.ip.count == 16)
    }

    @Test func compressedNamesAreFollowed() throws {
        // PTR, SRV (port 7850), A 10.0.0.1 and TXT, names compressed as Go's miekg/dns writes them.
        let answer = Self.hex(
            "0000840000000004000000000b5f736572665f616c706861045f746370056c6f63616c00000c0001000000780005026131c00cc02e0021"
                + "0001000000780010000a00011eaa026131056c6f63616c00c045000100010000007800040a000001c02e00100001000000780015145365"
                + "72662027616c7068612720636c7573746572")
        let message = try MDNS.decode(answer)
        #expect(message.instances(of: Self.service).map { "\($0.ip)/\($0.port)" } == ["[10, 0, 0, 1]/7850"])
    }

    @Test func hostileInputIsRefused() {
        let query = MDNS.query(for: Self.service, id: 1)
        for cut in 1..<query.count {
            #expect(throws: WireError.self) { try MDNS.decode(Array(query.prefix(cut))) }
        }
        // A name pointing at itself, or forward.
        #expect(throws: WireError.self) { try MDNS.decode(Self.hex("000000000001000000000000c00c000c0001")) }
        #expect(throws: WireError.self) { try MDNS.decode(Self.hex("000000000001000000000000c020000c0001")) }
        // Counts the message cannot hold.
        #expect(throws: WireError.self) { try MDNS.decode(Self.hex("0000840000000fff00000000")) }
        // A label longer than 63 bytes.
        #expect(throws: WireError.self) { try MDNS.decode(Self.hex("00000000000100000000000040") + Array(repeating: 0x61, count: 64) + [0, 0, 12, 0, 1]) }
        // A pointer cycle through labels ends at the 255-byte name limit.
        #expect(throws: WireError.self) { try MDNS.decode(Self.hex("0000000000010000000000000161c00c000c0001")) }
    }
}
