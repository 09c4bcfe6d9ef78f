/// Holds the node back until the local API listens: `rumor agent` opens its gossip sockets, then
/// waits here before it announces itself (joins, discovery), and the API server opens the gate
/// once its socket listens. An API that cannot listen (its port taken) stops the agent before
/// any gossip, so others never list a member that was never up.
public struct StartGate: Sendable {
    private let opened: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init() {
        (opened, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Lets the waiter go on; later calls change nothing.
    public func open() {
        continuation.yield(())
        continuation.finish()
    }

    /// Waits until the gate opens: true then, false when the waiting task is cancelled first
    /// (the API failed and the service group is stopping). One waiter only.
    func wait() async -> Bool {
        for await _ in opened { return true }
        return false
    }
}
