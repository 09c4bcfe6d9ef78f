import HTTPTypes
import Hummingbird
import RumorAPI

/// One route of the local API: the method and path a request names, what it does in one line,
/// and the handler that answers it through `AgentControl`.
///
/// `APIRoute.all` is the only list of routes: the router, the 404 hint and (later) the OpenAPI
/// document are all built from it.
public struct APIRoute: Sendable {
    public let method: HTTPRequest.Method
    public let path: String
    /// What the route does, one line.
    public let summary: String
    /// Answers a request; errors become the error envelope (see `EnvelopeErrors`).
    let handle: @Sendable (Request, any AgentControl) async throws -> Response

    init(
        _ method: HTTPRequest.Method, _ path: String, _ summary: String,
        handle: @escaping @Sendable (Request, any AgentControl) async throws -> Response
    ) {
        self.method = method
        self.path = path
        self.summary = summary
        self.handle = handle
    }

    /// `METHOD /path`.
    public var name: String { "\(method) \(path)" }
}

extension APIRoute {
    /// Every route of the API.
    public static let all: [APIRoute] = [
        APIRoute(.get, "/v1/health", "Whether the agent answers.") { _, _ in try ok(["ok": true]) },
        APIRoute(.get, "/v1/members", "Every member this node knows, itself included.") { _, control in
            try ok(MembersData(members: await control.members()))
        },
        APIRoute(.get, "/v1/info", "A summary of this node: name, address, health, counters.") { _, control in
            try ok(await control.info())
        },
        APIRoute(.post, "/v1/join", "Join the swarm through the given seed addresses.") { request, control in
            let addresses = try APIRequests.join(try await body(of: request))
            return try ok(["contacted": try await control.join(addresses)])
        },
        APIRoute(.post, "/v1/leave", "Leave the swarm gracefully.") { _, control in
            try await control.leave()
            return try ok(["left": true])
        },
        APIRoute(.post, "/v1/kv/put", "Write a value, optionally waiting for replicas.") { request, control in
            let put = try APIRequests.put(try await body(of: request))
            return try ok(
                try await control.put(
                    key: put.key, value: put.value, timeToLive: put.timeToLive, ephemeral: put.ephemeral,
                    replicas: put.replicas, timeout: put.timeout))
        },
        APIRoute(.post, "/v1/kv/batch", "Write many values (null deletes) all or nothing.") { request, control in
            let writes = try APIRequests.batch(try await body(of: request))
            return try ok(["written": try await control.putBatch(writes)])
        },
        APIRoute(.post, "/v1/kv/delete", "Delete a key (a tombstone replicates).") { request, control in
            let key = try APIRequests.delete(try await body(of: request))
            return try ok(try await control.delete(key: key))
        },
        APIRoute(.get, "/v1/kv/get", "The live value of ?key=.") { request, control in
            guard let key = request.uri.queryParameters.get("key") else {
                throw AgentError(code: .badRequest, message: "no key given", hint: "GET /v1/kv/get?key=KEY")
            }
            guard let entry = await control.get(key: key) else {
                throw AgentError(code: .keyNotFound, message: "no live value for '\(key)'", hint: "list keys with `rumor list`")
            }
            return try ok(entry)
        },
        APIRoute(.get, "/v1/kv/list", "Live entries under ?prefix=, and their change-log seq.") { request, control in
            try ok(await control.list(prefix: request.uri.queryParameters.get("prefix") ?? ""))
        },
        APIRoute(.get, "/v1/kv/status", "A summary of the replicated state.") { _, control in
            try ok(await control.status())
        },
        APIRoute(.get, "/v1/kv/watch", "Stream changes under ?prefix= after ?from= (NDJSON or SSE).", handle: watch),
        APIRoute(.get, "/v1/keys", "Which gossip keys every live node holds.") { _, control in
            try ok(try await control.keyring(.list))
        },
        APIRoute(.post, "/v1/keys", "Install, use or remove a gossip key on every live node.") { request, control in
            try ok(try await control.keyring(try APIRequests.keyOperation(try await body(of: request))))
        },
    ]

    /// The hint of a 404: every route, the GETs then the POSTs.
    static let notFoundHint: String = {
        func paths(_ method: HTTPRequest.Method) -> String {
            all.filter { $0.method == method }.map(\.path).joined(separator: ", ")
        }
        return "routes: GET \(paths(.get)); POST \(paths(.post))"
    }()

    /// `GET /v1/kv/watch?prefix=…&from=SEQ`: NDJSON, or server-sent events with
    /// `Accept: text/event-stream`, resumable with `Last-Event-ID`.
    private static func watch(_ request: Request, _ control: any AgentControl) async throws -> Response {
        let prefix = request.uri.queryParameters.get("prefix") ?? ""
        var from: UInt64?
        if let text = request.uri.queryParameters.get("from") ?? request.headers[APIServer.lastEventID] {
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
                try await APIServer.streamChanges(changes, asServerSentEvents: events, to: &writer)
            })
    }

    /// The request body, refused past `APIRequests.maximumBodyBytes`.
    private static func body(of request: Request) async throws -> [UInt8] {
        let buffer = try await request.body.collect(upTo: APIRequests.maximumBodyBytes)
        return Array(buffer.readableBytesView)
    }

    private struct MembersData: Encodable {
        var members: [MemberSnapshot]
    }
}
