import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The local HTTP API: JSON over HTTP/1.1, every answer in the envelope
/// `{"status":"ok","data":…}` or `{"status":"error","code":…,"message":…,"hint":…}`.
///
/// Routes: `GET /v1/health`, `GET /v1/members`, `GET /v1/info`, `POST /v1/join`
/// (`{"addresses":["host:port",…]}`), `POST /v1/leave`. When a token is configured every
/// request must carry `Authorization: Bearer <token>`.
public struct APIServer: Service {
    let control: any AgentControl
    let host: String
    let port: Int
    let token: String?
    let logger: Logger
    /// Largest request body accepted.
    static let maximumBodyBytes = 1 << 20

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
        try await application.runService()
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
        return router
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
                ? "routes: GET /v1/health, /v1/members, /v1/info; POST /v1/join, /v1/leave"
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
