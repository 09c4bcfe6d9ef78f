import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RumorCore
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
    /// Largest request body accepted.
    static let maximumBodyBytes = 64 << 20

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
            let body = try await request.body.collect(upTo: maximumBodyBytes)
            let join: JoinRequest
            do {
                join = try JSONDecoder().decode(JoinRequest.self, from: Data(buffer: body))
            } catch {
                throw AgentError(
                    code: "bad_request", message: "the body is not a join request: \(error)",
                    hint: #"send {"addresses":["host:port", …]}"#)
            }
            guard !join.addresses.isEmpty else {
                throw AgentError(code: "bad_request", message: "no addresses to join", hint: "give at least one host:port")
            }
            return try ok(["contacted": try await control.join(join.addresses)])
        }
        router.post("/v1/leave") { _, _ in
            try await control.leave()
            return try ok(["left": true])
        }
        router.post("/v1/kv/put") { request, _ in
            let put = try await decode(
                PutRequest.self, from: request,
                hint: #"send {"key":"k","value":"v","ttlSeconds":30,"ephemeral":false,"wait":"all","timeoutSeconds":5}"#)
            var timeToLive: Duration?
            if let seconds = put.ttlSeconds {
                guard seconds > 0, seconds <= 10 * 365 * 24 * 3600 else {
                    throw AgentError(code: "bad_request", message: "ttlSeconds must be positive", hint: "give the time to live in seconds, e.g. 30")
                }
                timeToLive = .milliseconds(Int64(seconds * 1000))
            }
            var replicas: ReplicaTarget?
            if let wait = put.wait {
                guard let target = ReplicaTarget(wait.text) else {
                    throw AgentError(
                        code: "bad_request", message: "wait must be \"all\" or a positive number of nodes, not \(wait.text)",
                        hint: #"send "wait":"all" or "wait":3"#)
                }
                replicas = target
            }
            let timeout = put.timeoutSeconds ?? 10
            guard timeout > 0, timeout <= 3600 else {
                throw AgentError(
                    code: "bad_request", message: "timeoutSeconds must be in (0, 3600]", hint: "give the wait limit in seconds, e.g. 5")
            }
            return try ok(
                try await control.put(
                    key: put.key, value: Array(put.value.utf8), timeToLive: timeToLive, ephemeral: put.ephemeral ?? false,
                    replicas: replicas, timeout: .milliseconds(Int64(timeout * 1000))))
        }
        router.post("/v1/kv/batch") { request, _ in
            let batch = try await decode(BatchRequest.self, from: request, hint: #"send {"entries":[{"key":"k","value":"v"},…]}"#)
            let writes = batch.entries.map { Replication.Write(key: $0.key, value: $0.value.map { Array($0.utf8) }) }
            return try ok(["written": try await control.putBatch(writes)])
        }
        router.post("/v1/kv/delete") { request, _ in
            let delete = try await decode(KeyRequest.self, from: request, hint: #"send {"key":"k"}"#)
            return try ok(try await control.delete(key: delete.key))
        }
        router.get("/v1/kv/get") { request, _ in
            guard let key = request.uri.queryParameters.get("key") else {
                throw AgentError(code: "bad_request", message: "no key given", hint: "GET /v1/kv/get?key=KEY")
            }
            guard let entry = await control.get(key: key) else {
                throw AgentError(code: "key_not_found", message: "no live value for '\(key)'", hint: "list keys with `rumor list`")
            }
            return try ok(entry)
        }
        router.get("/v1/kv/status") { _, _ in try ok(await control.status()) }
        router.get("/v1/keys") { _, _ in try ok(try await control.keyring(.list)) }
        router.post("/v1/keys") { request, _ in
            let hint = #"send {"operation":"install","key":"<base64 key from `rumor keygen`>"} (install, use or remove)"#
            let body = try await decode(KeyOperationRequest.self, from: request, hint: hint)
            guard let key = Data(base64Encoded: body.key).map(Array.init) else {
                throw AgentError(code: "bad_key", message: "the key is not base64", hint: "make a key with `rumor keygen`")
            }
            let operation: KeyringOperation
            switch body.operation {
            case "install": operation = .install(key)
            case "use": operation = .use(key)
            case "remove": operation = .remove(key)
            default:
                throw AgentError(code: "bad_request", message: "unknown key operation '\(body.operation)'", hint: hint)
            }
            return try ok(try await control.keyring(operation))
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
                        code: "bad_request", message: "from must be a change-log seq (a non-negative integer), not \(text)",
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

    struct PutRequest: Decodable {
        var key: String
        var value: String
        var ttlSeconds: Double?
        var ephemeral: Bool?
        /// "all" or a number of nodes (the writer included) that must hold the write.
        var wait: StringOrNumber?
        var timeoutSeconds: Double?
    }

    /// A JSON value given either as a string or as a number.
    struct StringOrNumber: Decodable {
        var text: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) {
                text = String(number)
            } else {
                text = try container.decode(String.self)
            }
        }
    }

    struct BatchRequest: Decodable {
        struct Item: Decodable {
            var key: String
            /// nil deletes.
            var value: String?
        }
        var entries: [Item]
    }

    struct KeyRequest: Decodable {
        var key: String
    }

    struct KeyOperationRequest: Decodable {
        var operation: String
        var key: String
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

    /// Decodes a bounded JSON body, or throws `bad_request` with `hint`.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, hint: String) async throws -> T {
        let body = try await request.body.collect(upTo: maximumBodyBytes)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: body))
        } catch {
            throw AgentError(code: "bad_request", message: "the request body is not valid: \(error)", hint: hint)
        }
    }

    struct JoinRequest: Decodable {
        var addresses: [String]
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
    var code: String
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
                ErrorEnvelope(code: error.code, message: error.message, hint: error.hint), status: Self.status(for: error.code))
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : error.status == .contentTooLarge ? "too_large" : "bad_request"
            let hint =
                error.status == .notFound
                ? "routes: GET /v1/health, /v1/members, /v1/info, /v1/kv/get, /v1/kv/list, /v1/kv/status, /v1/kv/watch, /v1/keys; POST /v1/join, /v1/leave, /v1/kv/put, /v1/kv/batch, /v1/kv/delete, /v1/keys"
                : "check the request"
            return try json(
                ErrorEnvelope(code: code, message: "\(request.method) \(request.uri.path): \(error.status.reasonPhrase)", hint: hint),
                status: error.status)
        } catch {
            return try json(
                ErrorEnvelope(code: "internal", message: "\(error)", hint: "see the agent's log"), status: .internalServerError)
        }
    }

    static func status(for code: String) -> HTTPResponse.Status {
        switch code {
        case "bad_request", "bad_address": .badRequest
        case "unauthorized": .unauthorized
        case "join_failed": .badGateway
        case "left": .conflict
        case "key_not_found": .notFound
        case "watch_compacted": .gone
        case "watch_ahead": .conflict
        case "replication_timeout": .gatewayTimeout
        case "empty_key", "key_too_long", "value_too_large", "bad_key": .badRequest
        case "encryption_disabled": .conflict
        case "keyring_partial": .badGateway
        default: .internalServerError
        }
    }
}

/// Requires `Authorization: Bearer <token>`.
struct BearerToken<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.authorization] == "Bearer \(token)" else {
            throw AgentError(
                code: "unauthorized", message: "missing or wrong API token",
                hint: "pass --api-token (or RUMOR_API_TOKEN) with the agent's token")
        }
        return try await next(request, context)
    }
}
