import Logging
@testable import RumorAgent
import RumorCore
import Testing

/// Several real agents in this process, on loopback UDP and TCP.
@Suite(.serialized)
struct ClusterOverUDPTests {
    /// Fast timings so a failure is detected in about a second.
    static var fastSettings: MembershipSettings {
        var settings = MembershipSettings.local
        settings.probeInterval = .milliseconds(200)
        settings.probeTimeout = .milliseconds(100)
        settings.gossipInterval = .milliseconds(50)
        settings.suspicionMultiplier = 2
        settings.suspicionMaxTimeoutMultiplier = 2
        settings.pushPullInterval = .seconds(2)
        // `.local`'s 1 s stream timeout fails a join when the test machine is busy (other suites'
        // CPU-bound tests share the cores); membership timings stay fast.
        settings.streamTimeout = .seconds(10)
        return settings
    }

    struct RunningAgent {
        var agent: Agent
        var task: Task<Void, Error>
        var name: String
    }

    func start(_ name: String, swarm: String = "", join seed: RunningAgent? = nil) async throws -> RunningAgent {
        var configuration = AgentConfiguration(name: name)
        configuration.bindHost = "127.0.0.1"
        configuration.bindPort = 0
        configuration.swarm = swarm
        configuration.membership = Self.fastSettings
        var logger = Logger(label: "test.\(name)")
        logger.logLevel = .warning
        let agent = try Agent(configuration: configuration, logger: logger)
        let task = Task { try await agent.run() }
        // Generous: Swift Testing runs other suites' CPU-bound tests on the same two-thread
        // cooperative pool, which can hold off the agent's start for a while.
        try await waitUntil("\(name) has bound its port", within: .seconds(120)) {
            await agent.advertised.port != 0
        }
        if let seed {
            let address = await seed.agent.advertised
            _ = try await agent.join(["127.0.0.1:\(address.port)"])
        }
        return RunningAgent(agent: agent, task: task, name: name)
    }

    func states(_ agent: Agent) async -> [String: String] {
        Dictionary(uniqueKeysWithValues: await agent.members().map { ($0.name, $0.state) })
    }

    /// NIO closes a datagram channel on a fatal send error (EPERM from a local DROP rule); the
    /// agent must bind it again, or it would be left gossiping over TCP fallbacks only.
    @Test func whenTheUDPSocketClosesOnAnError_itIsBoundAgainAndGossipFlows() async throws {
        let a = try await start("a")
        let b = try await start("b", join: a)
        defer { for agent in [a, b] { agent.task.cancel() } }
        try await waitUntil("both see each other", within: .seconds(30)) {
            let seenByA = await states(a.agent).count
            let seenByB = await states(b.agent).count
            return seenByA == 2 && seenByB == 2
        }
        await a.agent.simulateTransportFailure()
        try await waitUntil("the socket is bound again", within: .seconds(30)) {
            await a.agent.info().counters["udp_socket_reopened"] == 1
        }
        let before = await a.agent.info().counters["packets_received"] ?? 0
        _ = try await a.agent.put(key: "k", value: Array("v".utf8), timeToLive: nil, ephemeral: false, replicas: nil, timeout: .seconds(1))
        try await waitUntil("a write on a reaches b", within: .seconds(30)) {
            await b.agent.get(key: "k")?.value == "v"
        }
        try await waitUntil("a receives datagrams again", within: .seconds(30)) {
            (await a.agent.info().counters["packets_received"] ?? 0) > before + 3
        }
    }

    @Test func agentsJoinedThroughOneSeed_allSeeAllAlive() async throws {
        let seed = try await start("a")
        var agents = [seed]
        for name in ["b", "c", "d"] { agents.append(try await start(name, join: seed)) }
        defer { for agent in agents { agent.task.cancel() } }

        for agent in agents {
            try await waitUntil("\(agent.name) sees 4 alive", within: .seconds(5)) {
                let states = await states(agent.agent)
                return states.count == 4 && states.values.allSatisfy { $0 == "alive" }
            }
        }
    }

    @Test func crashedAgent_isDeclaredDeadBySurvivors() async throws {
        let seed = try await start("a")
        var agents = [seed]
        for name in ["b", "c", "d"] { agents.append(try await start(name, join: seed)) }
        defer { for agent in agents { agent.task.cancel() } }
        for agent in agents {
            try await waitUntil("\(agent.name) sees 4 members", within: .seconds(5)) {
                await states(agent.agent).count == 4
            }
        }

        agents[3].task.cancel()  // no leave: a crash, as far as the others can tell

        // Bound: max suspicion timeout (2 × 2 × 0.2 s × 2 = 1.6 s at N=4) + 2 probe periods + slack.
        for agent in agents.prefix(3) {
            try await waitUntil("\(agent.name) declares d dead", within: .seconds(6)) {
                await states(agent.agent)["d"] == "dead"
            }
        }
    }

    @Test func leavingAgent_isListedAsLeft() async throws {
        let seed = try await start("a")
        var agents = [seed]
        for name in ["b", "c"] { agents.append(try await start(name, join: seed)) }
        defer { for agent in agents { agent.task.cancel() } }
        for agent in agents {
            try await waitUntil("\(agent.name) sees 3 members", within: .seconds(5)) {
                await states(agent.agent).count == 3
            }
        }

        try await agents[2].agent.leave()

        for agent in agents.prefix(2) {
            try await waitUntil("\(agent.name) lists c as left", within: .seconds(2)) {
                await states(agent.agent)["c"] == "left"
            }
        }
    }

    @Test func agentsOfDifferentSwarms_ignoreEachOther() async throws {
        let red = try await start("red", swarm: "red")
        let blue = try await start("blue", swarm: "blue")
        defer {
            red.task.cancel()
            blue.task.cancel()
        }
        let redPort = await red.agent.advertised.port
        await #expect(throws: AgentError.self) {
            _ = try await blue.agent.join(["127.0.0.1:\(redPort)"])
        }
        #expect(await states(red.agent).keys.sorted() == ["red"])
        #expect(await states(blue.agent).keys.sorted() == ["blue"])
        let counters = await red.agent.info().counters
        #expect((counters["dropped_label"] ?? 0) > 0, "red counted blue's stream as another swarm's: \(counters)")
    }
}

/// Polls `condition` every 20 ms until it holds, failing with `description` after `limit`.
func waitUntil(
    _ description: String, within limit: Duration, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out after \(limit) waiting until \(description)", sourceLocation: sourceLocation)
    throw WaitTimeout()
}

struct WaitTimeout: Error {}
