#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import RumorAgent
import RumorCore
import RumorWire

struct PacketTransportTests {
    /// Issue 29: a spoofed indirect ping naming port 0 made every relay probe fail with EINVAL,
    /// and NIO closed the socket each time (1,801 rebinds in 15 s). A send the system refuses now
    /// drops that datagram only: the socket stays bound and keeps receiving.
    @Test func aSendTheSystemRefuses_dropsThatDatagramOnly_andTheSocketStaysOpen() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let reopened = NIOLockedValueBox(0)
        let received = NIOLockedValueBox(0)
        let transport = try await PacketTransport.bind(
            host: "127.0.0.1", port: 0, group: group, onReopen: { _ in reopened.withLockedValue { $0 += 1 } }
        ) { _, _ in received.withLockedValue { $0 += 1 } }
        defer { Task { await transport.close() } }
        let port = try #require(transport.localAddress?.port)

        let portZero = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        #expect(transport.send([1], to: portZero) == .dropped(.refused(EINVAL)))
        // Without SO_BROADCAST the system refuses a broadcast (EACCES): nothing leaves the host.
        let broadcast = try SocketAddress(ipAddress: "255.255.255.255", port: 7946)
        #expect(transport.send([1], to: broadcast) == .dropped(.refused(EACCES)))
        let ipv6 = try SocketAddress(ipAddress: "::1", port: 7946)
        #expect(transport.send([1], to: ipv6) == .dropped(.refused(EAFNOSUPPORT)))
        // Several senders at once, as the agent's gossip, probes and replication are.
        await withTaskGroup(of: Void.self) { senders in
            for _ in 0..<4 {
                senders.addTask {
                    for _ in 0..<500 { transport.send([1], to: portZero) }
                }
            }
        }

        let peer = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        defer { peer.close(promise: nil) }
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        try await peer.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: peer.allocator.buffer(bytes: [7])))
        try await waitUntil("the socket still receives", within: .seconds(10)) { received.withLockedValue { $0 } == 1 }
        let peerAddress = try #require(peer.localAddress)
        #expect(transport.send([2], to: peerAddress) == .sent, "and still sends")
        #expect(reopened.withLockedValue { $0 } == 0, "never bound again")
        #expect(transport.localAddress?.port == port)
    }

    /// A socket that really breaks (its channel closes) is bound again on its own port, never a
    /// random one, each time it breaks, later each time while it keeps breaking.
    @Test func aBrokenSocketIsBoundAgainOnItsOwnPort_withGrowingDelays() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let reopens = NIOLockedValueBox<[ContinuousClock.Instant]>([])
        let transport = try await PacketTransport.bind(
            host: "127.0.0.1", port: 0, group: group, onReopen: { _ in reopens.withLockedValue { $0.append(.now) } }
        ) { _, _ in }
        defer { Task { await transport.close() } }
        let port = try #require(transport.localAddress?.port)
        var broke: [ContinuousClock.Instant] = []
        for round in 1...4 {
            broke.append(.now)
            await transport.simulateFatalError()
            try await waitUntil("bound again (\(round))", within: .seconds(20)) { reopens.withLockedValue { $0.count } == round }
            #expect(transport.localAddress?.port == port)
        }
        let delays = zip(broke, reopens.withLockedValue { $0 }).map { $1 - $0 }
        // 10, 20, 40, 80 ms at the least (the first as soon as possible).
        #expect(delays[3] >= .milliseconds(80), "the delay grows while the socket keeps breaking: \(delays)")
        #expect(transport.send([1], to: try SocketAddress(ipAddress: "127.0.0.1", port: port)) == .sent)
    }

    /// The transport checks the node's rule once more before the system sees the address: a
    /// multicast, broadcast or unspecified address, port 0, or another family is never sent to.
    @Test func theSocketTransportRefusesAddressesNoPeerMayName() async throws {
        let handlers = TransportHandlers(onPacket: { _, _ in }, onRequest: { _, _, _ in }, onFailure: { _, _ in }, onRecovered: { _ in })
        let transport = try await SocketTransport.bind(
            host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton, streamTimeout: .seconds(5),
            maximumStreamBytes: 1 << 20, decode: { _ in nil }, handlers: handlers)
        defer { Task { await transport.close() } }
        #expect(transport.send([1], to: NodeAddress(ip: [224, 0, 0, 1], port: 7946)) == .dropped(.address("multicast")))
        #expect(transport.send([1], to: NodeAddress(ip: [255, 255, 255, 255], port: 7946)) == .dropped(.address("broadcast")))
        #expect(transport.send([1], to: NodeAddress(ip: [0, 0, 0, 0], port: 7946)) == .dropped(.address("unspecified")))
        #expect(transport.send([1], to: NodeAddress(ip: [127, 0, 0, 1], port: 0)) == .dropped(.address("port_zero")))
        #expect(transport.send([1], to: NodeAddress(ip: Array(repeating: 0, count: 15) + [1], port: 7946)) == .dropped(.address("wrong_length")))
        #expect(transport.send([1], to: NodeAddress(ip: [127, 0, 0, 1], port: UInt16(transport.port))) == .sent)
    }
}

/// A seed answers a stream it cannot read for a keyring mismatch with an error its peer can
/// tell apart from silence (memberlist does the same).
struct KeyringMismatchReplyTests {
    @Test func aStreamNoKeyDecryptsIsAnsweredWithAnEncryptedError_otherFailuresAreNot() throws {
        let keyring = try Keyring(keys: [Array(repeating: 1, count: 32)])
        let codec = GossipCodec(configuration: AgentConfiguration(name: "seed"), keyring: keyring)
        let reply = try #require(Agent.failureReply(to: WireError(.decryptionFailed, "no installed key decrypts the message"), codec: codec))
        // The joiner with another key cannot read it: that is what it reports.
        let other = GossipCodec(configuration: AgentConfiguration(name: "joiner"), keyring: try Keyring(keys: [Array(repeating: 2, count: 32)]))
        #expect(throws: WireError.self) { _ = try other.streams.decode(reply) }
        let decoded = try #require(try codec.streams.decode(reply))
        guard case .error(let text) = decoded.message else {
            Issue.record("not an error response: \(decoded.message)")
            return
        }
        #expect(text.contains("decrypt"))
        #expect(Agent.failureReply(to: WireError(.encrypted), codec: codec) != nil)
        #expect(Agent.failureReply(to: WireError(.notEncrypted), codec: codec) != nil)
        #expect(Agent.failureReply(to: WireError(.malformed), codec: codec) == nil)
        #expect(Agent.failureReply(to: StreamTransportError.timedOut, codec: codec) == nil)
    }
}
