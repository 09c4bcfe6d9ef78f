import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RumorCore
import RumorWire

/// Seeds and trust over Pilot: looking peers up through the daemon, asking for and awaiting
/// mutual trust, the trust poll, and the swarm tag.
extension PilotTransport {
    /// `pilot:HOSTNAME`, `pilot:ADDRESS` or `pilot:ADDRESS:PORT`: looks the node up, asks it
    /// for trust and waits until it is granted.
    func resolveSeed(_ text: String) async throws -> [NodeAddress] {
        let seed = try PilotSeed(text, defaultPort: settings.port)
        guard let control = state.withLockedValue({ $0.control }) else {
            throw AgentError(
                code: .pilotUnavailable, message: "the Pilot daemon is not connected (reconnecting)",
                hint: "check that pilot-daemon runs at \(settings.socketPath); the agent reconnects on its own")
        }
        var address = seed.address
        if let hostname = seed.hostname {
            address = try await lookUp(hostname, on: control)
        }
        guard let address else { throw AgentError.badPilotAddress(text) }
        if address == state.withLockedValue({ $0.address }) { return [NodeAddress(ip: address.bytes, port: seed.port)] }
        try await awaitTrust(address.node, named: seed.hostname ?? "\(address)", on: control)
        return [NodeAddress(ip: address.bytes, port: seed.port)]
    }

    func lookUp(_ hostname: String, on control: PilotSession) async throws -> PilotIPC.Address {
        do {
            let reply = try await control.request(
                PilotIPC.resolve(hostname: hostname), expecting: .resolveHostnameOK, timeout: Self.requestTimeout)
            guard let json = try? JSONSerialization.jsonObject(with: Data(reply.payload)) as? [String: Any],
                let text = json["address"] as? String, let address = PilotIPC.Address(text)
            else { throw PilotError.daemon("a resolve answer without an address") }
            return address
        } catch PilotError.daemon(let message) {
            throw AgentError(
                code: .peerUnknown, message: "no Pilot node is called '\(hostname)' (\(message))",
                hint: "check the name with `pilotctl find \(hostname)`, or give its address: pilot:N:NNNN.HHHH.LLLL")
        }
    }

    /// Asks `node` for a handshake and waits until the daemon lists it as mutually trusted.
    func awaitTrust(_ node: UInt32, named name: String, on control: PilotSession) async throws {
        if state.withLockedValue({ $0.trusted.contains(node) }) { return }
        let started = ContinuousClock.now
        try await askTrust(node, on: control)
        while ContinuousClock.now - started < Self.trustTimeout {
            if try await trustList(on: control)[node] == true { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw AgentError(
            code: .trustRefused,
            message: "Pilot node \(name) did not grant trust within \(Int(Self.trustTimeout.seconds)) s",
            hint: "approve the handshake on that node (`pilotctl approve \(node)`), or run its daemon with -trust-auto-approve")
    }

    func askTrust(_ node: UInt32, on control: PilotSession) async throws {
        state.withLockedValue { $0.asked[node] = .now }
        let note = settings.swarm.isEmpty ? "rumor gossip" : "rumor gossip, swarm \(settings.swarm)"
        do {
            _ = try await control.request(
                PilotIPC.handshake(.request, node: node, text: note), expecting: .handshakeOK, timeout: Self.requestTimeout)
        } catch PilotError.daemon(let message) {
            throw AgentError(
                code: .trustRefused, message: "the Pilot daemon refused a handshake with node \(node): \(message)",
                hint: "check the node with `pilotctl trust` and `pilotctl pending`")
        }
    }

    /// Sending to a node not (yet) trusted: ask it for a handshake, at most every 10 s.
    func askTrustIfNeeded(_ node: UInt32) {
        let ask = state.withLockedValue { state -> PilotSession? in
            guard !state.trusted.contains(node), node != state.address.node else { return nil }
            if let last = state.asked[node], ContinuousClock.now - last < .seconds(10) { return nil }
            state.asked[node] = .now
            return state.control
        }
        guard let control = ask else { return }
        Task { [weak self] in
            do {
                try await self?.askTrust(node, on: control)
            } catch {
                self?.logger.debug("Pilot handshake failed", metadata: ["node": "\(node)", "error": "\(error)"])
            }
        }
    }

    /// The daemon's trust list (node → mutual); refreshes the set of trusted nodes. Asking for
    /// pending handshakes first makes the daemon fetch the ones sent to us.
    @discardableResult
    func trustList(on control: PilotSession) async throws -> [UInt32: Bool] {
        _ = try await control.request(PilotIPC.handshake(.pending), expecting: .handshakeOK, timeout: Self.requestTimeout)
        let reply = try await control.request(PilotIPC.handshake(.trusted), expecting: .handshakeOK, timeout: Self.requestTimeout)
        var list: [UInt32: Bool] = [:]
        if let json = try? JSONSerialization.jsonObject(with: Data(reply.payload)) as? [String: Any],
            let trusted = json["trusted"] as? [[String: Any]]
        {
            for entry in trusted {
                guard let id = (entry["node_id"] as? NSNumber)?.uint32Value else { continue }
                list[id] = (entry["mutual"] as? Bool) ?? false
            }
        }
        state.withLockedValue { $0.trusted = Set(list.keys) }
        return list
    }

    func pollTrust() async throws {
        guard let control = state.withLockedValue({ $0.control }) else { return }
        try await trustList(on: control)
    }

    /// Sets the Pilot tag `rumor-SWARM` (Pilot's tag rules), so the swarm shows in the registry.
    func tagSwarm() async {
        guard let tag = Self.swarmTag(settings.swarm), let control = state.withLockedValue({ $0.control }) else { return }
        do {
            let tags = String(decoding: try JSONSerialization.data(withJSONObject: [tag]), as: UTF8.self)
            _ = try await control.request(PilotIPC.Frame(.setTags, Array(tags.utf8)), expecting: .setTagsOK, timeout: Self.requestTimeout)
            logger.info("tagged this Pilot node with its swarm", metadata: ["tag": "\(tag)"])
        } catch {
            logger.warning("cannot set the Pilot tag for the swarm", metadata: ["tag": "\(tag)", "error": "\(error)"])
        }
    }

    /// `rumor-` and the swarm name in Pilot's tag alphabet (lowercase letters, digits, `-`;
    /// at most 32 characters, starting and ending with a letter or digit); nil without a swarm.
    static func swarmTag(_ swarm: String) -> String? {
        guard !swarm.isEmpty else { return nil }
        let mapped = swarm.lowercased().map { ("a"..."z").contains($0) || ("0"..."9").contains($0) ? $0 : "-" }
        var tag = String(("rumor-" + String(mapped)).prefix(32))
        while tag.hasSuffix("-") { tag.removeLast() }
        return tag
    }
}
