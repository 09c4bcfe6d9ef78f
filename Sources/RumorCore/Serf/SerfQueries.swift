/// Identifies a query: its Lamport time and random ID (Serf matches answers by both).
public struct QueryID: Sendable, Hashable, CustomStringConvertible {
    public var time: LamportTime
    public var id: UInt32

    public init(time: LamportTime, id: UInt32) {
        self.time = time
        self.id = id
    }

    public init(_ query: SerfQuery) {
        self.init(time: query.time, id: query.id)
    }

    public var description: String { "\(time)/\(id)" }
}

/// Serf's queries as one node sees them (docs/serf-wire.md §6): the queries it received and may
/// still answer (once each, before their deadline), and the queries it sent and collects
/// acknowledgements and responses for (each responder counted once, relayed copies included).
/// Pure: the clock and randomness come from the caller.
public struct SerfQueries: Sendable {
    /// Serf's `QuerySizeLimit` and `QueryResponseSizeLimit`: an encoded query, or answer, with
    /// its type byte.
    public static let sizeLimit = 1024
    /// Serf's `QueryTimeoutMult`: the default timeout is gossip interval × 16 × ceil(log10(N + 1)).
    public static let timeoutMultiplier = 16
    /// Queries whose deadline has not passed, kept to answer; past this the oldest is forgotten.
    static let answerableLimit = 1024
    /// Queries of this node still collecting answers.
    static let outgoingLimit = 256

    public enum Directive: Sendable, Hashable {
        /// Send an acknowledgement or response to the querier (`name` its node), and
        /// `relayFactor` copies through other members.
        case respond(SerfQueryResponse, to: NodeAddress, name: String, relayFactor: UInt8)
        /// A query this node passes the filters of: for its handlers.
        case deliver(SerfQuery)
        /// One of Serf's internal queries (`_serf_…`) that needs the driver (the key queries).
        case deliverInternal(SerfQuery)
        /// An acknowledgement or a response to one of this node's queries.
        case answered(QueryID, SerfQueryResponse)
        case broadcast(SerfQuery)
    }

    /// A received query this node may still answer.
    struct Answerable: Sendable {
        var address: NodeAddress
        var sourceNode: String
        var relayFactor: UInt8
        var deadline: Instant
        var answered = false
    }

    /// A query of this node, collecting answers until its deadline.
    struct Outgoing: Sendable {
        var deadline: Instant
        var acks: Set<String> = []
        var responders: Set<String> = []
    }

    public private(set) var clock = SerfLayer.Clock()
    /// The IDs seen per Lamport time, to handle (and relay) each query once.
    private var seen: [LamportTime: Set<UInt32>] = [:]
    private var answerable: [QueryID: Answerable] = [:]
    private var outgoing: [QueryID: Outgoing] = [:]
    private var random: SeededRandom

    init(seed: UInt64) {
        random = SeededRandom(seed: seed)
    }

    /// The internal queries Rumor answers beyond the acknowledgement (the key queries).
    public static let keyQueries: Set<String> = ["_serf_install-key", "_serf_use-key", "_serf_remove-key", "_serf_list-keys"]

    /// Whether a node named `name` with `tags` passes every filter (Serf: node names listed; a
    /// tag's value, `""` when absent, matching the unanchored regular expression).
    public static func passes(_ filters: [SerfFilter], name: String, tags: [String: String]) -> Bool {
        for filter in filters {
            switch filter {
            case .nodes(let names):
                guard names.contains(name) else { return false }
            case .tag(let tag, let expression):
                guard let regex = try? Regex(expression), (try? regex.firstMatch(in: tags[tag] ?? "")) != nil else { return false }
            }
        }
        return true
    }

    // MARK: - Sending

    /// Starts a query of this node: it is handled here first (acknowledged and delivered if this
    /// node passes its filters), then gossiped; answers are collected until `now + timeout`.
    mutating func start(
        name: String, payload: [UInt8], filters: [SerfFilter], wantsAck: Bool, relayFactor: UInt8, timeout: Duration,
        from local: (name: String, address: NodeAddress, tags: [String: String]), now: Instant
    ) -> (SerfQuery, [Directive]) {
        let time = clock.time
        _ = clock.increment()
        let query = SerfQuery(
            time: time, id: UInt32(truncatingIfNeeded: random.next() & 0x7fff_ffff), address: local.address.ip,
            port: local.address.port, sourceNode: local.name, filters: filters, flags: wantsAck ? SerfQuery.ackFlag : 0,
            relayFactor: relayFactor, timeout: timeout, name: name, payload: payload)
        if outgoing.count >= Self.outgoingLimit, let oldest = outgoing.min(by: { $0.value.deadline < $1.value.deadline }) {
            outgoing[oldest.key] = nil
        }
        outgoing[QueryID(query)] = Outgoing(deadline: now + timeout)
        return (query, receive(query, local: local, now: now))
    }

