import RumorSimulation
import Testing

@testable import RumorCore

/// Whole clusters of real nodes on the virtual-time harness, scripted step by step.
struct ClusterScenarioTests {
    @Test func fiveNodesJoiningThroughOneSeed_allSeeFiveAlive() {
        var cluster = TestCluster.scripted(5)
        let took = cluster.run(within: .seconds(5), until: \.allAlive)
        #expect(took != nil, "all five see five alive within 5 s")
    }

    @Test func crashedNode_isDeclaredDeadByAllWithinTheLifeguardBound() {
        var cluster = TestCluster.scripted(5)
        cluster.run(for: .seconds(3))
        cluster.crash(4)
        // max suspicion timeout (24 s at N = 5) + 2 probe intervals
        let took = cluster.run(within: .seconds(26)) { cluster in
            (0..<4).allSatisfy { cluster.state(of: 4, seenBy: $0) == .dead }
        }
        #expect(took != nil)
        #expect((took ?? .seconds(99)) < .seconds(12), "confirmations from independent probers shorten detection: took \(String(describing: took))")
    }

    /// A partition long enough for each side to declare the other dead, and for the deaths to
    /// be reaped, heals once the network does: reconnect offers push-pulls to failed members.
    @Test(arguments: [true, false])
    func whenPartitionHeals_bothSidesSeeEveryoneAliveAgain(reconnect: Bool) {
        var settings = MembershipSettings.lan
        if !reconnect { settings.reconnectInterval = .zero }
        var cluster = TestCluster.scripted(6, settings: settings)
        cluster.run(for: .seconds(3))
        cluster.isolate([3, 4, 5])
        cluster.run(for: .seconds(60))
        #expect(cluster.state(of: 4, seenBy: 0) != .alive, "each side declares the other dead")
        cluster.network.heal()
        let took = cluster.run(within: .seconds(30), until: \.allAlive)
        if reconnect {
            #expect(took != nil && took! <= .seconds(5), "healed in \(String(describing: took))")
        } else {
            #expect(took == nil, "without reconnect (plain memberlist) the halves stay apart")
        }
    }

    @Test func gracefulLeave_showsAsLeftEverywhere() {
        var cluster = TestCluster.scripted(5)
        cluster.run(for: .seconds(3))
        let leave = cluster.leave(3)
        let took = cluster.run(within: .seconds(2)) { cluster in
            [0, 1, 2, 4].allSatisfy { cluster.state(of: 3, seenBy: $0) == .left }
        }
        #expect(took != nil)
        cluster.run(for: NodeSettings().leaveTimeout)
        #expect(cluster.observer.results[leave] == .left, "the leave command completes once the news has spread")
    }

    @Test func partitionedNode_isSuspectedThenRefutesAfterHeal() {
        var cluster = TestCluster.scripted(6)
        cluster.run(for: .seconds(3))
        let incarnation = cluster.nodes[5].membership.localMember.incarnation
        cluster.isolate([5])
        _ = cluster.run(within: .seconds(10)) { $0.state(of: 5, seenBy: 0) == .suspect }
        cluster.network.heal()
        let took = cluster.run(within: .seconds(20)) { cluster in
            (0..<5).allSatisfy { cluster.state(of: 5, seenBy: $0) == .alive }
        }
        #expect(took != nil, "n5 refutes and is alive everywhere again")
        #expect(cluster.nodes[5].membership.localMember.incarnation > incarnation)
    }

    @Test func tenPercentLoss_twentyNodes_noFalseDeaths() {
        var cluster = TestCluster.scripted(20)
        cluster.run(for: .seconds(5))
        #expect(cluster.allAlive)
        cluster.network.loss = 0.10
        cluster.observer.events.removeAll()
        cluster.run(for: .seconds(60))
        let falseDeaths = cluster.observer.events.filter { $0.event.kind == .failed }
        #expect(falseDeaths.isEmpty, "false dead declarations: \(falseDeaths.map { "n\($0.seenBy) → \($0.event.member.name)" })")
    }
}
