import HTTPTypes
import Hummingbird
import NIOCore
import RumorAPI

/// A long-lived streaming answer (watch, events, monitor, query) that ends with its client.
///
/// The route's `produce` runs in a child task and hands its text over one chunk at a time
/// (`emit` returns once the chunk is written, so a slow reader costs no buffering); the
/// connection's task writes. The stream ends, and frees its subscription, its slot and its
/// connection, when the first of these happens:
/// - `produce` returns (the agent ended the stream): the answer is finished;
/// - the client half-closes or closes (`APIConnection.clientGone`, seen within milliseconds
///   whatever the stream carries): the connection is closed;
/// - a write fails; with server-sent events a comment line `:` every `api_stream_keepalive`
///   finds a reader that is gone without a word.
enum StreamPump {
    /// Writes a chunk of the stream; throws once the stream has ended.
    typealias Emit = @Sendable (String) async throws -> Void

    /// One of the agent's `api_max_streams`, taken before the route opens anything (a refused
    /// stream must not have subscribed, or sent a query), given back when the stream ends or
    /// when the route fails before answering.
    struct Slot: Sendable {
        private let connection: APIConnection?
        private let held: StreamSlot?

        /// - Throws: `AgentError` `too_many_streams`.
        init() throws(AgentError) {
            connection = APIConnection.current
            held = try connection?.connections.openStream()
        }

        /// The streaming answer, holding the slot while it streams.
        func response(
            headers: HTTPFields, serverSentEvents: Bool, produce: @escaping @Sendable (Emit) async throws -> Void
        ) throws -> Response {
            let keepAlive = serverSentEvents ? connection?.connections.limits.streamKeepAlive : nil
            let (held, clientGone) = (held, connection?.clientGone)
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    defer { held?.release() }
                    try await pump(produce, keepAlive: keepAlive, clientGone: clientGone, to: &writer)
                })
        }
    }

    /// The client went away; the connection closes (the error ends the connection's task).
    struct ClientGone: Error {}

    private enum Event: Sendable {
        case chunk(ByteBuffer, CheckedContinuation<Void, any Error>)
        case keepAlive
        case clientGone
        case produced((any Error)?)
    }

    private enum Outcome {
        case finished
        case clientGone
        case failed(any Error)
    }

    static func pump(
        _ produce: @escaping @Sendable (Emit) async throws -> Void, keepAlive: Duration?, clientGone: EventLoopFuture<Void>?,
        to writer: inout any ResponseBodyWriter
    ) async throws {
        let (events, input) = AsyncStream.makeStream(of: Event.self)
        clientGone?.whenComplete { _ in input.yield(.clientGone) }
        let outcome: Outcome = await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await produce { text in try await hand(ByteBuffer(string: text), to: input) }
                    input.yield(.produced(nil))
                } catch {
                    input.yield(.produced(error))
                }
            }
            if let keepAlive {
                group.addTask {
                    while (try? await Task.sleep(for: keepAlive)) != nil { input.yield(.keepAlive) }
                }
            }
            var outcome = Outcome.clientGone
            loop: for await event in events {
                switch event {
                case .chunk(let buffer, let written):
                    do {
                        try await writer.write(buffer)
                        written.resume()
                    } catch {
                        written.resume(throwing: error)
                        outcome = .failed(error)
                        break loop
                    }
                case .keepAlive:
                    do {
                        try await writer.write(ByteBuffer(string: ":\n"))
                    } catch {
                        outcome = .failed(error)
                        break loop
                    }
                case .clientGone:
                    outcome = .clientGone
                    break loop
                case .produced(let error):
                    outcome = error.map { .failed($0) } ?? .finished
                    break loop
                }
            }
            // Stop the producer and the keep-alive, and release a chunk handed over meanwhile.
            input.finish()
            group.cancelAll()
            for await case .chunk(_, let written) in events { written.resume(throwing: CancellationError()) }
            return outcome
        }
        switch outcome {
        case .finished: try await writer.finish(nil)
        case .clientGone: throw ClientGone()
        case .failed(let error): throw error
        }
    }

    /// Hands a chunk to the writing task and waits until it is written.
    private static func hand(_ buffer: ByteBuffer, to input: AsyncStream<Event>.Continuation) async throws {
        try Task.checkCancellation()
        try await withCheckedThrowingContinuation { (written: CheckedContinuation<Void, any Error>) in
            if case .terminated = input.yield(.chunk(buffer, written)) { written.resume(throwing: CancellationError()) }
        }
    }
}
