import Testing

@testable import RumorCore

/// `AddressRule`: which addresses peers may name, and the machines dropping messages that name
/// others (issue 29: one spoofed indirect ping made the agent's UDP socket close).
struct AddressRuleTests {
    static let ipv4 = AddressRule(family: .ipv4, broadcasts: [[10, 0, 0, 255]])

    static func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16 = 7946) -> NodeAddress {
        NodeAddress(ip: [a, b, c, d], port: port)
    }

    static func v6(_ bytes: [UInt8], port: UInt16 = 7946) -> NodeAddress {
        NodeAddress(ip: bytes + Array(repeating: 0, count: 16 - bytes.count), port: port)
    }

    static let mappedBroadcast = NodeAddress(ip: Array(repeating: 0, count: 10) + [0xff, 0xff, 255, 255, 255, 255], port: 7946)

    @Test func anIPv4NodeRefusesPortZeroBroadcastMulticastUnspecifiedAndOtherFamilies() {
        let rule = Self.ipv4
        #expect(rule.problem(with: Self.v4(10, 0, 0, 7)) == nil)
        #expect(rule.problem(with: Self.v4(127, 0, 0, 1)) == nil)
        #expect(rule.problem(with: Self.v4(10, 0, 1, 255)) == nil, "the .255 of a subnet this host is not on is a host")
        #expect(rule.problem(with: Self.v4(10, 0, 0, 7, port: 0)) == .portZero)
        #expect(rule.problem(with: Self.v4(255, 255, 255, 255)) == .broadcast)
        #expect(rule.problem(with: Self.v4(10, 0, 0, 255)) == .broadcast, "the host's subnet broadcast")
        #expect(rule.problem(with: Self.v4(224, 0, 0, 1)) == .multicast)
        #expect(rule.problem(with: Self.v4(239, 255, 255, 250)) == .multicast)
        #expect(rule.problem(with: Self.v4(0, 0, 0, 0)) == .unspecified)
        #expect(rule.problem(with: Self.v4(0, 1, 2, 3)) == .unspecified)
        #expect(rule.problem(with: Self.v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])) == .wrongLength(16, .ipv4))
        #expect(rule.problem(with: NodeAddress(ip: [0, 1, 0, 0, 0, 9], port: 7946)) == .wrongLength(6, .ipv4))
        #expect(rule.problem(with: NodeAddress(ip: [1, 2, 3], port: 7946)) == .wrongLength(3, .ipv4))
    }

    @Test func aDualStackNodeTakesBothFamilies_andReadsMappedAddressesAsIPv4() {
        let rule = AddressRule(family: .dualStack)
        #expect(rule.allows(Self.v4(10, 0, 0, 7)))
        #expect(rule.allows(Self.v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])))
        #expect(rule.problem(with: Self.v6([])) == .unspecified)
        #expect(rule.problem(with: Self.v6([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])) == .multicast)
        #expect(rule.problem(with: Self.mappedBroadcast) == .broadcast)
        #expect(AddressRule(family: .ipv6).problem(with: Self.v4(10, 0, 0, 7)) == .wrongLength(4, .ipv6))
    }

    @Test func aNodeTakesTheFamilyOfItsOwnAddress_unlessItsSettingsSayOtherwise() {
        #expect(AddressRule(for: Self.v4(10, 0, 0, 1)).family == .ipv4)
        #expect(AddressRule(for: Self.v6([0x20, 0x01])).family == .ipv6)
        #expect(AddressRule(for: NodeAddress(ip: [0, 0, 0, 0, 0, 0], port: 7946)).family == .pilot)
        let pilot = AddressRule(family: .pilot)
        #expect(pilot.allows(NodeAddress(ip: [0, 1, 0, 0, 0, 9], port: 7946)))
        #expect(pilot.problem(with: NodeAddress(ip: [0, 0, 0, 0, 0, 0], port: 7946)) == .unspecified)
        #expect(pilot.problem(with: Self.v4(10, 0, 0, 1)) == .wrongLength(4, .pilot))
        var settings = MembershipSettings.lan
        settings.addressRule = AddressRule(family: .dualStack)
        let machine = Membership(name: "me", address: Self.v4(10, 0, 0, 1), settings: settings, seed: 1, now: .zero)
        #expect(machine.addressRule.family == .dualStack)
    }
}

