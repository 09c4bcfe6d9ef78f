import DequeModule

/// Which API connections are open, which of them wait for a request head, and how many streams
/// are open: the rules behind `api_max_connections` and `api_max_streams`, with no sockets.
///
/// A connection waits for a head from the moment it opens and again after each answer (kept
/// alive). Past the limit, a new connection is admitted by closing the one that has waited
/// longest: a client holding sockets half-sent (slowloris) loses its oldest, while a request
/// under way or a stream is never cut for a newcomer. When no connection waits, the newcomer
/// is refused. `Handle` is whatever closes a connection (a NIO `Channel` in the agent).
struct ConnectionTable<Handle> {
    /// What `open` decided.
    enum Admission {
        case admitted
        /// Admitted once `Handle` (the longest waiting for a head) is closed; it is already forgotten.
        case admittedClosing(Handle)
        /// Every connection has a request under way: answer 503 and close the newcomer.
        case refused
    }

    let maximumConnections: Int
    let maximumStreams: Int
    private var connections: [Int: (handle: Handle, waitingSince: UInt64?)] = [:]
    /// Connections in the order they began to wait for a head, with the turn they began at;
    /// entries that no longer wait, or wait since a later turn, are skipped when popped.
    private var waiting: Deque<(id: Int, turn: UInt64)> = []
    private var turn: UInt64 = 0
    private(set) var streams = 0

    init(maximumConnections: Int, maximumStreams: Int) {
        self.maximumConnections = maximumConnections
        self.maximumStreams = maximumStreams
    }

    var count: Int { connections.count }

    /// A connection opened; it waits for its first request head.
    mutating func open(_ id: Int, _ handle: Handle) -> Admission {
        var admission = Admission.admitted
        if connections.count >= maximumConnections {
            guard let oldest = popLongestWaiting() else { return .refused }
            connections[oldest.id] = nil
            admission = .admittedClosing(oldest.handle)
        }
        connections[id] = (handle, nil)
        startWaiting(id)
        return admission
    }

    /// A request head arrived: the connection no longer waits, and is not closed for a newcomer.
    mutating func receivedHead(_ id: Int) {
        connections[id]?.waitingSince = nil
    }

    /// The answer is written and the connection kept alive: it waits for a head again.
    mutating func answered(_ id: Int) {
        guard connections[id] != nil else { return }
        startWaiting(id)
    }

    /// The connection closed (whoever closed it); unknown ids are ignored.
    mutating func close(_ id: Int) {
        connections[id] = nil
        if connections.isEmpty { waiting.removeAll() }
    }

    /// Takes a stream slot; false when `maximumStreams` are open.
    mutating func openStream() -> Bool {
        guard streams < maximumStreams else { return false }
        streams += 1
        return true
    }

    mutating func closeStream() {
        streams = max(0, streams - 1)
    }

    private mutating func startWaiting(_ id: Int) {
        turn += 1
        connections[id]?.waitingSince = turn
        waiting.append((id, turn))
        // Stale entries (answered, closed) would pile up on a busy keep-alive connection.
        if waiting.count > 4 * maximumConnections + 64 {
            waiting = Deque(waiting.filter { connections[$0.id]?.waitingSince == $0.turn })
        }
    }

    private mutating func popLongestWaiting() -> (id: Int, handle: Handle)? {
        while let entry = waiting.popFirst() {
            if let connection = connections[entry.id], connection.waitingSince == entry.turn {
                return (entry.id, connection.handle)
            }
        }
        return nil
    }
}

extension ConnectionTable: Sendable where Handle: Sendable {}
extension ConnectionTable.Admission: Sendable where Handle: Sendable {}
