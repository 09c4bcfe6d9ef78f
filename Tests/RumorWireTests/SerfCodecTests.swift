import RumorCore
import Testing

@testable import RumorWire

/// Serf's messages against bytes real Serf agents sent or Serf's own encoders produced
/// (docs/serf-wire.md, Appendix A).
struct SerfCodecTests {
    static func hex(_ text: String) -> [UInt8] {
        let digits = Array(text.filter { !$0.isWhitespace })
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    static let localhost: [UInt8] = [127, 0, 0, 1]

    /// Captured or Go-encoded messages that Rumor must read, and write byte for byte.
    static let fixtures: [(String, SerfMessage)] = [
        ("0182a54c54696d6501a44e6f6465a66e6f64652d62", .join(SerfJoin(time: 1, node: "node-b"))),
        ("0182a54c54696d6507a44e6f6465a66e6f64652d62", .join(SerfJoin(time: 7, node: "node-b"))),
        ("0083a54c54696d6503a44e6f6465a66e6f64652d63a55072756e65c2", .leave(SerfLeave(time: 3, node: "node-c"))),
        ("0083a54c54696d6509a44e6f6465a66e6f64652d62a55072756e65c3", .leave(SerfLeave(time: 9, node: "node-b", prune: true))),
        (
            "0384a24343c3a54c54696d6501a44e616d65a66465706c6f79a75061796c6f6164a676312e322e33",
            .userEvent(SerfUserEvent(time: 1, name: "deploy", payload: Array("v1.2.3".utf8), coalesce: true))
        ),
        (
            "0384a24343c2a54c54696d6502a44e616d65a772657374617274a75061796c6f6164c0",
            .userEvent(SerfUserEvent(time: 2, name: "restart", payload: [], coalesce: false))
        ),
        (
            """
            048ba441646472a47f000001a746696c7465727391b40182a445787072a3776562a3546167a4726f6c65a5466c61677301a24944ce57433d1c\
            a54c54696d6501a44e616d65a6757074696d65a75061796c6f6164a36e6f77a4506f7274cd6979ab52656c6179466163746f7200aa536f75\
            7263654e6f6465a66e6f64652d61a754696d656f7574cebebc2000
            """,
            .query(
                SerfQuery(
                    time: 1, id: 0x5743_3d1c, address: localhost, port: 27001, sourceNode: "node-a",
                    filters: [.tag(name: "role", expression: "web")], flags: SerfQuery.ackFlag, timeout: .milliseconds(3200),
                    name: "uptime", payload: Array("now".utf8)))
        ),
        (
            """
            048ba441646472a47f000001a746696c7465727391b60182a445787072a55e77656224a3546167a4726f6c65a5466c61677301a24944ce12345678\
            a54c54696d6504a44e616d65a6757074696d65a75061796c6f6164a36e6f77a4506f7274cd6979ab52656c6179466163746f7200aa536f7572\
            63654e6f6465a66e6f64652d61a754696d656f7574cf000000012a05f200
            """,
            .query(
                SerfQuery(
                    time: 4, id: 0x1234_5678, address: localhost, port: 27001, sourceNode: "node-a",
                    filters: [.tag(name: "role", expression: "^web$")], flags: SerfQuery.ackFlag, timeout: .seconds(5),
                    name: "uptime", payload: Array("now".utf8)))
        ),
        (
            "0585a5466c61677300a446726f6da66e6f64652d61a24944ce57433d1ca54c54696d6501a75061796c6f6164ae75702066726f6d206e6f64652d61",
            .queryResponse(SerfQueryResponse(time: 1, id: 0x5743_3d1c, from: "node-a", isAck: false, payload: Array("up from node-a".utf8)))
        ),
        (
            "0585a5466c61677301a446726f6da66e6f64652d61a24944ce57433d1ca54c54696d6501a75061796c6f6164c0",
            .queryResponse(SerfQueryResponse(time: 1, id: 0x5743_3d1c, from: "node-a", isAck: true))
        ),
        (
            """
            0982a8446573744164647283a24950a47f000001a4506f7274cd6979a45a6f6e65a0a8446573744e616d65a66e6f64652d610585a5466c61677300\
            a446726f6da66e6f64652d61a24944ce7cf781efa54c54696d6509a75061796c6f6164ae75702066726f6d206e6f64652d61
            """,
            .relay(
                SerfRelay(
                    destination: NodeAddress(ip: localhost, port: 27001), destinationName: "node-a",
                    message: hex(
                        "0585a5466c61677300a446726f6da66e6f64652d61a24944ce7cf781efa54c54696d6509a75061796c6f6164ae75702066726f6d206e6f64652d61"
                    )))
        ),
        (
            """
            0286aa4576656e744c54696d6504a64576656e747394c0c0c082a64576656e74739182a44e616d65a66465706c6f79a75061796c6f6164a27631\
            a54c54696d6503a54c54696d6505ab4c6566744d656d6265727390aa51756572794c54696d6502ac5374617475734c54696d657381a66e6f6465\
            2d6101
            """,
            .pushPull(
                SerfPushPull(
                    memberTime: 5, statusTimes: ["node-a": 1], leftMembers: [], eventTime: 4,
                    events: [nil, nil, nil, SerfEventSlot(time: 3, events: [.init(name: "deploy", payload: Array("v1".utf8))])],
                    queryTime: 2))
        ),
    ]

    @Test(arguments: 0..<fixtures.count)
    func fixturesDecodeAndEncodeByteForByte(_ index: Int) throws {
        let (text, message) = Self.fixtures[index]
        let bytes = Self.hex(text)
        #expect(try SerfCodec.decode(bytes) == message)
        #expect(SerfCodec.encode(message) == bytes)
        #expect(SerfCodec.isMessage(bytes) == (bytes[0] != 2))
    }

    @Test func theJoinPushPullStateOfARealAgentDecodes() throws {
        let bytes = Self.hex(
            "0286aa4576656e744c54696d6501a64576656e7473dc0200" + String(repeating: "c0", count: 512)
                + "a54c54696d6501ab4c6566744d656d6265727390aa51756572794c54696d6501ac5374617475734c54696d657381a66e6f64652d6200")
        guard case .pushPull(let state) = try SerfCodec.decode(bytes) else {
            Issue.record("not a push-pull")
            return
        }
        #expect(state.events.count == 512 && state.events.allSatisfy { $0 == nil })
        #expect(state.statusTimes == ["node-b": 0] && state.memberTime == 1 && state.eventTime == 1 && state.queryTime == 1)
        #expect(SerfCodec.encode(.pushPull(state)) == bytes)
    }

    @Test func tagsEncodeAsSerfDoesAndDecodeInEitherOrder() throws {
        #expect(SerfCodec.encodeTags(["role": "db"]) == Self.hex("ff81a4726f6c65a26462"))
        #expect(SerfCodec.encodeTags([:]) == Self.hex("ff80"))
        let tags = ["role": "web", "dc": "east"]
        #expect(try SerfCodec.decodeTags(Self.hex("ff82a4726f6c65a3776562a26463a465617374")) == tags)
        #expect(try SerfCodec.decodeTags(Self.hex("ff82a26463a465617374a4726f6c65a3776562")) == tags)
        #expect(try SerfCodec.decodeTags(SerfCodec.encodeTags(tags)) == tags)
        // Protocol 2 (and plain memberlist nodes): the metadata is the role.
        #expect(try SerfCodec.decodeTags(Self.hex("776562")) == ["role": "web"])
        #expect(try SerfCodec.decodeTags([]) == ["role": ""])
        #expect(throws: WireError.self) { try SerfCodec.decodeTags(Self.hex("ff82a4726f6c65")) }
    }

    @Test func filtersAndKeyMessagesMatchSerf() throws {
        #expect(SerfCodec.encode(.nodes(["node-b"])) == Self.hex("0091a66e6f64652d62"))
        #expect(SerfCodec.encode(.nodes(["node-a", "node-b"])) == Self.hex("0092a66e6f64652d61a66e6f64652d62"))
        #expect(SerfCodec.encode(.tag(name: "role", expression: "web")) == Self.hex("0182a445787072a3776562a3546167a4726f6c65"))
        #expect(throws: WireError.self) { try SerfCodec.decodeFilter([]) }
        #expect(throws: WireError.self) { try SerfCodec.decodeFilter([7, 0x90]) }

        #expect(SerfCodec.encode(.request(key: [])) == Self.hex("0781a34b6579a0"))
        let key = Self.hex("c1dbb0ee4b4431cf0fa43139110dc76856506f7a477ed7eba8bff38e376e4d90")
        let install = Self.hex("0781a34b6579da0020c1dbb0ee4b4431cf0fa43139110dc76856506f7a477ed7eba8bff38e376e4d90")
        #expect(SerfCodec.encode(.request(key: key)) == install)
        #expect(try SerfCodec.decodeKeyMessage(install) == .request(key: key))
        let empty = Self.hex(
            "0884a44b657973c0a74d657373616765da00294b657972696e6720697320656d7074792028656e6372797074696f6e206e6f7420656e61626c656429aa5072696d6172794b6579a0a6526573756c74c2"
        )
        let response = SerfKeyResponse(succeeded: false, message: "Keyring is empty (encryption not enabled)")
        #expect(try SerfCodec.decodeKeyMessage(empty) == .response(response))
        #expect(SerfCodec.encode(.response(response)) == empty)
        let listed = Self.hex(
            "0884a44b65797391b84d4445794d7a51314e6a63344f5746695932526c5a673d3da74d657373616765a0aa5072696d6172794b6579b84d4445794d7a51314e6a63344f5746695932526c5a673d3da6526573756c74c3"
        )
        let keys = SerfKeyResponse(succeeded: true, keys: ["MDEyMzQ1Njc4OWFiY2RlZg=="], primaryKey: "MDEyMzQ1Njc4OWFiY2RlZg==")
        #expect(try SerfCodec.decodeKeyMessage(listed) == .response(keys))
        #expect(SerfCodec.encode(.response(keys)) == listed)
    }

    @Test func unknownFieldsAreSkippedAndMalformedInputRefused() throws {
        // A join with an extra field a later Serf might add.
        let extended = Self.hex("0183a54c54696d6501a44e6f6465a66e6f64652d62a5457874726101")
        #expect(try SerfCodec.decode(extended) == .join(SerfJoin(time: 1, node: "node-b")))
        for bad in ["", "0a80", "0182a54c54696d65", "0981a44e616d65a0", "06c0", "0381a54c54696d65ff"] {
            #expect(throws: WireError.self, "\(bad)") { try SerfCodec.decode(Self.hex(bad)) }
        }
    }
}

/// IPv6 addresses print as RFC 5952 says (members, logs, seeds).
struct AddressTextTests {
    @Test func ipv6AddressesPrintCompressed() {
        func host(_ groups: [UInt16]) -> String {
            NodeAddress(ip: groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }, port: 1).host
        }
        #expect(host([0, 0, 0, 0, 0, 0, 0, 1]) == "[::1]")
        #expect(host([0, 0, 0, 0, 0, 0, 0, 0]) == "[::]")
        #expect(host([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]) == "[2001:db8::1:0:0:1]")
        #expect(host([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]) == "[2001:db8:0:1:1:1:1:1]")
        #expect(host([0xfe80, 0, 0, 0, 0xa, 0, 0, 0]) == "[fe80::a:0:0:0]")
        #expect(NodeAddress(ip: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], port: 7946).description == "[::1]:7946")
    }
}