/// The membership machine and the node drop what names a refused address, change nothing else,
/// and say so.
struct AddressRefusalTests {
    static let spoofer = AddressRuleTests.v4(10, 0, 0, 66)

    static func refusals(_ directives: [MembershipDirective]) -> [AddressRefusal] {
        directives.compactMap { if case .addressRefused(let refusal) = $0 { refusal } else { nil } }
    }

    static func sends(_ directives: [MembershipDirective]) -> [NodeAddress] {
        directives.compactMap { if case .send(let to, _, _) = $0 { to } else { nil } }
    }

    static let invalid: [NodeAddress] = [
        AddressRuleTests.v4(127, 0, 0, 1, port: 0), AddressRuleTests.v4(255, 255, 255, 255), AddressRuleTests.v4(224, 0, 0, 1),
        AddressRuleTests.v4(0, 0, 0, 0), AddressRuleTests.v6([0x20, 0x01, 0x0d, 0xb8]),
    ]

    @Test(arguments: invalid)
    func anIndirectPingNamingARefusedTarget_isDroppedWithoutASend(target: NodeAddress) {
        var machine = MembershipRuleTests.machine(others: 2)
        let request = IndirectPing(sequenceNumber: 7, target: target, targetName: "p2", wantsNack: true)
        let out = machine.receive(.indirectPing(request), from: Self.spoofer, now: .zero)
        #expect(Self.sends(out).isEmpty, "nothing is sent: \(out)")
        #expect(!out.contains { if case .startTimer(.relayTimeout, _) = $0 { true } else { false } }, "no relay is started")
        #expect(machine.relays.isEmpty)
        let refusals = Self.refusals(out)
        #expect(refusals.count == 1 && refusals[0].address == target && refusals[0].field == "indirect ping target")
        #expect(refusals[0].sender == Self.spoofer)
    }

    @Test func anIndirectPingWithARefusedReplyAddress_isDropped() {
        var machine = MembershipRuleTests.machine(others: 2)
        let request = IndirectPing(
            sequenceNumber: 7, target: MembershipRuleTests.peer(2), targetName: "p2", wantsNack: true,
            source: AddressRuleTests.v4(255, 255, 255, 255), sourceName: "x")
        let out = machine.receive(.indirectPing(request), from: Self.spoofer, now: .zero)
        #expect(Self.sends(out).isEmpty && machine.relays.isEmpty)
        #expect(Self.refusals(out).map(\.field) == ["indirect ping source address"])
    }

    @Test func aValidIndirectPing_isStillRelayed() {
        var machine = MembershipRuleTests.machine(others: 2)
        let request = IndirectPing(sequenceNumber: 7, target: MembershipRuleTests.peer(2), targetName: "p2", wantsNack: true)
        let out = machine.receive(.indirectPing(request), from: MembershipRuleTests.peer(3), now: .zero)
        #expect(Self.sends(out) == [MembershipRuleTests.peer(2)])
        #expect(Self.refusals(out).isEmpty)
    }

    @Test func aPingWithARefusedSource_isNotAnswered() {
        var machine = MembershipRuleTests.machine(others: 1)
        let ping = Ping(sequenceNumber: 3, target: "me", source: AddressRuleTests.v4(224, 0, 0, 1), sourceName: "p2")
        let out = machine.receive(.ping(ping), from: MembershipRuleTests.peer(2), now: .zero)
        #expect(Self.sends(out).isEmpty)
        #expect(Self.refusals(out).first?.problem == .multicast)
    }

    @Test(arguments: invalid)
    func anAliveNamingARefusedAddress_addsNoMember(address: NodeAddress) {
        var machine = MembershipRuleTests.machine(others: 1)
        let alive = Alive(incarnation: 1, node: "stranger", address: address, meta: [], versions: .rumor)
        let out = machine.receive(.alive(alive), from: Self.spoofer, now: .zero)
        #expect(machine.members["stranger"] == nil)
        #expect(machine.pendingBroadcasts == 0 || !Self.sends(out).contains(address), "it is not gossiped on")
        #expect(Self.refusals(out).map(\.field) == ["alive address"])
    }

    @Test func anAliveMovingAKnownMemberToARefusedAddress_changesNothing() {
        var machine = MembershipRuleTests.machine(others: 1)
        let before = machine.members["p2"]
        let alive = Alive(incarnation: 9, node: "p2", address: AddressRuleTests.v4(255, 255, 255, 255), meta: [], versions: .rumor)
        let out = machine.receive(.alive(alive), from: Self.spoofer, now: .zero)
        #expect(machine.members["p2"] == before)
        #expect(Self.refusals(out).count == 1)
    }

