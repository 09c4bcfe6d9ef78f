import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import RumorAgent

struct PacketTransportTests {
    /// Under a partition the OUTPUT DROP rule fails nearly every send with EPERM, and NIO closes
    /// the socket each time. Every rebind must take the node's own port again, never a random one
    /// (the swarm would then reach nothing), however soon after its bind the fresh socket fails.
    /// A send to port 0 fails the same way (EINVAL) without anything leaving the machine.
    @Test func aSocketThatKeepsFailingIsBoundAgainOnItsOwnPort() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let reopened = NIOLockedValueBox(0)
        let causes = NIOLockedValueBox<Set<String>>([])
        let transport = try await PacketTransport.bind(
            host: "127.0.0.1", port: 0, group: group,
            onReopen: { error in
                reopened.withLockedValue { $0 += 1 }
                causes.withLockedValue { _ = $0.insert("\(error)") }
                // A slow report, as on a loaded machine: the fresh socket fails meanwhile.
                usleep(2000)
            }
        ) { _, _ in }
        let port = try #require(transport.localAddress?.port)
        let refused = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        // Several senders at once, as the agent's gossip, probes and replication are.
        await withTaskGroup(of: Void.self) { senders in
            for _ in 0..<4 {
                senders.addTask {
                    let start = ContinuousClock.now
                    while ContinuousClock.now - start < .seconds(2) {
                        for _ in 0..<20 { transport.send([1], to: refused) }
                        await Task.yield()
                    }
                }
            }
        }
        // Writes already queued may still close a socket or two: wait until the reopens stop.
        var settled = reopened.withLockedValue { $0 }
        for _ in 0..<100 {
            try await Task.sleep(for: .milliseconds(100))
            let now = reopened.withLockedValue { $0 }
            if now == settled, transport.localAddress != nil { break }
            settled = now
        }
        let reopens = reopened.withLockedValue { $0 }
        #expect(reopens > 10, "the failing sends closed the socket (\(reopens) reopens)")
        #expect(causes.withLockedValue { $0 }.contains { $0.contains("Invalid argument") }, "the send error is reported: \(causes.withLockedValue { $0 })")
        #expect(transport.localAddress?.port == port, "bound again on port \(port) after \(reopens) reopens")

        await transport.close()
    }
}
