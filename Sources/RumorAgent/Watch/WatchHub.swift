import RumorCore

/// The open watches of an agent: wakes each when the change log grows, and ends them all when
/// the agent stops.
struct WatchHub {
    private var wakeups: [Int: AsyncStream<Void>.Continuation] = [:]
    private var next = 0
    private(set) var ended = false

    /// Registers a watch; returns its id and the stream that wakes it (finished at once when
    /// the hub has ended).
    mutating func open() -> (id: Int, wakeups: AsyncStream<Void>, wake: AsyncStream<Void>.Continuation) {
        let (stream, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = next
        next += 1
        if ended {
            wake.finish()
        } else {
            wakeups[id] = wake
        }
        return (id, stream, wake)
    }

    mutating func close(_ id: Int) {
        wakeups[id] = nil
    }

    func wakeAll() {
        for wake in wakeups.values { wake.yield() }
    }

    mutating func endAll() {
        ended = true
        let open = wakeups
        wakeups = [:]
        for wake in open.values { wake.finish() }
    }
}

/// One open watch: pulls batches of changes from the agent as the consumer asks for them, and
/// sleeps until the change log grows when there are none, so a slow reader costs no buffering.
actor WatchSession {
    let agent: Agent
    let prefix: String
    var cursor: UInt64
    var wakeups: AsyncStream<Void>.AsyncIterator

    init(agent: Agent, prefix: String, cursor: UInt64, wakeups: AsyncStream<Void>) {
        self.agent = agent
        self.prefix = prefix
        self.cursor = cursor
        self.wakeups = wakeups.makeAsyncIterator()
    }

    /// The next batch of changes; nil once the agent ends the watch (shutting down).
    func next() async throws -> [EntrySnapshot]? {
        while true {
            let (batch, through) = try await agent.watchBatch(after: cursor, prefix: prefix)
            cursor = through
            if !batch.isEmpty { return batch }
            var iterator = wakeups
            let woken: Void? = await iterator.next(isolation: self)
            wakeups = iterator
            if woken == nil { return nil }
        }
    }
}