    @Test func aPushPullDropsOnlyTheRecordsWithRefusedAddresses() {
        var machine = MembershipRuleTests.machine(others: 1)
        func record(_ name: String, _ address: NodeAddress) -> PushNodeState {
            PushNodeState(name: name, address: address, meta: [], incarnation: 1, state: .alive, versions: .rumor)
        }
        let remote = PushPull(
            join: false,
            nodes: [
                record("good", AddressRuleTests.v4(10, 0, 0, 9)), record("zero-port", AddressRuleTests.v4(10, 0, 0, 10, port: 0)),
                record("everyone", AddressRuleTests.v4(255, 255, 255, 255)), record("v6", AddressRuleTests.v6([0x20, 0x01])),
            ])
        let (_, out) = machine.receivePushPull(remote, from: MembershipRuleTests.peer(2), now: .zero)
        #expect(machine.members["good"] != nil)
        #expect(machine.members["zero-port"] == nil && machine.members["everyone"] == nil && machine.members["v6"] == nil)
        #expect(Set(Self.refusals(out).map(\.address.port)) == [0, 7946] && Self.refusals(out).count == 3)
        let reply = machine.receivePushPullReply(remote, from: MembershipRuleTests.peer(2), now: .zero)
        #expect(Self.refusals(reply).count == 3, "a seed's answer is checked the same way")
    }

    @Test func theNodeCountsEveryRefusal_andLogsThemPaced() {
        var node = NodeRuleTests.node()
        let time = { (seconds: Double) in NodeTime(now: MembershipRuleTests.at(seconds), wallMilliseconds: 1_000) }
        let request = IndirectPing(sequenceNumber: 7, target: AddressRuleTests.v4(127, 0, 0, 1, port: 0), targetName: "x", wantsNack: false)
        var logs: [NodeLog] = []
        for index in 0..<100 {
            let out = node.receive([.membership(.indirectPing(request))], from: Self.spoofer, at: time(Double(index) * 0.01))
            #expect(!out.contains { if case .send = $0 { true } else { false } })
            logs += out.compactMap { if case .log(let line) = $0 { line } else { nil } }
        }
        #expect(node.counters[.addressesRefused] == 100)
        #expect(logs.count == 1, "one line at once, the next after 10 s: \(logs)")
        #expect(logs.first?.metadata["problem"] == "port 0" && logs.first?.metadata["field"] == "indirect ping target")
        let later = node.receive([.membership(.indirectPing(request))], from: Self.spoofer, at: time(11))
        let line = later.compactMap { if case .log(let line) = $0 { line } else { nil } }.first
        #expect(line?.metadata["refused_since_last_line"] == "100" && line?.metadata["refused_total"] == "101")
    }

    @Test func aDatagramFromARefusedSender_isDroppedWhole() {
        var node = NodeRuleTests.node()
        let ping = Ping(sequenceNumber: 1, target: "")
        let out = node.receive([.membership(.ping(ping))], from: AddressRuleTests.v4(127, 0, 0, 1, port: 0), at: NodeTime(now: .zero, wallMilliseconds: 1))
        #expect(!out.contains { if case .send = $0 { true } else { false } })
        #expect(node.counters[.addressesRefused] == 1)
    }

    @Test func aSerfQueryWithARefusedReplyAddress_andARelayToOne_areDropped() {
        var node = NodeRuleTests.node()
        let time = NodeTime(now: .zero, wallMilliseconds: 1)
        let query = SerfQuery(
            time: 1, id: 1, address: [255, 255, 255, 255], port: 7946, sourceNode: "x", flags: SerfQuery.ackFlag, timeout: .seconds(5),
            name: "q")
        let out = node.receive([.serf(.query(query))], from: Self.spoofer, at: time)
        #expect(!out.contains { if case .query = $0 { true } else if case .serfDirect = $0 { true } else { false } }, "\(out)")
        let relay = SerfRelay(destination: AddressRuleTests.v4(10, 0, 0, 5, port: 0), destinationName: "x", message: [1])
        let relayed = node.receive([.serf(.relay(relay))], from: Self.spoofer, at: time)
        #expect(!relayed.contains { if case .serfForward = $0 { true } else { false } })
        #expect(node.counters[.addressesRefused] == 2)
    }
}
