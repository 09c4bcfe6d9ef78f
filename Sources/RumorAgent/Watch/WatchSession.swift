import RumorCore

/// One open watch: pulls batches of changes from the agent as the consumer asks for them, and
/// sleeps until the change log grows when there are none, so a slow reader costs no buffering.
actor WatchSession {
    let agent: Agent
    let prefix: String
    var cursor: UInt64
    /// A watch from 0 replays every key the agent knows: until its cursor passes what was
    /// forgotten when it started, forgotten keys do not concern it.
    let replayingThrough: UInt64
    var wakeups: AsyncStream<Void>.AsyncIterator

    init(agent: Agent, prefix: String, cursor: UInt64, replayingThrough: UInt64, wakeups: AsyncStream<Void>) {
        self.agent = agent
        self.prefix = prefix
        self.cursor = cursor
        self.replayingThrough = replayingThrough
        self.wakeups = wakeups.makeAsyncIterator()
    }

    /// The next batch of changes; nil once the agent ends the watch (shutting down).
    func next() async throws -> [EntrySnapshot]? {
        while true {
            let (batch, through) = try await agent.watchBatch(after: cursor, prefix: prefix, replaying: cursor < replayingThrough)
            cursor = through
            if !batch.isEmpty { return batch }
            var iterator = wakeups
            let woken: Void? = await iterator.next(isolation: self)
            wakeups = iterator
            if woken == nil { return nil }
        }
    }
}
