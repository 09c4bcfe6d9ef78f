import RumorAPI
import RumorCore

/// The open user-event streams of an agent (`GET /v1/events`): each gets every event this node
/// delivers, its own included, from the moment it opens. A subscriber that falls more than
/// `backlog` events behind loses the oldest (its stream says how many); all end when the agent
/// stops.
struct EventHub {
    static let backlog = 1024

    private var subscribers: [Int: AsyncStream<UserEventSnapshot>.Continuation] = [:]
    private var next = 0
    private(set) var ended = false

    mutating func open() -> (id: Int, events: AsyncStream<UserEventSnapshot>) {
        let (stream, continuation) = AsyncStream.makeStream(of: UserEventSnapshot.self, bufferingPolicy: .bufferingNewest(Self.backlog))
        let id = next
        next += 1
        if ended {
            continuation.finish()
        } else {
            subscribers[id] = continuation
        }
        return (id, stream)
    }

    mutating func close(_ id: Int) {
        subscribers[id] = nil
    }

    func publish(_ event: SerfUserEvent) {
        publish(UserEventSnapshot(event))
    }

    func publish(_ snapshot: UserEventSnapshot) {
        for continuation in subscribers.values { continuation.yield(snapshot) }
    }

    mutating func endAll() {
        ended = true
        let open = subscribers
        subscribers = [:]
        for continuation in open.values { continuation.finish() }
    }
}
