import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RumorCore
import RumorAPI
import RumorWire
import ServiceLifecycle

/// The local HTTP API: JSON over HTTP/1.1, every answer in the envelope
/// `{"status":"ok","data":…}` or `{"status":"error","code":…,"message":…,"hint":…}`.
///
/// The routes are `APIRoute.all`; request bodies are those of `APIRequests`. When a token is
/// configured every request must carry `Authorization: Bearer <token>`.
public struct APIServer: Service {
    let control: any AgentControl
    let host: String
    let port: Int
    let token: String?
    let logger: Logger
    /// Opened once the socket listens (the agent waits for it before it joins).
    let listening: StartGate?
    /// Called once the socket listens (the agent then announces its start; `Agent+Readiness`).
    let onListening: @Sendable () async -> Void

    public init(
        control: any AgentControl, host: String, port: Int, token: String?, logger: Logger, listening: StartGate? = nil,
        onListening: @escaping @Sendable () async -> Void = {}
    ) {
        self.control = control
        self.host = host
        self.port = port
        self.token = token
        self.logger = logger
        self.listening = listening
        self.onListening = onListening
    }

    /// Listens and serves until graceful shutdown.
    /// - Throws: `BindFailure` when the socket cannot listen (`listening` then stays closed).
    public func run() async throws {
        let started = NIOLockedValueBox(false)
        let listening = self.listening
        let application = Application(
            router: Self.router(control: control, token: token),
            configuration: .init(address: .hostname(host, port: port), serverName: "rumor"),
            onServerRunning: { [onListening] _ in
                started.withLockedValue { $0 = true }
                listening?.open()
                await onListening()
            },
            logger: logger)
        let control = self.control
        // Open watches would hold the server's graceful shutdown forever: end them first.
        do {
            try await withGracefulShutdownHandler {
                // `run()`, not `runService()`: the latter runs its own service group with SIGTERM and SIGINT
                // handlers, which could stop the server before our group began its ordered shutdown (the
                // group then failed with "a service has finished unexpectedly" and the agent exited 1).
                try await application.run()
            } onGracefulShutdown: {
                Task { await control.endWatches() }
            }
        } catch where !started.withLockedValue({ $0 }) {
            throw BindFailure(.api, host: host, port: port, error: error)
        }
    }

    /// The routes, separate from the socket so tests can drive them directly.
    static func router(control: any AgentControl, token: String?) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: EnvelopeErrors())
        if let token { router.add(middleware: BearerToken(token: token)) }
        for route in APIRoute.all {
            router.on(RouterPath(route.path), method: route.method) { request, _ in
                try await route.handle(request, control)
            }
        }
        return router
    }

    static let lastEventID = HTTPField.Name("Last-Event-ID")!
    /// On a watch: the change log's epoch, and its last seq when the watch opened.
    static let watchEpoch = HTTPField.Name("Rumor-Watch-Epoch")!
    static let watchPosition = HTTPField.Name("Rumor-Watch-Position")!
    /// The code of an error answer, text or JSON, so that a client reading the text knows it too
    /// (the CLI's exit status depends on it).
    static let errorCode = HTTPField.Name("Rumor-Error-Code")!

    /// Writes each change as an NDJSON line or a server-sent event (`id:` is its seq). An error
    /// mid-stream (the reader fell behind compaction) becomes a final error envelope line.
    /// Writes each user event as a JSON line (or a server-sent event) until the agent stops.
    static func streamEvents(
        _ events: AsyncStream<UserEventSnapshot>, asServerSentEvents: Bool, to writer: inout any ResponseBodyWriter
    ) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for await event in events {
            let line = String(decoding: try encoder.encode(event), as: UTF8.self)
            try await writer.write(ByteBuffer(string: asServerSentEvents ? "event: \(event.event)\ndata: \(line)\n\n" : line + "\n"))
        }
        try await writer.finish(nil)
    }

    /// A query's answers as NDJSON, or as `serf query` prints them (`asText`).
    static func streamQuery(
        _ dispatch: QueryDispatch, _ answers: AsyncStream<QueryAnswerSnapshot>, asText: Bool, to writer: inout any ResponseBodyWriter
    ) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try await writer.write(ByteBuffer(string: asText ? APIText.query(dispatch) : String(decoding: try encoder.encode(dispatch), as: UTF8.self) + "\n"))
        for await answer in answers {
            let line = asText ? APIText.query(answer, acknowledged: dispatch.ack) : String(decoding: try encoder.encode(answer), as: UTF8.self) + "\n"
            try await writer.write(ByteBuffer(string: line))
        }
        try await writer.finish(nil)
    }

    static func streamChanges(
        _ changes: AsyncThrowingStream<[EntrySnapshot], any Error>, asServerSentEvents events: Bool,
        to writer: inout any ResponseBodyWriter
    ) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            for try await batch in changes {
                var text = ""
                for change in batch {
                    let line = String(decoding: try encoder.encode(change), as: UTF8.self)
                    text += events ? "id: \(change.seq ?? 0)\ndata: \(line)\n\n" : line + "\n"
                }
                try await writer.write(ByteBuffer(string: text))
            }
        } catch let error as AgentError {
            let line = String(
                decoding: try encoder.encode(ErrorEnvelope(code: error.code, message: error.message, hint: error.hint)),
                as: UTF8.self)
            try await writer.write(ByteBuffer(string: events ? "event: error\ndata: \(line)\n\n" : line + "\n"))
        }
        try await writer.finish(nil)
    }
}

