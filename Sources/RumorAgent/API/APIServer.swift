import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RumorCore
import RumorAPI
import RumorWire
import ServiceLifecycle

/// The local HTTP API: JSON over HTTP/1.1, every answer in the envelope
/// `{"status":"ok","data":…}` or `{"status":"error","code":…,"message":…,"hint":…}`.
///
/// Routes: `GET /v1/health`, `GET /v1/members`, `GET /v1/info`, `POST /v1/join`
/// (`{"addresses":["host:port",…]}`), `POST /v1/leave`, `POST /v1/kv/put`
/// (`{"key":…,"value":…,"ttlSeconds":…,"ephemeral":…,"wait":"all"|N,"timeoutSeconds":…}`), `POST /v1/kv/batch` (`{"entries":[{"key","value"}…]}`),
/// `POST /v1/kv/delete` (`{"key":…}`),
/// `GET /v1/kv/get?key=…`, `GET /v1/kv/list?prefix=…`, `GET /v1/kv/status`,
/// `GET /v1/kv/watch?prefix=…&from=SEQ` (NDJSON, or server-sent events with
/// `Accept: text/event-stream`, resumable with `Last-Event-ID`), `GET /v1/keys` and `POST /v1/keys`
/// (`{"operation":"install"|"use"|"remove","key":BASE64}`, run across the swarm). When a token is configured every
/// request must carry `Authorization: Bearer <token>`.
public struct APIServer: Service {
    let control: any AgentControl
    let host: String
    let port: Int
    let token: String?
    let logger: Logger

    public init(control: any AgentControl, host: String, port: Int, token: String?, logger: Logger) {
        self.control = control
        self.host = host
        self.port = port
        self.token = token
        self.logger = logger
    }

    public func run() async throws {
        let application = Application(
            router: Self.router(control: control, token: token),
            configuration: .init(address: .hostname(host, port: port), serverName: "rumor"),
            logger: logger)
        let control = self.control
        // Open watches would hold the server's graceful shutdown forever: end them first.
        try await withGracefulShutdownHandler {
            try await application.runService()
        } onGracefulShutdown: {
            Task { await control.endWatches() }
        }
    }

