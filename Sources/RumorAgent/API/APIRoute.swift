import HTTPTypes
import Hummingbird
import NIOCore
import RumorAPI

/// One route of the local API: the method and path a request names, what it does in one line,
/// and the handler that answers it through `AgentControl`.
///
/// `APIRoute.all` is the only list of routes: the router, the 404 hint and the OpenAPI document
/// (`GET /v1/openapi.json`) are all built from it.
public struct APIRoute: Sendable {
    public let method: HTTPRequest.Method
    public let path: String
    /// What the route does, one line.
    public let summary: String
    /// What it takes and answers (the OpenAPI document is built from it).
    let contract: RouteContract
    /// Answers a request; errors become the error envelope (see `EnvelopeErrors`).
    let handle: @Sendable (Request, any AgentControl) async throws -> Response

    init(
        _ method: HTTPRequest.Method, _ path: String, _ summary: String, _ contract: RouteContract,
        handle: @escaping @Sendable (Request, any AgentControl) async throws -> Response
    ) {
        self.method = method
        self.path = path
        self.summary = summary
        self.contract = contract
        self.handle = handle
    }

    /// `METHOD /path`.
    public var name: String { "\(method) \(path)" }
}

extension APIRoute {
    /// Every route of the API.
    public static let all: [APIRoute] = [
        APIRoute(.get, "/v1/health", "Whether the agent answers, and whether it is ready (synced with a peer since it started).",
            RouteContract(
                operationID: "health",
                query: [
                    .init(name: "ready", description: "true: answer 503 not_ready while the node is syncing (a readiness probe)."),
                    .init(name: "wait", description: "Seconds (at most 300) to wait for the node to be ready before answering."),
                ],
                answer: .data(APISchemas.reference("Readiness")))) { request, control in
            let parameters = request.uri.queryParameters
            var limit: Duration?
            if let text = parameters.get("wait") {
                guard let seconds = Double(text), seconds >= 0, seconds <= 300 else {
                    throw AgentError(code: .badRequest, message: "wait must be seconds in [0, 300], not \(text)", hint: "e.g. /v1/health?wait=10")
                }
                limit = .milliseconds(Int64(seconds * 1000))
            }
            let readiness = await control.readiness(waitingUpTo: limit)
            if try flag("ready", in: request), !readiness.ready { throw AgentError.notReady(readiness) }
            return try ok(readiness, for: request) { $0.text }
        },
        APIRoute(.get, "/v1/members", "Every member this node knows, itself included.",
            RouteContract(
                operationID: "members",
                query: [
                    .init(name: "tag", description: "KEY=REGEX: only members whose tag KEY matches REGEX, whole value (repeatable; all must match)."),
                    .init(name: "status", description: "Only members in this state: alive, suspect, dead or left."),
                    .init(name: "name", description: "REGEX: only members whose whole name matches."),
                    .init(name: "sort", description: "name (default), or rtt: nearest first by estimated round trip (this node first, members without a coordinate last)."),
                ],
                answer: .data(APISchemas.object("Members, sorted by name (or as ?sort= asks).", ["members": APISchemas.array(of: APISchemas.reference("Member"), "Every member.")], required: ["members"])))) { request, control in
            let parameters = request.uri.queryParameters
            let filter = try MemberFilter(
                tags: parameters.getAll("tag"), status: parameters.get("status"), name: parameters.get("name"))
            let order = try MemberOrder(parsing: parameters.get("sort"))
            let members = order.sorted(await control.members().filter(filter.matches))
            return try ok(MembersData(members: members), for: request) { APIText.members($0.members) }
        },
        APIRoute(.get, "/v1/coordinate", "A node's Vivaldi network coordinate (default: this node's).",
            RouteContract(
                operationID: "coordinate",
                query: [.init(name: "node", description: "The member whose coordinate to report; default this node.")],
                answer: .data(APISchemas.reference("NodeCoordinate")))) { request, control in
            try ok(try await control.coordinate(of: request.uri.queryParameters.get("node")), for: request, text: APIText.coordinate)
        },
        APIRoute(.get, "/v1/rtt", "The round trip between two nodes estimated from their coordinates, as serf rtt.",
            RouteContract(
                operationID: "rtt",
                query: [
                    .init(name: "node", description: "The first node.", required: true),
                    .init(name: "other", description: "The second node; default this node."),
                ],
                answer: .data(APISchemas.reference("RoundTripEstimate")))) { request, control in
            guard let first = request.uri.queryParameters.get("node") else {
                throw AgentError(code: .badRequest, message: "no node given", hint: "GET /v1/rtt?node=NODE[&other=NODE]")
            }
            return try ok(try await control.roundTrip(from: first, to: request.uri.queryParameters.get("other")), for: request) { $0.text }
        },
        APIRoute(.post, "/v1/event", "Send a user event (Serf's) to every node.",
            RouteContract(operationID: "event", body: "EventRequest", answer: .data(APISchemas.reference("UserEvent")))) { request, control in
            let event = try APIRequests.event(try await body(of: request))
            return try ok(try await control.sendEvent(name: event.name, payload: event.payload, coalesce: event.coalesce, nodes: event.nodes), for: request) {
                "event \($0.name) sent at ltime \($0.ltime)"
            }
        },
        APIRoute(.post, "/v1/query", "Send a query (Serf's) and stream its acknowledgements and responses until its timeout.",
            RouteContract(operationID: "query", body: "QueryRequest", answer: .queryStream)) { request, control in
            let query = try APIRequests.query(try await body(of: request))
            let asText = request.headers[.accept]?.contains("text/plain") == true
            // The slot first: a refused stream must not have sent the query.
            let slot = try StreamPump.Slot()
            let (dispatch, answers) = try await control.query(query)
            return try slot.response(
                headers: [.contentType: asText ? "text/plain; charset=utf-8" : "application/x-ndjson", .cacheControl: "no-cache"],
                serverSentEvents: false, produce: APIStreams.query(dispatch, answers, asText: asText))
        },
        APIRoute(.get, "/v1/events", "Follow user events: one JSON object per line (or server-sent events), from now on.",
            RouteContract(operationID: "events", answer: .eventStream)) { request, control in
            let asServerSentEvents = request.headers[.accept]?.contains("text/event-stream") == true
            let slot = try StreamPump.Slot()
            let events = await control.events()
            return try slot.response(
                headers: [.contentType: asServerSentEvents ? "text/event-stream" : "application/x-ndjson", .cacheControl: "no-cache"],
                serverSentEvents: asServerSentEvents, produce: APIStreams.events(events, asServerSentEvents: asServerSentEvents))
        },
        APIRoute(.get, "/v1/monitor", "Follow the agent's log, live: one line per log line, from now on.",
            RouteContract(
                operationID: "monitor",
                query: [.init(name: "level", description: "Only lines at this level or above: trace, debug, info (default), notice, warning, error.")],
                answer: .document(mediaType: "text/plain", description: "Log lines as the agent writes them, until the agent stops."))) { request, control in
            let slot = try StreamPump.Slot()
            let lines = try await control.monitor(level: request.uri.queryParameters.get("level") ?? "info")
            return try slot.response(
                headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-cache"], serverSentEvents: false,
                produce: APIStreams.lines(lines))
        },
        APIRoute(.post, "/v1/tags", "Set or delete this node's tags and announce them.",
            RouteContract(operationID: "tags", body: "TagsRequest", answer: .data(APISchemas.reference("Member")))) { request, control in
            let change = try APIRequests.tags(try await body(of: request))
            return try ok(try await control.updateTags(set: change.set, delete: change.delete), for: request) {
                APIText.members([$0])
            }
        },
        APIRoute(.get, "/v1/info", "A summary of this node: name, address, health, counters.",
            RouteContract(operationID: "info", answer: .data(APISchemas.reference("Info")))) { request, control in
            try ok(await control.info(), for: request, text: APIText.info)
        },
        APIRoute(.post, "/v1/join", "Join the swarm through the given seed addresses.",
            RouteContract(
                operationID: "join", body: "JoinRequest",
                answer: .data(APISchemas.object("How many seeds answered.", ["contacted": APISchemas.integer("Seeds that answered.")], required: ["contacted"])))) { request, control in
            let addresses = try APIRequests.join(try await body(of: request))
            return try ok(["contacted": try await control.join(addresses)], for: request) {
                "joined: \($0["contacted"] ?? 0) of \(addresses.count) contacted"
            }
        },
        APIRoute(.post, "/v1/leave", "Leave the swarm gracefully.",
            RouteContract(operationID: "leave", answer: .data(APISchemas.object("Left.", ["left": ["const": true]], required: ["left"])))) { request, control in
            try await control.leave()
            return try ok(["left": true], for: request) { _ in "left the swarm" }
        },
        APIRoute(.post, "/v1/kv/put", "Write a value, optionally waiting for replicas.",
            RouteContract(operationID: "put", body: "PutRequest", answer: .data(APISchemas.reference("Entry")))) { request, control in
            let put = try APIRequests.put(try await body(of: request))
            return try ok(
                try await control.put(
                    key: put.key, value: put.value, timeToLive: put.timeToLive, ephemeral: put.ephemeral,
                    replicas: put.replicas, timeout: put.timeout),
                for: request, text: APIText.written)
        },
        APIRoute(.post, "/v1/kv/batch", "Write many values (null deletes) all or nothing.",
            RouteContract(
                operationID: "batch", body: "BatchRequest",
                answer: .data(APISchemas.object("How many were written.", ["written": APISchemas.integer("Writes applied.")], required: ["written"])))) { request, control in
            let writes = try APIRequests.batch(try await body(of: request))
            return try ok(["written": try await control.putBatch(writes)], for: request) { "written: \($0["written"] ?? 0)" }
        },
        APIRoute(.post, "/v1/kv/delete", "Delete a key (a tombstone replicates).",
            RouteContract(operationID: "delete", body: "DeleteRequest", answer: .data(APISchemas.reference("Entry")))) { request, control in
            let delete = try APIRequests.delete(try await body(of: request))
            return try ok(
                try await control.delete(key: delete.key, replicas: delete.replicas, timeout: delete.timeout), for: request
            ) { "deleted \($0.key) @ \($0.timestamp)" + ($0.replicas.map { " on \($0.count) nodes" } ?? "") }
        },
        APIRoute(.get, "/v1/kv/get", "The live value of ?key=.",
            RouteContract(
                operationID: "get", query: [.init(name: "key", description: "The key to read.", required: true), staleParameter],
                answer: .data(APISchemas.reference("Entry")))) { request, control in
            guard let key = request.uri.queryParameters.get("key") else {
                throw AgentError(code: .badRequest, message: "no key given", hint: "GET /v1/kv/get?key=KEY")
            }
            try await requireReady(request, control)
            guard let entry = await control.get(key: key) else {
                throw AgentError(code: .keyNotFound, message: "no live value for '\(key)'", hint: "list keys with `rumor list`")
            }
            return try ok(entry, for: request, text: APIText.value)
        },
        APIRoute(.get, "/v1/kv/list", "Live entries under ?prefix=, and their change-log seq.",
            RouteContract(
                operationID: "list", query: [.init(name: "prefix", description: "Only keys that start with it; default all."), staleParameter],
                answer: .data(APISchemas.reference("EntryList")))) { request, control in
            try await requireReady(request, control)
            return try ok(await control.list(prefix: request.uri.queryParameters.get("prefix") ?? ""), for: request, text: APIText.entries)
        },
        APIRoute(.get, "/v1/kv/status", "A summary of the replicated state.",
            RouteContract(operationID: "status", answer: .data(APISchemas.reference("StateStatus")))) { request, control in
            try ok(await control.status(), for: request, text: APIText.status)
        },
        APIRoute(.get, "/v1/kv/watch", "Stream changes under ?prefix= after ?from= (NDJSON or SSE).",
            RouteContract(
                operationID: "watch",
                query: [
                    .init(name: "prefix", description: "Only keys that start with it; default all."),
                    .init(name: "from", description: "Replay changes after this seq first (0: every key); default: only new changes."),
                    .init(
                        name: "epoch",
                        description: "The change-log epoch `from` was read in (each line's `epoch`): if the agent's log is a new one (restarted without --data-dir, or after a crash), the watch is refused with watch_epoch_changed instead of resuming at a seq that names other changes. Delivery is at least once: after a replay, skip the keys whose timestamp, origin and change you already processed."),
                ],
                answer: .entryStream),
            handle: watch),
        APIRoute(.get, "/v1/keys", "Which gossip keys every live node holds.",
            RouteContract(operationID: "listKeys", answer: .data(APISchemas.reference("KeyringReport")))) { request, control in
            try ok(try await control.keyring(.list), for: request, text: APIText.keyring)
        },
        APIRoute(.post, "/v1/keys", "Install, use or remove a gossip key on every live node.",
            RouteContract(operationID: "changeKeys", body: "KeyringRequest", answer: .data(APISchemas.reference("KeyringReport")))) { request, control in
            let operation = try APIRequests.keyOperation(try await body(of: request))
            return try ok(try await control.keyring(operation), for: request) { report in
                "\(operation.name): done on \(report.responded) of \(report.nodes) nodes\n" + APIText.keyring(report)
            }
        },
        // Where Prometheus looks by default, outside the versioned API.
        APIRoute(.get, "/metrics", "Prometheus metrics: counters, gauges and histograms.",
            RouteContract(
                operationID: "metrics",
                answer: .document(mediaType: "text/plain; version=0.0.4", description: "Prometheus text exposition format."))) { _, control in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: await control.metricsText())))
        },
        // The status page holds no data (it reads the API like any client), so a browser loads it
        // without the token and then asks for it.
        APIRoute(
            .get, "/", "The status page: members, state and recent changes, live.",
            RouteContract(operationID: "statusPage", answer: .document(mediaType: "text/html", description: "One self-contained HTML page."), needsToken: false)
        ) { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache", .contentSecurityPolicy: StatusPage.contentSecurityPolicy],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: PackageResources.StatusPage_html)))
        },
        APIRoute(
            .get, "/v1/openapi.json", "This API's OpenAPI 3.1 document.",
            RouteContract(operationID: "openapi", answer: .document(mediaType: "application/json", description: "The OpenAPI document."))
        ) { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.json)))
        },
    ]

    /// `METHOD /path` of the routes that need no token.
    static let withoutToken = Set(all.filter { !$0.contract.needsToken }.map(\.name))

    /// The hint of a 404: every route, the GETs then the POSTs.
    static let notFoundHint: String = {
        func paths(_ method: HTTPRequest.Method) -> String {
            all.filter { $0.method == method }.map(\.path).joined(separator: ", ")
        }
        return "routes: GET \(paths(.get)); POST \(paths(.post))"
    }()

    /// `GET /v1/kv/watch?prefix=…&from=SEQ&epoch=E`: NDJSON, or server-sent events with
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
        let epoch = request.uri.queryParameters.get("epoch")
        let slot = try StreamPump.Slot()
        let opening = try await control.watch(prefix: prefix, from: from, epoch: epoch)
        return try slot.response(
            headers: [
                .contentType: events ? "text/event-stream" : "application/x-ndjson", .cacheControl: "no-cache",
                APIServer.watchEpoch: opening.epoch, APIServer.watchPosition: String(opening.position),
            ],
            serverSentEvents: events, produce: APIStreams.changes(opening.changes, asServerSentEvents: events))
    }

    /// `?stale=true` on a read: answer from this node's state even while it is syncing.
    static let staleParameter = RouteContract.Parameter(
        name: "stale",
        description: "true: answer even while the node is syncing after its start (the value may be older than the swarm's); default false: 503 not_ready then.")

    /// Refuses a read with `not_ready` while the node is syncing, unless it asks `?stale=true`.
    private static func requireReady(_ request: Request, _ control: any AgentControl) async throws {
        guard try !flag("stale", in: request) else { return }
        let readiness = await control.readiness(waitingUpTo: nil)
        guard readiness.ready else { throw AgentError.notReady(readiness) }
    }

    /// A `true`/`false` query parameter (`1`/`0` too); false when absent.
    private static func flag(_ name: String, in request: Request) throws -> Bool {
        guard let text = request.uri.queryParameters.get(name) else { return false }
        switch text.lowercased() {
        case "true", "1", "": return true
        case "false", "0": return false
        default: throw AgentError(code: .badRequest, message: "\(name) must be true or false, not \(text)", hint: "e.g. ?\(name)=true")
        }
    }

    /// The request body, refused past `APIRequests.maximumBodyBytes`: by its Content-Length before
    /// any of it is read (the connection's `ConnectionGuard` refuses that too), else as it arrives.
    private static func body(of request: Request) async throws -> [UInt8] {
        if let text = request.headers[.contentLength], let length = Int(text), length > APIRequests.maximumBodyBytes {
            throw AgentError(
                code: .tooLarge, message: "the request body (\(length) bytes) exceeds \(APIRequests.maximumBodyBytes) bytes; it was not read",
                hint: "send a smaller body: split a batch into several")
        }
        let buffer = try await request.body.collect(upTo: APIRequests.maximumBodyBytes)
        return Array(buffer.readableBytesView)
    }

    private struct MembersData: Encodable {
        var members: [MemberSnapshot]
    }
}
