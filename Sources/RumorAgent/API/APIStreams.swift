import Foundation
import HTTPTypes
import Hummingbird
import RumorAPI

/// What the streaming routes write, chunk by chunk, through `StreamPump`.
enum APIStreams {
    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// Each change as an NDJSON line or a server-sent event (`id:` is its seq). An error
    /// mid-stream (the reader fell behind compaction) becomes a final error envelope line.
    static func changes(
        _ changes: AsyncThrowingStream<[EntrySnapshot], any Error>, asServerSentEvents events: Bool
    ) -> @Sendable (StreamPump.Emit) async throws -> Void {
        { emit in
            let encoder = encoder
            do {
                for try await batch in changes {
                    var text = ""
                    for change in batch {
                        let line = String(decoding: try encoder.encode(change), as: UTF8.self)
                        text += events ? "id: \(change.seq ?? 0)\ndata: \(line)\n\n" : line + "\n"
                    }
                    try await emit(text)
                }
            } catch let error as AgentError {
                let line = String(
                    decoding: try encoder.encode(ErrorEnvelope(code: error.code, message: error.message, hint: error.hint)),
                    as: UTF8.self)
                try await emit(events ? "event: error\ndata: \(line)\n\n" : line + "\n")
            }
        }
    }

    /// Each user event as a JSON line (or a server-sent event) until the agent stops.
    static func events(_ events: AsyncStream<UserEventSnapshot>, asServerSentEvents: Bool) -> @Sendable (StreamPump.Emit) async throws -> Void {
        { emit in
            let encoder = encoder
            for await event in events {
                let line = String(decoding: try encoder.encode(event), as: UTF8.self)
                try await emit(asServerSentEvents ? "event: \(event.event)\ndata: \(line)\n\n" : line + "\n")
            }
        }
    }

    /// A query's answers as NDJSON, or as `serf query` prints them (`asText`).
    static func query(
        _ dispatch: QueryDispatch, _ answers: AsyncStream<QueryAnswerSnapshot>, asText: Bool
    ) -> @Sendable (StreamPump.Emit) async throws -> Void {
        { emit in
            let encoder = encoder
            try await emit(asText ? APIText.query(dispatch) : String(decoding: try encoder.encode(dispatch), as: UTF8.self) + "\n")
            for await answer in answers {
                try await emit(asText ? APIText.query(answer, acknowledged: dispatch.ack) : String(decoding: try encoder.encode(answer), as: UTF8.self) + "\n")
            }
        }
    }

    /// Log lines, one a line, until the agent stops.
    static func lines(_ lines: AsyncStream<String>) -> @Sendable (StreamPump.Emit) async throws -> Void {
        { emit in
            for await line in lines { try await emit(line + "\n") }
        }
    }
}