    /// The routes, separate from the socket so tests can drive them directly.
    static func router(control: any AgentControl, token: String?) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: EnvelopeErrors())
        if let token { router.add(middleware: BearerToken(token: token)) }
        router.get("/v1/health") { _, _ in try ok(["ok": true]) }
        router.get("/v1/members") { _, _ in try ok(MembersData(members: await control.members())) }
        router.get("/v1/info") { _, _ in try ok(await control.info()) }
        router.post("/v1/join") { request, _ in
            let addresses = try APIRequests.join(try await body(of: request))
            return try ok(["contacted": try await control.join(addresses)])
        }
        router.post("/v1/leave") { _, _ in
            try await control.leave()
            return try ok(["left": true])
        }
        router.post("/v1/kv/put") { request, _ in
            let put = try APIRequests.put(try await body(of: request))
            return try ok(
                try await control.put(
                    key: put.key, value: put.value, timeToLive: put.timeToLive, ephemeral: put.ephemeral,
                    replicas: put.replicas, timeout: put.timeout))
        }
        router.post("/v1/kv/batch") { request, _ in
            let writes = try APIRequests.batch(try await body(of: request))
            return try ok(["written": try await control.putBatch(writes)])
        }
        router.post("/v1/kv/delete") { request, _ in
            let key = try APIRequests.delete(try await body(of: request))
            return try ok(try await control.delete(key: key))
        }
        router.get("/v1/kv/get") { request, _ in
            guard let key = request.uri.queryParameters.get("key") else {
                throw AgentError(code: .badRequest, message: "no key given", hint: "GET /v1/kv/get?key=KEY")
            }
            guard let entry = await control.get(key: key) else {
                throw AgentError(code: .keyNotFound, message: "no live value for '\(key)'", hint: "list keys with `rumor list`")
            }
            return try ok(entry)
        }
        router.get("/v1/kv/status") { _, _ in try ok(await control.status()) }
        router.get("/v1/keys") { _, _ in try ok(try await control.keyring(.list)) }
        router.post("/v1/keys") { request, _ in
            try ok(try await control.keyring(try APIRequests.keyOperation(try await body(of: request))))
        }
        router.get("/v1/kv/list") { request, _ in
            let prefix = request.uri.queryParameters.get("prefix") ?? ""
            return try ok(await control.list(prefix: prefix))
        }
        router.get("/v1/kv/watch") { request, _ in
            let prefix = request.uri.queryParameters.get("prefix") ?? ""
            var from: UInt64?
            if let text = request.uri.queryParameters.get("from") ?? request.headers[lastEventID] {
                guard let value = UInt64(text) else {
                    throw AgentError(
                        code: .badRequest, message: "from must be a change-log seq (a non-negative integer), not \(text)",
                        hint: "use the seq of the last change you processed, or 0 to replay every key")
                }
                from = value
            }
            let events = request.headers[.accept]?.contains("text/event-stream") == true
            let changes = try await control.watch(prefix: prefix, from: from)
            return Response(
                status: .ok,
                headers: [.contentType: events ? "text/event-stream" : "application/x-ndjson", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    try await streamChanges(changes, asServerSentEvents: events, to: &writer)
                })
        }
        return router
    }

    static let lastEventID = HTTPField.Name("Last-Event-ID")!

    /// Writes each change as an NDJSON line or a server-sent event (`id:` is its seq). An error
    /// mid-stream (the reader fell behind compaction) becomes a final error envelope line.
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

    /// The request body, refused past `APIRequests.maximumBodyBytes`.
    static func body(of request: Request) async throws -> [UInt8] {
        let buffer = try await request.body.collect(upTo: APIRequests.maximumBodyBytes)
        return Array(buffer.readableBytesView)
    }

    struct MembersData: Encodable {
        var members: [MemberSnapshot]
    }
}

/// `{"status":"ok","data":…}`.
func ok(_ data: some Encodable) throws -> Response {
    try json(OKEnvelope(data: data), status: .ok)
}

struct OKEnvelope<Payload: Encodable>: Encodable {
    var status = "ok"
    var data: Payload
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

/// Turns every error into the JSON error envelope with a fitting HTTP status.
struct EnvelopeErrors<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AgentError {
            return try json(
                ErrorEnvelope(code: error.code, message: error.message, hint: error.hint),
                status: HTTPResponse.Status(code: error.code.httpStatus))
        } catch let error as HTTPError {
            let code: ErrorCode = error.status == .notFound ? .notFound : error.status == .contentTooLarge ? .tooLarge : .badRequest
            let hint =
                error.status == .notFound
                ? "routes: GET /v1/health, /v1/members, /v1/info, /v1/kv/get, /v1/kv/list, /v1/kv/status, /v1/kv/watch, /v1/keys; POST /v1/join, /v1/leave, /v1/kv/put, /v1/kv/batch, /v1/kv/delete, /v1/keys"
                : "check the request"
            return try json(
                ErrorEnvelope(code: code, message: "\(request.method) \(request.uri.path): \(error.status.reasonPhrase)", hint: hint),
                status: error.status)
        } catch {
            return try json(
                ErrorEnvelope(code: .internal, message: "\(error)", hint: "see the agent's log"), status: .internalServerError)
        }
    }
}

/// Requires `Authorization: Bearer <token>`.
struct BearerToken<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.authorization] == "Bearer \(token)" else {
            throw AgentError(
                code: .unauthorized, message: "missing or wrong API token",
                hint: "pass --api-token (or RUMOR_API_TOKEN) with the agent's token")
        }
        return try await next(request, context)
    }
}
