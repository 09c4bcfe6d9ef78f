import Testing

@testable import RumorCore

/// Whole clusters of real `Membership` machines on a virtual network.
struct ClusterScenarioTests {
    static func cluster(_ count: Int, settings: MembershipSettings = .lan) -> TestCluster {
        var cluster = TestCluster()
        cluster.add("n0", index: 0, settings: settings)
        for index in 1..<count {
            cluster.add("n\(index)", index: index, settings: settings, join: "n0")
        }
        return cluster
    }

    static func allAlive(_ cluster: TestCluster, count: Int) -> Bool {
        cluster.nodes.values.allSatisfy { node in
            node.members.count == count && node.members.values.allSatisfy { $0.state == .alive }
        }
    }

    @Test func fiveNodesJoiningThroughOneSeed_allSeeFiveAlive() {
        var cluster = Self.cluster(5)
        let took = cluster.runUntil(within: .seconds(5)) { Self.allAlive($0, count: 5) }
        #expect(took != nil, "all five see five alive within 5 s")
    }

    @Test func crashedNode_isDeclaredDeadByAllWithinTheLifeguardBound() {
        var cluster = Self.cluster(5)
        cluster.run(for: .seconds(3))
        cluster.crashed.insert("n4")
        // max suspicion timeout (24 s at N = 5) + 2 probe intervals
        let took = cluster.runUntil(within: .seconds(26)) { cluster in
            (0..<4).allSatisfy { cluster.state(of: "n4", seenBy: "n\($0)") == .dead }
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
        var cluster = Self.cluster(6, settings: settings)
        cluster.run(for: .seconds(3))
        cluster.partition(["n0", "n1", "n2"], ["n3", "n4", "n5"])
        cluster.run(for: .seconds(60))
        #expect(cluster.state(of: "n4", seenBy: "n0") != .alive, "each side declares the other dead")
        cluster.heal()
        let took = cluster.runUntil(within: .seconds(30)) { Self.allAlive($0, count: 6) }
        if reconnect {
            #expect(took != nil && took! <= .seconds(5), "healed in \(String(describing: took))")
        } else {
            #expect(took == nil, "without reconnect (plain memberlist) the halves stay apart")
        }
    }

    @Test func gracefulLeave_showsAsLeftEverywhere() {
        var cluster = Self.cluster(5)
        cluster.run(for: .seconds(3))
        var leaver = cluster.nodes["n3"]!
        let out = leaver.leave(now: cluster.now)
        cluster.nodes["n3"] = leaver
        cluster.apply(out, at: "n3")
        let took = cluster.runUntil(within: .seconds(2)) { cluster in
            [0, 1, 2, 4].allSatisfy { cluster.state(of: "n3", seenBy: "n\($0)") == .left }
        }
        #expect(took != nil)
    }

    @Test func partitionedNode_isSuspectedThenRefutesAfterHeal() {
        var cluster = Self.cluster(6)
        cluster.run(for: .seconds(3))
        let incarnation = cluster.nodes["n5"]!.localMember.incarnation
        cluster.partition(["n5"], ["n0", "n1", "n2", "n3", "n4"])
        _ = cluster.runUntil(within: .seconds(10)) { $0.state(of: "n5", seenBy: "n0") == .suspect }
        cluster.heal()
        let took = cluster.runUntil(within: .seconds(20)) { cluster in
            (0..<5).allSatisfy { cluster.state(of: "n5", seenBy: "n\($0)") == .alive }
        }
        #expect(took != nil, "n5 refutes and is alive everywhere again")
        #expect(cluster.nodes["n5"]!.localMember.incarnation > incarnation)
    }

    @Test func tenPercentLoss_twentyNodes_noFalseDeaths() {
        var cluster = Self.cluster(20)
        cluster.run(for: .seconds(5))
        #expect(Self.allAlive(cluster, count: 20))
        cluster.loss = 0.10
        cluster.events.removeAll()
        cluster.run(for: .seconds(60))
        let falseDeaths = cluster.events.filter { $0.2.kind == .failed }
        #expect(falseDeaths.isEmpty, "false dead declarations: \(falseDeaths.map { "\($0.1) → \($0.2.member.name)" })")
    }
}