/// `{"status":"ok","data":…}`.
func ok(_ data: some Encodable) throws -> Response {
    try json(OKEnvelope(data: data), status: .ok)
}

/// `{"status":"ok","data":…}`, or `text(data)` when the client asks for `text/plain`.
func ok<Payload: Encodable>(_ data: Payload, for request: Request, text: (Payload) -> String) throws -> Response {
    APIText.wantsText(request) ? APIText.response(text(data)) : try ok(data)
}

/// `{"status":"ok","data":…}`: every successful JSON answer of the API, and every `--json`
/// output of the commands that answer without one (`rumor context`, `sim`, `agent --print-config`).
public struct OKEnvelope<Payload: Encodable>: Encodable {
    public var status = "ok"
    public var data: Payload

    public init(data: Payload) {
        self.data = data
    }
}

struct ErrorEnvelope: Codable {
    var status = "error"
    var code: ErrorCode
    var message: String
    var hint: String
}

func json(_ value: some Encodable, status: HTTPResponse.Status) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    return Response(
        status: status, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}

/// Turns every error into the JSON error envelope with a fitting HTTP status (`error:` and
/// `hint:` lines for a client that asks for `text/plain`).
struct EnvelopeErrors<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AgentError {
            return try answer(error.code, error.message, error.hint, status: HTTPResponse.Status(code: error.code.httpStatus), to: request)
        } catch let error as HTTPError {
            let code: ErrorCode = error.status == .notFound ? .notFound : error.status == .contentTooLarge ? .tooLarge : .badRequest
            let hint = error.status == .notFound ? APIRoute.notFoundHint : "check the request"
            return try answer(code, "\(request.method) \(request.uri.path): \(error.status.reasonPhrase)", hint, status: error.status, to: request)
        } catch {
            return try answer(.internal, "\(error)", "see the agent's log", status: .internalServerError, to: request)
        }
    }

    private func answer(_ code: ErrorCode, _ message: String, _ hint: String, status: HTTPResponse.Status, to request: Request) throws -> Response {
        var response = APIText.wantsText(request)
            ? APIText.response(APIText.error(code, message: message, hint: hint), status: status)
            : try json(ErrorEnvelope(code: code, message: message, hint: hint), status: status)
        response.headers[APIServer.errorCode] = code.rawValue
        return response
    }
}

/// Requires `Authorization: Bearer <token>` on every route whose contract says so (all but the
/// status page, which holds no data).
struct BearerToken<Context: RequestContext>: RouterMiddleware {
    let token: String
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if APIRoute.withoutToken.contains("\(request.method) \(request.uri.path)") { return try await next(request, context) }
        guard request.headers[.authorization] == "Bearer \(token)" else {
            throw AgentError(
                code: .unauthorized, message: "missing or wrong API token",
                hint: "pass --api-token (or RUMOR_API_TOKEN) with the agent's token")
        }
        return try await next(request, context)
    }
}
