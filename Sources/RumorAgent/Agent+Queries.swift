import RumorAPI
import RumorCore
import RumorWire

/// Serf's queries on the agent: sending one and streaming its answers, answering with handler
/// output, and Serf's key queries (so `serf keys` rotates Rumor nodes, and `rumor keys` Serf nodes).
extension Agent {
    public func query(_ request: APIRequests.Query) async throws -> (QueryDispatch, AsyncStream<QueryAnswerSnapshot>) {
        let (query, answers) = try startQuery(
            name: request.name, payload: request.payload, filters: request.filters, wantsAck: request.wantsAck,
            relayFactor: request.relayFactor, timeout: request.timeout)
        counters.add("queries_sent")
        let snapshots = AsyncStream<QueryAnswerSnapshot> { continuation in
            let task = Task {
                var acks = 0
                var responses = 0
                for await answer in answers {
                    if answer.isAck { acks += 1 } else { responses += 1 }
                    continuation.yield(QueryAnswerSnapshot(answer))
                }
                continuation.yield(QueryAnswerSnapshot(acks: acks, responses: responses))
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return (QueryDispatch(query), snapshots)
    }

    /// Sends a query; its answers come on the stream, which ends at the query's deadline.
    /// - Throws: `AgentError` `query_too_large` past Serf's 1024 encoded bytes, `left`.
    func startQuery(
        name: String, payload: [UInt8], filters: [SerfFilter], wantsAck: Bool, relayFactor: UInt8, timeout: Duration?
    ) throws(AgentError) -> (SerfQuery, AsyncStream<SerfQueryResponse>) {
        // The query as it will be encoded, with the widest ID and times, to check its size first.
        let probe = SerfQuery(
            time: node.serf.queries.clock.time, id: .max, address: advertised.ip, port: advertised.port, sourceNode: node.name,
            filters: filters, flags: SerfQuery.ackFlag, relayFactor: relayFactor, timeout: timeout ?? .seconds(3600), name: name,
            payload: payload)
        let size = SerfCodec.encode(.query(probe)).count
        guard size <= SerfQueries.sizeLimit else {
            throw AgentError(
                code: .queryTooLarge, message: "the query takes \(size) bytes encoded; Serf's limit is \(SerfQueries.sizeLimit)",
                hint: "send a smaller payload or fewer filters, or put the data in a key and send its name")
        }
        let query: SerfQuery
        let effects: [NodeEffect]
        do {
            (query, effects) = try node.sendQuery(
                name: name, payload: payload, filters: filters, wantsAck: wantsAck, relayFactor: relayFactor, timeout: timeout,
                at: time)
        } catch {
            throw AgentError(error)
        }
        let (answers, continuation) = AsyncStream.makeStream(of: SerfQueryResponse.self, bufferingPolicy: .bufferingNewest(1 << 14))
        queryAnswers[QueryID(query)] = continuation
        execute(effects)
        return (query, answers)
    }

    /// A handler's output for a query this node received: its response.
    func respond(to query: QueryID, with payload: [UInt8]) {
        counters.add("query_responses_sent")
        execute(node.respond(to: query, payload: payload, at: time))
    }

    // MARK: - Serf's key queries

    /// Answers `_serf_install-key`, `_serf_use-key`, `_serf_remove-key` and `_serf_list-keys` as
    /// a Serf agent does (docs/serf-wire.md §7), applying the change to this node's keyring.
    func answerKeyQuery(_ query: SerfQuery) {
        var response = SerfKeyResponse(succeeded: false)
        var key: [UInt8] = []
        if query.name != "_serf_list-keys" {
            guard case .request(let requested)? = try? SerfCodec.decodeKeyMessage(query.payload) else {
                response.message = "malformed key request"
                return answer(query, response)
            }
            key = requested
        }
        let operation: KeyringOperation =
            switch query.name {
            case "_serf_install-key": .install(key)
            case "_serf_use-key": .use(key)
            case "_serf_remove-key": .remove(key)
            default: .list
            }
        if !codec.keyring.isEnabled {
            response.message =
                operation == .list ? "Keyring is empty (encryption not enabled)" : "No keyring to modify (encryption not enabled)"
        } else if !codec.requiresEncryption {
            response.message = "this node still accepts plaintext gossip (moving to encryption)"
        } else {
            counters.add("keyring_requests_answered")
            guard case .response(let keys, let error) = applyKeyring(operation) else { return }
            response.succeeded = error == nil
            response.message = error ?? ""
            if operation == .list {
                response.keys = keys.map(KeyText.encode)
                response.primaryKey = keys.first.map(KeyText.encode) ?? ""
            }
        }
        answer(query, response)
    }

    private func answer(_ query: SerfQuery, _ response: SerfKeyResponse) {
        execute(node.respond(to: QueryID(query), payload: SerfCodec.encode(.response(response)), at: time))
    }

    /// Runs a keyring operation on the swarm's Serf agents (live members that do not replicate):
    /// Serf's key query, addressed to them by name; what each answered.
    func rotateSerfKeyrings(_ operation: KeyringOperation) async -> KeyringTally? {
        // With --protocol memberlist the others are Go memberlist nodes, which know no queries.
        guard configuration.gossipProtocol == .serf else { return nil }
        let serfNodes = node.membership.members.values
            .filter { $0.name != node.name && $0.state == .alive && !Node.replicates($0) }
            .map(\.name).sorted()
        guard !serfNodes.isEmpty else { return nil }
        let (name, key): (String, [UInt8]) =
            switch operation {
            case .list: ("_serf_list-keys", [])
            case .install(let key): ("_serf_install-key", key)
            case .use(let key): ("_serf_use-key", key)
            case .remove(let key): ("_serf_remove-key", key)
            }
        var tally = KeyringTally(nodes: serfNodes.count, responded: 0, failures: [:], keys: [:], primaryKeys: [:])
        guard
            let (_, answers) = try? startQuery(
                name: name, payload: SerfCodec.encode(.request(key: key)), filters: [.nodes(serfNodes)], wantsAck: false,
                relayFactor: 0, timeout: nil)
        else { return tally }
        var waiting = Set(serfNodes)
        for await answer in answers where !answer.isAck && waiting.remove(answer.from) != nil {
            tally.responded += 1
            if case .response(let response)? = try? SerfCodec.decodeKeyMessage(answer.payload) {
                if !response.succeeded { tally.failures[answer.from] = response.message }
                for text in response.keys {
                    if let key = try? KeyText.decode(text) { tally.keys[key, default: 0] += 1 }
                }
                if let primary = try? KeyText.decode(response.primaryKey), !primary.isEmpty { tally.primaryKeys[primary, default: 0] += 1 }
            } else {
                tally.failures[answer.from] = "an answer that is not a key response"
            }
            if waiting.isEmpty { break }
        }
        for name in waiting { tally.failures[name] = "no answer before the query's timeout" }
        return tally
    }
}