    /// An answer to one of this node's queries; nil when it is late, unknown or a duplicate.
    mutating func receive(_ response: SerfQueryResponse, now: Instant) -> [Directive] {
        let key = QueryID(time: response.time, id: response.id)
        guard var query = outgoing[key], now <= query.deadline else { return [] }
        let new = response.isAck ? query.acks.insert(response.from).inserted : query.responders.insert(response.from).inserted
        guard new else { return [] }
        outgoing[key] = query
        return [.answered(key, response)]
    }

    /// Witnesses a peer's query clock (push-pull).
    mutating func witness(_ time: LamportTime) {
        clock.witness(time)
    }

    /// The query's deadline passed: stop collecting. False when it was not collecting.
    mutating func end(_ key: QueryID) -> Bool {
        outgoing.removeValue(forKey: key) != nil
    }

    // MARK: - Receiving

    /// A query from the swarm (or this node's own): handled once, answered with an
    /// acknowledgement when asked and the filters pass, delivered, and relayed unless it says not to.
    mutating func receive(
        _ query: SerfQuery, local: (name: String, address: NodeAddress, tags: [String: String]), now: Instant
    ) -> [Directive] {
        clock.witness(query.time)
        guard clock.isRecent(query.time) else { return [] }
        guard seen[query.time, default: []].insert(query.id).inserted else { return [] }
        if seen.count > SerfLayer.eventBuffer, let oldest = seen.keys.min() { seen[oldest] = nil }
        var out: [Directive] = []
        if Self.passes(query.filters, name: local.name, tags: local.tags) {
            let address = NodeAddress(ip: query.address, port: query.port)
            if query.wantsAck {
                let ack = SerfQueryResponse(time: query.time, id: query.id, from: local.name, isAck: true)
                out.append(.respond(ack, to: address, name: query.sourceNode, relayFactor: query.relayFactor))
            }
            if query.name.hasPrefix("_serf_") {
                if Self.keyQueries.contains(query.name) { out.append(.deliverInternal(query)) }
            } else {
                out.append(.deliver(query))
            }
            remember(QueryID(query), Answerable(address: address, sourceNode: query.sourceNode, relayFactor: query.relayFactor, deadline: now + query.timeout), now: now)
        }
        if query.rebroadcasts { out.append(.broadcast(query)) }
        return out
    }

    /// This node's response to a query it received (a handler's output, a key query's answer).
    /// - Throws: a reason when it cannot be sent: unknown query, past its deadline, or answered.
    mutating func respond(to key: QueryID, payload: [UInt8], from localName: String, now: Instant) throws(QueryRefusal) -> Directive {
        guard var query = answerable[key] else { throw .unknown }
        guard now <= query.deadline else {
            answerable[key] = nil
            throw .pastDeadline
        }
        guard !query.answered else { throw .alreadyAnswered }
        query.answered = true
        answerable[key] = query
        let response = SerfQueryResponse(time: key.time, id: key.id, from: localName, isAck: false, payload: payload)
        return .respond(response, to: query.address, name: query.sourceNode, relayFactor: query.relayFactor)
    }

    public enum QueryRefusal: Error, Sendable, Hashable, CustomStringConvertible {
        case unknown, pastDeadline, alreadyAnswered

        public var description: String {
            switch self {
            case .unknown: "the query is unknown or long past"
            case .pastDeadline: "the query's deadline has passed"
            case .alreadyAnswered: "this node already answered the query"
            }
        }
    }

    private mutating func remember(_ key: QueryID, _ query: Answerable, now: Instant) {
        if answerable.count >= Self.answerableLimit {
            answerable = answerable.filter { $0.value.deadline >= now }
            if answerable.count >= Self.answerableLimit, let oldest = answerable.min(by: { $0.value.deadline < $1.value.deadline }) {
                answerable[oldest.key] = nil
            }
        }
        answerable[key] = query
    }
}

extension SerfQueries {
    /// Up to `count` of `candidates`, chosen at random (the relays of an answer).
    mutating func pick(_ count: Int, of candidates: [NodeAddress]) -> [NodeAddress] {
        var pool = candidates
        pool.shuffle(using: &random)
        return Array(pool.prefix(count))
    }
}
