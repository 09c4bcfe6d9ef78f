import HTTPTypes
import Hummingbird
import NIOCore
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
        APIRoute(.get, "/v1/health", "Whether the agent answers.") { request, _ in
            try ok(["ok": true], for: request) { _ in "ok" }
        },
        APIRoute(.get, "/v1/members", "Every member this node knows, itself included.") { request, control in
            try ok(MembersData(members: await control.members()), for: request) { APIText.members($0.members) }
        },
        APIRoute(.get, "/v1/info", "A summary of this node: name, address, health, counters.") { request, control in
            try ok(await control.info(), for: request, text: APIText.info)
        },
        APIRoute(.post, "/v1/join", "Join the swarm through the given seed addresses.") { request, control in
            let addresses = try APIRequests.join(try await body(of: request))
            return try ok(["contacted": try await control.join(addresses)], for: request) {
                "joined: \($0["contacted"] ?? 0) of \(addresses.count) contacted"
            }
        },
        APIRoute(.post, "/v1/leave", "Leave the swarm gracefully.") { request, control in
            try await control.leave()
            return try ok(["left": true], for: request) { _ in "left the swarm" }
        },
        APIRoute(.post, "/v1/kv/put", "Write a value, optionally waiting for replicas.") { request, control in
            let put = try APIRequests.put(try await body(of: request))
            return try ok(
                try await control.put(
                    key: put.key, value: put.value, timeToLive: put.timeToLive, ephemeral: put.ephemeral,
                    replicas: put.replicas, timeout: put.timeout),
                for: request, text: APIText.written)
        },
        APIRoute(.post, "/v1/kv/batch", "Write many values (null deletes) all or nothing.") { request, control in
            let writes = try APIRequests.batch(try await body(of: request))
            return try ok(["written": try await control.putBatch(writes)], for: request) { "written: \($0["written"] ?? 0)" }
        },
        APIRoute(.post, "/v1/kv/delete", "Delete a key (a tombstone replicates).") { request, control in
            let key = try APIRequests.delete(try await body(of: request))
            return try ok(try await control.delete(key: key), for: request) { "deleted \($0.key) @ \($0.timestamp)" }
        },
        APIRoute(.get, "/v1/kv/get", "The live value of ?key=.") { request, control in
            guard let key = request.uri.queryParameters.get("key") else {
                throw AgentError(code: .badRequest, message: "no key given", hint: "GET /v1/kv/get?key=KEY")
            }
            guard let entry = await control.get(key: key) else {
                throw AgentError(code: .keyNotFound, message: "no live value for '\(key)'", hint: "list keys with `rumor list`")
            }
            return try ok(entry, for: request, text: APIText.value)
        },
        APIRoute(.get, "/v1/kv/list", "Live entries under ?prefix=, and their change-log seq.") { request, control in
            try ok(await control.list(prefix: request.uri.queryParameters.get("prefix") ?? ""), for: request, text: APIText.entries)
        },
        APIRoute(.get, "/v1/kv/status", "A summary of the replicated state.") { request, control in
            try ok(await control.status(), for: request, text: APIText.status)
        },
        APIRoute(.get, "/v1/kv/watch", "Stream changes under ?prefix= after ?from= (NDJSON or SSE).", handle: watch),
        APIRoute(.get, "/v1/keys", "Which gossip keys every live node holds.") { request, control in
            try ok(try await control.keyring(.list), for: request, text: APIText.keyring)
        },
        APIRoute(.post, "/v1/keys", "Install, use or remove a gossip key on every live node.") { request, control in
            let operation = try APIRequests.keyOperation(try await body(of: request))
            return try ok(try await control.keyring(operation), for: request) { report in
                "\(operation.name): done on \(report.responded) of \(report.nodes) nodes\n" + APIText.keyring(report)
            }
        },
        // Where Prometheus looks by default, outside the versioned API.
        APIRoute(.get, "/metrics", "Prometheus metrics: counters, gauges and histograms.") { _, control in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: await control.metricsText())))
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
