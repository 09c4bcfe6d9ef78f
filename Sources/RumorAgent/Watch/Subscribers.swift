/// Open streams that each get every element published from the moment they open, until they
/// close or the agent ends them all: the fan-out behind `rumor events` (user events, a backlog
/// of 1024 per subscriber, the oldest lost past it) and behind watches (wake-ups, one pending).
struct Subscribers<Element: Sendable> {
    private let buffering: AsyncStream<Element>.Continuation.BufferingPolicy
    private var streams: [Int: AsyncStream<Element>.Continuation] = [:]
    private var next = 0
    private(set) var ended = false

    init(buffering: AsyncStream<Element>.Continuation.BufferingPolicy) {
        self.buffering = buffering
    }

    /// Opens a stream (finished at once when all have ended); `close(id)` forgets it.
    mutating func open() -> (id: Int, stream: AsyncStream<Element>, continuation: AsyncStream<Element>.Continuation) {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: buffering)
        let id = next
        next += 1
        if ended {
            continuation.finish()
        } else {
            streams[id] = continuation
        }
        return (id, stream, continuation)
    }

    mutating func close(_ id: Int) {
        streams[id] = nil
    }

    func publish(_ element: Element) {
        for continuation in streams.values { continuation.yield(element) }
    }

    mutating func endAll() {
        ended = true
        let closing = streams
        streams = [:]
        for continuation in closing.values { continuation.finish() }
    }
}
