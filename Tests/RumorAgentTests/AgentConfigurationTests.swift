import RumorAgent
import RumorCore
import Testing

/// `AgentConfiguration.validate()`: the one place the rules of a configuration live.
struct AgentConfigurationTests {
    /// The error `change` makes `validate()` throw, nil when the configuration stays valid.
    private func problem(_ change: (inout AgentConfiguration) -> Void) -> AgentError? {
        var configuration = AgentConfiguration(name: "n1")
        change(&configuration)
        do {
            try configuration.validate()
            return nil
        } catch {
            #expect(!error.message.isEmpty && !error.hint.isEmpty)
            return error
        }
    }

    @Test func theDefaultsAreValid() {
        #expect(problem { _ in } == nil)
    }

    @Test func namesAndSwarmsAreBounded() {
        #expect(problem { $0.name = "" }?.code == .badConfig)
        #expect(problem { $0.name = String(repeating: "n", count: 256) }?.code == .badConfig)
        #expect(problem { $0.name = String(repeating: "n", count: 255) } == nil)
        #expect(problem { $0.swarm = String(repeating: "s", count: 256) }?.code == .badConfig)
    }

    @Test func tagsCountTheReplicationTagAndTheirEncoding() {
        // Serf's format: magic, map header, "rumor.kv"="1" (11 bytes), "rumor.gen"=16 hex digits
        // (27 bytes), "x" (2), a str16 value (3 + n).
        let room = AgentConfiguration.maximumMetaBytes - 18 - 27
        #expect(problem { $0.tags = ["x": String(repeating: "a", count: room)] } == nil)
        let tooLong = problem { $0.tags = ["x": String(repeating: "a", count: room + 1)] }
        #expect(tooLong?.code == .badConfig && tooLong?.message.contains("512") == true)
        // The text format of memberlist swarms: "x=…,rumor.gen=…,rumor.kv=1".
        let textRoom = AgentConfiguration.maximumMetaBytes - ",rumor.kv=1".utf8.count - ",rumor.gen=0123456789abcdef".utf8.count - 2
        #expect(problem { $0.gossipProtocol = .memberlist; $0.tags = ["x": String(repeating: "a", count: textRoom)] } == nil)
        #expect(problem { $0.gossipProtocol = .memberlist; $0.tags = ["x": String(repeating: "a", count: textRoom + 1)] } != nil)
    }

    @Test func invalidMembershipSettingsAreBadConfig() {
        #expect(problem { $0.membership.probeInterval = .zero }?.code == .badConfig)
    }

    @Test func sendingPlaintextRequiresAcceptingIt() {
        #expect(problem { $0.encryptionVerifiesOutgoing = false }?.code == .badConfig)
        #expect(problem { $0.encryptionVerifiesOutgoing = false; $0.encryptionVerifiesIncoming = false } == nil)
    }

    @Test func anAPIReachableFromOtherHostsNeedsAToken() {
        let open = problem { $0.apiHost = "0.0.0.0" }
        #expect(open?.code == .badArguments && open?.hint.contains("token") == true)
        #expect(problem { $0.apiHost = "0.0.0.0"; $0.apiToken = "secret" } == nil)
        #expect(problem { $0.apiHost = "localhost" } == nil)
    }

    @Test func relaxedVerificationNeedsEncryption() throws {
        var configuration = AgentConfiguration(name: "n1")
        configuration.encryptionVerifiesIncoming = false
        #expect(throws: AgentError.self) { try configuration.validate(encryptionEnabled: false) }
        try configuration.validate(encryptionEnabled: true)
        try AgentConfiguration(name: "n1").validate(encryptionEnabled: false)
    }
}
