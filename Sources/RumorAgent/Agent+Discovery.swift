import RumorCore

/// `--discover`: finding the swarm's nodes on the local network by its name.
extension Agent {
    /// Opens multicast DNS for `--discover` (before the agent reports it started, so a host
    /// without a multicast route fails at once) and answers questions for the swarm from then on.
    func openDiscovery() async throws {
        discovery = try await SwarmDiscovery.start(
            swarm: configuration.swarm, nodeName: node.name, advertised: advertised, group: group, logger: logger
        ) { [weak self] found in
            Task { await self?.discovered(found) }
        }
    }

    /// Asks for the swarm's nodes at once, then every 5 s while this node knows no other,
    /// every 60 s after (Serf asks every 60 s).
    func browse(_ discovery: SwarmDiscovery) {
        Task { [weak self] in
            while let self, await !self.stopped {
                discovery.browse()
                try? await Task.sleep(for: await self.isAlone ? .seconds(5) : .seconds(60))
            }
        }
    }

    private var isAlone: Bool {
        node.membership.members.values.allSatisfy { $0.name == node.name || $0.state != .alive }
    }

    /// Joins the discovered nodes this node does not know alive yet (never itself).
    private func discovered(_ addresses: [NodeAddress]) {
        let known = Set(node.membership.members.values.filter { $0.state == .alive }.map(\.address))
        let fresh = Array(Set(addresses).subtracting(known).subtracting([advertised])).sorted()
        guard !fresh.isEmpty, !stopped, !node.membership.hasLeft else { return }
        counters.add("discovered_nodes", UInt64(fresh.count))
        logger.info("discovered nodes of the swarm", metadata: ["addresses": "\(fresh.map(\.description).joined(separator: ","))"])
        execute(node.join(seeds: fresh, command: newCommandID(), at: time))
    }
}
