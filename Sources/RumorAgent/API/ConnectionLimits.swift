import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import RumorAPI

/// The API's connections and streams, shared by every connection's `ConnectionGuard` (they run on
/// several event loops): the `ConnectionTable` under a lock, each connection's "client gone"
/// signal for the streams, and the refusals, logged and counted.
///
/// Every limit the API applies is loud: a log line (the 1st, 2nd, 4th, 8th… time for each
/// reason, with the count, so an attack does not flood the log), the counter
/// `rumor_api_refused{reason}`, and an error answer where a client is still there to read one.
final class APIConnections: Sendable {
    let limits: APILimits
    let logger: Logger
    private let table: NIOLockedValueBox<ConnectionTable<any Channel>>
    private let state = NIOLockedValueBox(Shared())
    private let connectionsGauge = Gauge(label: "rumor_api_connections")
    private let streamsGauge = Gauge(label: "rumor_api_streams")

    private struct Shared {
        var nextID = 0
        var gone: [ObjectIdentifier: EventLoopFuture<Void>] = [:]
        var refusals: [String: UInt64] = [:]
        var counters: [String: Counter] = [:]
    }

    /// - Parameter limits: the effective limits (`maxConnections` already fitted to the open-file limit).
    init(limits: APILimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
        table = NIOLockedValueBox(ConnectionTable(maximumConnections: limits.maxConnections, maximumStreams: limits.maxStreams))
    }

    /// Admits a new connection (see `ConnectionTable.open`), closing the connection it replaces.
    /// - Returns: the connection's id, or nil when it is refused (answer 503 and close it).
    func open(_ channel: any Channel, clientGone: EventLoopFuture<Void>) -> Int? {
        let id = state.withLockedValue { state in
            state.nextID += 1
            state.gone[ObjectIdentifier(channel)] = clientGone
            return state.nextID
        }
        let (admission, count) = table.withLockedValue { table in (table.open(id, channel), table.count) }
        connectionsGauge.record(count)
        switch admission {
        case .admitted:
            return id
        case .admittedClosing(let oldest):
            refused(
                "closed_for_newcomer",
                "the API holds api_max_connections (\(limits.maxConnections)) connections: closed the one waiting longest for a request head to admit a new one",
                ["remote": "\(oldest.remoteAddress.map { "\($0)" } ?? "?")"])
            oldest.close(promise: nil)
            return id
        case .refused:
            forget(id, channel)
            refused(
                "too_many_connections",
                "the API holds api_max_connections (\(limits.maxConnections)) connections, each with a request under way: refused a new one (503)",
                ["remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            return nil
        }
    }

    func receivedHead(_ id: Int) { table.withLockedValue { $0.receivedHead(id) } }

    func answered(_ id: Int) { table.withLockedValue { $0.answered(id) } }

    /// The connection closed; forgets it (again is harmless).
    func close(_ id: Int, _ channel: any Channel) {
        forget(id, channel)
    }

    private func forget(_ id: Int, _ channel: any Channel) {
        let count = table.withLockedValue { table in
            table.close(id)
            return table.count
        }
        _ = state.withLockedValue { $0.gone.removeValue(forKey: ObjectIdentifier(channel)) }
        connectionsGauge.record(count)
    }

    /// The connection a request came on, for the streams (nil for a channel this server does not hold).
    func connection(for channel: any Channel) -> APIConnection? {
        state.withLockedValue { $0.gone[ObjectIdentifier(channel)] }.map { APIConnection(connections: self, clientGone: $0) }
    }

    /// Takes a stream slot.
    /// - Throws: `AgentError` `too_many_streams` when `api_max_streams` are open (logged, counted).
    func openStream() throws(AgentError) -> StreamSlot {
        let (opened, streams) = table.withLockedValue { table in (table.openStream(), table.streams) }
        guard opened else {
            refused("too_many_streams", "the API holds api_max_streams (\(limits.maxStreams)) streams: refused a new one (503)", [:])
            throw AgentError(
                code: .tooManyStreams,
                message: "this agent already serves \(limits.maxStreams) streams (watch, events, monitor, query), its api_max_streams",
                hint: "close streams you no longer read, share one watch among readers (a wider prefix), or raise --api-max-streams")
        }
        streamsGauge.record(streams)
        return StreamSlot(self)
    }

    fileprivate func closeStream() {
        let streams = table.withLockedValue { table in
            table.closeStream()
            return table.streams
        }
        streamsGauge.record(streams)
    }

    /// Logs and counts a limit applied: a warning the 1st, 2nd, 4th, 8th… time for `reason`.
    func refused(_ reason: String, _ message: @autoclosure () -> String, _ metadata: @autoclosure () -> Logger.Metadata) {
        let (count, counter) = state.withLockedValue { state in
            state.refusals[reason, default: 0] += 1
            if state.counters[reason] == nil {
                state.counters[reason] = Counter(label: "rumor_api_refused", dimensions: [("reason", reason)])
            }
            return (state.refusals[reason]!, state.counters[reason]!)
        }
        counter.increment()
        guard count & (count - 1) == 0 else { return }
        var metadata = metadata()
        metadata["reason"] = "\(reason)"
        metadata["times"] = "\(count)"
        logger.warning("\(message()) (logged the 1st, 2nd, 4th… time)", metadata: metadata)
    }

    /// How many times each limit was applied, by reason (for tests and `rumor info`-like views).
    var refusalCounts: [String: UInt64] { state.withLockedValue { $0.refusals } }
}

/// The connection a request came on, as its handler sees it (`APIConnection.current`).
struct APIConnection: Sendable {
    let connections: APIConnections
    /// Succeeds when the client half-closes or the connection closes: a stream then ends.
    let clientGone: EventLoopFuture<Void>

    /// Set by the router around each route's handler; nil when the router runs without a server
    /// (tests driving it directly).
    @TaskLocal static var current: APIConnection?
}

/// A stream slot taken from `api_max_streams`, given back when the stream ends (or the answer
/// holding it is dropped unwritten).
final class StreamSlot: Sendable {
    private let connections: APIConnections
    private let released = NIOLockedValueBox(false)

    fileprivate init(_ connections: APIConnections) {
        self.connections = connections
    }

    func release() {
        guard !released.withLockedValue({ was in defer { was = true }; return was }) else { return }
        connections.closeStream()
    }

    deinit { release() }
}
