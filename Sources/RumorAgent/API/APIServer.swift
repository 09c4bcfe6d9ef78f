import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
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
    /// The effective limits (`maxConnections` fitted to the open-file limit; `FileLimit`).
    let limits: APILimits
    let logger: Logger
    /// Opened once the socket listens (the agent waits for it before it joins).
    let listening: StartGate?
    /// Called once the socket listens (the agent then announces its start; `Agent+Readiness`).
    let onListening: @Sendable () async -> Void

    public init(
        control: any AgentControl, host: String, port: Int, token: String?, limits: APILimits = APILimits(), logger: Logger,
        listening: StartGate? = nil, onListening: @escaping @Sendable () async -> Void = {}
    ) {
        self.control = control
        self.host = host
        self.port = port
        self.token = token
        self.limits = limits
        self.logger = logger
        self.listening = listening
        self.onListening = onListening
    }

    /// Listens and serves until graceful shutdown.
    /// - Throws: `BindFailure` when the socket cannot listen (`listening` then stays closed).
    public func run() async throws {
        let started = NIOLockedValueBox(false)
        let listening = self.listening
        let connections = APIConnections(limits: limits, logger: logger)
        let policy = CrossSitePolicy(apiHost: host, apiPort: port, allowedHosts: limits.allowedHosts, allowedOrigins: limits.allowedOrigins, token: token)
        let application = Application(
            router: Self.router(control: control, token: token, policy: policy, connections: connections),
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuard(connections: connections)])),
            // A backlog as deep as the connection limit. Deeper, a burst of connections queues in
            // the kernel and a client such as `rumor get` waits behind all of it (2,000 half-sent
            // sockets: 150-200 ms at 1,024 or 4,096, 60-90 ms here); shallower, SYNs are dropped
            // sooner and a client may wait for a 1 s retransmission.
            configuration: .init(address: .hostname(host, port: port), serverName: "rumor", backlog: max(256, limits.maxConnections)),
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

    /// The routes, separate from the socket so tests can drive them directly (`connections` nil:
    /// no stream limit, refusals not logged).
    static func router(
        control: any AgentControl, token: String?, policy: CrossSitePolicy, connections: APIConnections? = nil
    ) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: EnvelopeErrors(connections: connections))
        router.add(middleware: RequestScreening(policy: policy, connections: connections))
        if let token { router.add(middleware: BearerToken(token: token)) }
        for route in APIRoute.all {
            router.on(RouterPath(route.path), method: route.method) { request, context in
                let connection = context.channel.flatMap { connections?.connection(for: $0) }
                return try await APIConnection.$current.withValue(connection) { try await route.handle(request, control) }
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

    /// An error answer's body: this envelope, or the `error:`/`hint:` lines (`asText`).
    static func body(_ code: ErrorCode, message: String, hint: String, asText: Bool) -> ByteBuffer {
        if asText { return ByteBuffer(string: APIText.error(code, message: message, hint: hint)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ByteBuffer(bytes: (try? encoder.encode(ErrorEnvelope(code: code, message: message, hint: hint))) ?? Data())
    }
}

/// A request's context: Hummingbird's, and the channel it came on (nil when tests drive the router).
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: (any Channel)?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// A context for a request that came on no connection (tests driving the router).
    init(logger: Logger) {
        coreContext = .init(source: LoggerSource(logger: logger))
        channel = nil
    }

    private struct LoggerSource: RequestContextSource {
        let logger: Logger
    }
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
    /// Where too-large and malformed requests are logged and counted; nil in router tests.
    let connections: APIConnections?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AgentError {
            if error.code == .tooLarge { connections?.refused("too_large", "refused \(request.method) \(request.uri.path): \(error.message)", [:]) }
            return try answer(error.code, error.message, error.hint, status: HTTPResponse.Status(code: error.code.httpStatus), to: request)
        } catch let error as NIOTooManyBytesError {
            let limit = error.maxBytes ?? APIRequests.maximumBodyBytes
            connections?.refused("too_large", "refused \(request.method) \(request.uri.path): its body passed \(limit) bytes", [:])
            return try answer(
                .tooLarge, "the request body exceeds \(limit) bytes; the rest was not read", "send a smaller body: split a batch into several",
                status: .contentTooLarge, to: request)
        } catch let error as HTTPParserError {
            connections?.refused("bad_framing", "refused \(request.method) \(request.uri.path): malformed HTTP (\(error))", [:])
            return try answer(
                .badRequest, "the request is not well-formed HTTP/1.1 (\(error)): a bad chunk size or header", "send a valid HTTP/1.1 request",
                status: .badRequest, to: request)
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
