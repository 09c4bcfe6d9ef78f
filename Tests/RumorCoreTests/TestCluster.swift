import RumorCore
import RumorSimulation

/// Scripted clusters of whole `Node`s on the shared virtual-time harness: packets arrive after
/// 1 ms unless lost (seeded) or cut by a partition; push-pull and stream pings complete at once
/// between reachable nodes.
typealias TestCluster = VirtualCluster<EventLog>

extension VirtualCluster where Observer == EventLog {
    /// `count` nodes, `n1`… joining through `n0` at time zero.
    static func scripted(_ count: Int, settings: MembershipSettings = .lan) -> Self {
        var cluster = Self(observer: EventLog(), seed: 99)
        cluster.network.latencyMinimum = .milliseconds(1)
        cluster.network.latencyMeanExtra = .zero
        for index in 0..<count {
            let seeds = NodeSeeds(membership: UInt64(index) &* 7919, replication: UInt64(index) &+ 1)
            cluster.add(settings: NodeSettings(membership: settings), seeds: seeds)
            cluster.start(index)
            if index > 0 { cluster.join(index, through: [0]) }
        }
        return cluster
    }

    /// The state node `observer` holds for node `member`.
    func state(of member: Int, seenBy observer: Int) -> MemberState? {
        nodes[observer].membership.members[Self.name(of: member)]?.state
    }

    /// Whether every node lists `count` members, all alive.
    var allAlive: Bool {
        nodes.allSatisfy { node in
            node.membership.members.count == nodes.count && node.membership.members.values.allSatisfy { $0.state == .alive }
        }
    }

    /// Cuts the nodes in `side` off from the others.
    mutating func isolate(_ side: Set<Int>) {
        network.partition(nodes: nodes.count) { side.contains($0) ? 1 : 0 }
    }
}
