import RumorWire
import Testing

@testable import RumorAgent

/// The parts of the Pilot transport that need no daemon; tests/e2e/test_pilot.py drives the
/// transport against real pilot-daemons.
struct PilotTransportTests {
    @Test func seedsNameAHostOrAnAddress_withAnOptionalPort() throws {
        let host = try PilotSeed("pilot:node-2", defaultPort: 7946)
        #expect(host.hostname == "node-2" && host.address == nil && host.port == 7946)
        #expect(try PilotSeed("pilot:node-2:8000", defaultPort: 7946).port == 8000)
        let address = try PilotSeed("pilot:0:0000.0000.0002", defaultPort: 7946)
        #expect(address.address == PilotIPC.Address(network: 0, node: 2) && address.hostname == nil && address.port == 7946)
        let withPort = try PilotSeed("pilot:1:0001.0000.00FF:9000", defaultPort: 7946)
        #expect(withPort.address == PilotIPC.Address(network: 1, node: 255) && withPort.port == 9000)
    }

    @Test(arguments: ["node-2", "pilot:", "pilot:bad name", "pilot:node:0", "pilot:node:70000", "pilot:0:0000.0000.0002:x", "pilot:a:b:c"])
    func malformedSeedsAreRefusedWithAHint(_ text: String) {
        #expect {
            try PilotSeed(text, defaultPort: 7946)
        } throws: { error in
            guard let error = error as? AgentError else { return false }
            return error.code == .badAddress && error.hint.contains("pilot:")
        }
    }

    @Test func swarmTagsFollowPilotsTagRules() {
        #expect(PilotTransport.swarmTag("") == nil)
        #expect(PilotTransport.swarmTag("demo") == "rumor-demo")
        #expect(PilotTransport.swarmTag("Team:KV_store") == "rumor-team-kv-store")
        let long = PilotTransport.swarmTag(String(repeating: "a", count: 40) + "!")!
        #expect(long.count == 32 && long.hasPrefix("rumor-"))
        #expect(PilotTransport.swarmTag("x--") == "rumor-x")
        for tag in ["rumor-demo", "rumor-team-kv-store", long] {
            #expect(tag.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" })
        }
    }
}
