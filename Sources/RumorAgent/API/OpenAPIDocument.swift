import Foundation

/// What a route takes and answers, for the OpenAPI document (`GET /v1/openapi.json`).
struct RouteContract: Sendable {
    /// A query parameter.
    struct Parameter: Sendable {
        var name: String
        var description: String
        var required = false
    }

    /// What a successful answer is.
    enum Answer: Sendable {
        /// The success envelope around `data` (or, with `Accept: text/plain`, text for people).
        case data(JSONValue)
        /// A stream of entries: NDJSON, or server-sent events with `Accept: text/event-stream`.
        case entryStream
        /// A stream of user events, the same two ways.
        case eventStream
        /// A query's stream of answers (NDJSON).
        case queryStream
        /// A document of this media type, not enveloped.
        case document(mediaType: String, description: String)
    }

    /// A stable name for client generators.
    var operationID: String
    var query: [Parameter] = []
    /// The request body's schema (a `components.schemas` name); nil: no body.
    var body: String?
    var answer: Answer
    /// False for the one route a browser loads without the token (it holds no data).
    var needsToken = true
}

/// The OpenAPI 3.1 document of the local API, built from `APIRoute.all`: every route the
/// server answers is in it, and nothing else.
enum OpenAPIDocument {
    /// The document as JSON bytes.
    static let json: [UInt8] = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        return Array((try? encoder.encode(document)) ?? Data())
    }()

    static var document: JSONValue {
        var paths: [(String, JSONValue)] = []
        for path in uniquePaths {
            let operations = APIRoute.all.filter { $0.path == path }.map { route in
                (route.method.rawValue.lowercased(), operation(route))
            }
            paths.append((path, .object(operations)))
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "Rumor agent API",
                "version": "1",
                "description": """
                    The local HTTP API of a Rumor agent: membership, the replicated key-value state, \
                    watches, the gossip keyring and metrics. JSON answers come in the envelope \
                    {"status":"ok","data":…} or {"status":"error","code","message","hint"}; send \
                    Accept: text/plain for text meant for people. With --api-token every route but the \
                    status page needs Authorization: Bearer TOKEN.
                    """,
            ],
            "servers": [["url": "http://127.0.0.1:7373", "description": "The default --api address."]],
            "paths": .object(paths),
            "components": [
                "schemas": .object(APISchemas.components),
                "securitySchemes": ["token": ["type": "http", "scheme": "bearer", "description": "The agent's --api-token."]],
            ],
        ]
    }

    private static var uniquePaths: [String] {
        var seen = Set<String>()
        return APIRoute.all.map(\.path).filter { seen.insert($0).inserted }
    }

    private static func operation(_ route: APIRoute) -> JSONValue {
        let contract = route.contract
        var members: [(String, JSONValue)] = [("operationId", .string(contract.operationID)), ("summary", .string(route.summary))]
        var parameters = contract.query.map { parameter -> JSONValue in
            [
                "name": .string(parameter.name), "in": "query", "required": .boolean(parameter.required),
                "description": .string(parameter.description), "schema": ["type": "string"],
            ]
        }
        if case .entryStream = contract.answer {
            parameters.append([
                "name": "Last-Event-ID", "in": "header", "required": false,
                "description": "Resume after this seq (what an EventSource sends on reconnect); same as from.",
                "schema": ["type": "string"],
            ])
        }
        if !parameters.isEmpty { members.append(("parameters", .array(parameters))) }
        if let body = contract.body {
            members.append((
                "requestBody",
                ["required": true, "content": ["application/json": ["schema": APISchemas.reference(body)]]]
            ))
        }
        var responses: [(String, JSONValue)] = [("200", success(contract.answer))]
        responses += limitResponses.map { ($0.status, error($0.description)) }
        if [.post, .put, .patch, .delete].contains(route.method) {
            responses.append(("415", error("unsupported_media_type: a state-changing request without Content-Type: application/json.")))
        }
        responses.append(("default", errorResponse))
        members.append(("responses", .object(responses)))
        // Without a token configured no route needs one; with one, all but the status page do.
        members.append(("security", contract.needsToken ? [[:], ["token": []]] : [[:]]))
        return .object(members)
    }

    private static func success(_ answer: RouteContract.Answer) -> JSONValue {
        switch answer {
        case .data(let data):
            return [
                "description": "Success.",
                "content": [
                    "application/json": ["schema": APISchemas.ok(data)],
                    "text/plain": ["schema": ["type": "string", "description": "The same answer as text for people."]],
                ],
            ]
        case .entryStream:
            return [
                "description": "Changes as they happen, oldest first, until the agent stops.",
                "content": [
                    "application/x-ndjson": [
                        "schema": [
                            "$ref": "#/components/schemas/Entry",
                            "description": "One Entry per line (with seq and change); a last Error line if the watch fails.",
                        ]
                    ],
                    "text/event-stream": [
                        "schema": ["type": "string", "description": "Server-sent events: id is the seq, data an Entry; event: error ends it."]
                    ],
                ],
            ]
        case .eventStream:
            return [
                "description": "User events as this node delivers them, and queries it receives, from now on, until the agent stops.",
                "content": [
                    "application/x-ndjson": [
                        "schema": ["$ref": "#/components/schemas/UserEvent", "description": "One UserEvent per line."]
                    ],
                    "text/event-stream": [
                        "schema": ["type": "string", "description": "Server-sent events: event: user or query, data a UserEvent."]
                    ],
                ],
            ]
        case .queryStream:
            return [
                "description": "The query, then its acknowledgements and responses as they arrive, then the totals when its timeout ends it.",
                "content": [
                    "application/x-ndjson": [
                        "schema": ["$ref": "#/components/schemas/QueryAnswer", "description": "One QueryAnswer per line."]
                    ]
                ],
            ]
        case .document(let mediaType, let description):
            return ["description": .string(description), "content": [mediaType: ["schema": ["type": "string"]]]]
        }
    }

    /// The refusals every route may answer, whatever it does (`CrossSitePolicy`, `ConnectionGuard`, `APILimits`).
    private static let limitResponses: [(status: String, description: String)] = [
        ("400", "bad_request: bad input, a query that is not UTF-8 once percent-decoded, or malformed HTTP framing."),
        ("403", "forbidden: a Host that is not the API's address nor an allowed name, or a foreign web page (Origin, Sec-Fetch-Site)."),
        ("413", "too_large: a request body past the limit, refused before it is read."),
        ("503", "too_many_connections or too_many_streams (api_max_connections, api_max_streams), or not_ready, clock_skew."),
    ]

    private static func error(_ description: String) -> JSONValue {
        [
            "description": .string(description),
            "content": [
                "application/json": ["schema": APISchemas.reference("Error")],
                "text/plain": ["schema": ["type": "string", "description": "error: MESSAGE and hint: HINT lines."]],
            ],
        ]
    }

    private static let errorResponse: JSONValue = [
        "description": "Any failure: the HTTP status follows the code (400 bad input, 401 token, 403 cross-site, 404, 409, 413, 415, 5xx).",
        "content": [
            "application/json": ["schema": APISchemas.reference("Error")],
            "text/plain": ["schema": ["type": "string", "description": "error: MESSAGE and hint: HINT lines."]],
        ],
    ]
}

/// The status page's headers beyond its type.
enum StatusPage {
    /// Only its own inline script and style, and requests to this agent: nothing from elsewhere.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'"
}
