import NIOCore
import RumorCore
import RumorWire

/// The keyring: applied here (codecs and file), run across the swarm by the node's exchange.
extension Agent {
    public func keyring(_ operation: KeyringOperation) async throws -> KeyringReport {
        guard codec.keyring.isEnabled else {
            throw AgentError(
                code: .encryptionDisabled, message: "this node does not encrypt gossip, so it has no keyring",
                hint: "start every agent with --encrypt KEY (make one with `rumor keygen`) to encrypt the swarm")
        }
        guard codec.requiresEncryption else {
            throw AgentError(
                code: .encryptionMigrating,
                message: "this node still accepts plaintext gossip, so keyring requests could be forged or read",
                hint: "finish the move to encryption first: restart every agent without --encrypt-verify-incoming false")
        }
        let local = applyKeyring(operation)
        if case .response(_, let error?) = local {
            throw AgentError(code: .badKey, message: error, hint: "nothing changed on any node; list the keys with `rumor keys list`")
        }
        let result = await command { node, id, _ in node.rotateKeyring(operation, local: local, command: id) }
        guard case .keyring(var tally) = result else {
            if case .failed(let error) = result { throw AgentError(error) }
            throw AgentError(code: .internal, message: "unexpected keyring result", hint: "report this")
        }
        if let serf = await rotateSerfKeyrings(operation) {
            tally.nodes += serf.nodes
            tally.responded += serf.responded
            tally.failures.merge(serf.failures) { $1 }
            tally.keys.merge(serf.keys, uniquingKeysWith: +)
            tally.primaryKeys.merge(serf.primaryKeys, uniquingKeysWith: +)
        }
        let report = KeyringReport(
            nodes: tally.nodes, responded: tally.responded, failures: tally.failures,
            keys: Dictionary(uniqueKeysWithValues: tally.keys.map { (KeyText.encode($0.key), $0.value) }),
            primaryKeys: Dictionary(uniqueKeysWithValues: tally.primaryKeys.map { (KeyText.encode($0.key), $0.value) }))
        guard tally.failures.isEmpty else {
            throw AgentError(
                code: .keyringPartial,
                message: "\(tally.failures.count) of \(report.nodes) nodes did not apply it: "
                    + tally.failures.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; "),
                hint: "fix or wait for those nodes and run the same command again (it is idempotent)")
        }
        return report
    }

    /// Asks `peer` to run a keyring operation over an encrypted stream; reports to the node.
    func askKeyring(_ operation: KeyringOperation, peer: String, at address: NodeAddress, command: CommandID) async {
        let codec = self.codec.streams
        let request = codec.encode(.user(KeyringCodec.encode(.request(operation))), compress: false)
        let timeout = TimeAmount.nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped)
        var answer: KeyringFrame?
        var failure = "no address"
        if let transport {
            do {
                let reply = try await transport.exchange(
                    request, with: address, timeout: timeout, maximumBytes: 1 << 16, decode: { try codec.decode($0) })
                guard case .user(let payload) = reply, KeyringCodec.isFrame(payload) else {
                    throw AgentError(code: .badAnswer, message: "not a keyring answer", hint: "")
                }
                answer = try KeyringCodec.decode(payload)
            } catch {
                failure = "\(error)"
            }
        }
        execute(node.keyringAnswered(answer, failure: failure, from: peer, command: command))
    }

    /// A keyring request from another node. Answered only when this node requires encryption, so
    /// the request came encrypted and the answer goes back encrypted.
    func answerKeyring(_ payload: [UInt8], from sender: NodeAddress) -> [UInt8]? {
        let frame: KeyringFrame
        do {
            frame = try KeyringCodec.decode(payload)
        } catch {
            dropped(error, from: sender)
            return nil
        }
        guard case .request(let operation) = frame else { return nil }
        let answer: KeyringFrame
        if !codec.keyring.isEnabled {
            answer = .response(keys: [], error: "this node does not encrypt gossip")
        } else if !codec.requiresEncryption {
            answer = .response(keys: [], error: "this node still accepts plaintext gossip (moving to encryption)")
        } else {
            counters.add("keyring_requests_answered")
            answer = applyKeyring(operation)
        }
        return codec.streams.encode(.user(KeyringCodec.encode(answer)), compress: false)
    }

    /// Changes the keyring (the codecs and the file) and answers with the keys now installed.
    func applyKeyring(_ operation: KeyringOperation) -> KeyringFrame {
        let current = codec.keyring
        var keyring = current
        do {
            switch operation {
            case .list: break
            case .install(let key): try keyring.install(key)
            case .use(let key): try keyring.use(key)
            case .remove(let key): try keyring.remove(key)
            }
        } catch {
            return .response(keys: current.keys, error: "\(error)")
        }
        if keyring != current {
            if let keyringPath {
                do {
                    try KeyringFile.save(keyring, to: keyringPath)
                } catch {
                    logger.error("cannot save the keyring", metadata: ["error": "\(error)"])
                    return .response(keys: current.keys, error: "cannot save the keyring: \(error)")
                }
            }
            codecBox.withLockedValue { $0.keyring = keyring }
            logger.notice("keyring changed", metadata: ["operation": "\(operation.name)", "keys": "\(keyring.keys.count)"])
        }
        return .response(keys: keyring.keys, error: nil)
    }
}
