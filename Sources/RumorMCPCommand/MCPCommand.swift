import ArgumentParser
import Dispatch
import Foundation
import Logging
import MCP
import RumorCLI

/// `rumor mcp`: a Model Context Protocol server over stdio, for agent frameworks. It talks to the
/// local agent's HTTP API like the CLI does (the same client, asking for JSON): tools for
/// members, get, put, delete, list and status; every key as a resource `rumor://kv/{key}`, with
/// subscriptions driven by one watch on the agent.
@main
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rumor mcp", abstract: ServerCommands.mcpAbstract, discussion: ServerCommands.mcpDiscussion)
    @OptionGroup var options: ClientOptions

    static func main() async {
        var command = CommandLineRunner.parse(Self.self)
        do {
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch {
            CommandLineRunner.fail(error, root: Self.self)
        }
    }

    func run() async throws {
        var jsonClient = options.client
        jsonClient.json = true
        let client = jsonClient
        let bridge = AgentBridge(client: client)
        let server = Server(
            name: "rumor", version: "0.1.0",
            capabilities: .init(resources: .init(subscribe: true, listChanged: false), tools: .init(listChanged: false)))
        let subscriptions = Subscriptions()

        await server.withMethodHandler(ListTools.self) { _ in .init(tools: MCPTools.all) }
        await server.withMethodHandler(CallTool.self) { call in
            await bridge.callTool(call.name, arguments: call.arguments ?? [:])
        }
        await server.withMethodHandler(ListResources.self) { _ in
            let data = try await bridge.data("GET", "/v1/kv/list")
            let entries = (data?["entries"] as? [[String: Any]]) ?? []
            return .init(
                resources: entries.prefix(MCPTools.listedResources).compactMap { entry in
                    guard let key = entry["key"] as? String else { return nil }
                    return Resource(name: key, uri: KeyURI.uri(for: key), mimeType: "text/plain")
                })
        }
        await server.withMethodHandler(ListResourceTemplates.self) { _ in
            .init(templates: [
                Resource.Template(
                    uriTemplate: "rumor://kv/{key}", name: "key",
                    description: "A key of the replicated state; reading gives its live value.", mimeType: "text/plain")
            ])
        }
        await server.withMethodHandler(ReadResource.self) { read in
            guard let key = KeyURI.key(in: read.uri) else {
                throw MCPError.invalidParams("not a Rumor key URI: \(read.uri) (expected rumor://kv/{key})")
            }
            let data = try await bridge.data("GET", "/v1/kv/get" + APIClient.query([("key", key)]))
            let value = (data?["value"] as? String) ?? (data?["valueBase64"] as? String) ?? ""
            return .init(contents: [.text(value, uri: read.uri, mimeType: "text/plain")])
        }
        await server.withMethodHandler(ResourceSubscribe.self) { subscribe in
            guard KeyURI.key(in: subscribe.uri) != nil else {
                throw MCPError.invalidParams("not a Rumor key URI: \(subscribe.uri) (expected rumor://kv/{key})")
            }
            subscriptions.add(subscribe.uri)
            return .init()
        }
        await server.withMethodHandler(ResourceUnsubscribe.self) { unsubscribe in
            subscriptions.remove(unsubscribe.uri)
            return .init()
        }

        // One watch on the agent for every subscription, on its own thread (it blocks in read(2)).
        let watchThread = Thread {
            var watch = Watch(client: client, prefix: "", last: nil)
            do {
                try watch.follow(reconnect: true) { lines in
                    for line in lines.split(separator: "\n") {
                        guard let key = JSONText.string("key", in: String(line)) else { continue }
                        let uri = KeyURI.uri(for: key)
                        guard subscriptions.contains(uri) else { continue }
                        Task { try? await server.notify(ResourceUpdatedNotification.message(.init(uri: uri))) }
                    }
                }
            } catch let error as CLIError {
                Output.printError("rumor mcp: the watch behind resource subscriptions ended: \(error.message) (\(error.hint))")
            } catch {
                Output.printError("rumor mcp: the watch behind resource subscriptions ended: \(error)")
            }
        }
        watchThread.start()

        try await server.start(transport: BlockingStdioTransport())
        await server.waitUntilCompleted()
    }
}

/// The subscribed resource URIs, shared between MCP handlers and the watch thread.
final class Subscriptions: @unchecked Sendable {
    private let lock = NSLock()
    private var uris: Set<String> = []

    func add(_ uri: String) { lock.withLock { _ = uris.insert(uri) } }
    func remove(_ uri: String) { lock.withLock { _ = uris.remove(uri) } }
    func contains(_ uri: String) -> Bool { lock.withLock { uris.contains(uri) } }
}

/// `rumor://kv/{key}`, the key percent-encoded except for `/`.
enum KeyURI {
    static let prefix = "rumor://kv/"

    static func uri(for key: String) -> String {
        prefix + key.split(separator: "/", omittingEmptySubsequences: false).map { APIClient.percentEncodedComponent(String($0)) }
            .joined(separator: "/")
    }

    static func key(in uri: String) -> String? {
        guard uri.hasPrefix(prefix) else { return nil }
        let key = String(uri.dropFirst(prefix.count)).removingPercentEncoding ?? ""
        return key.isEmpty ? nil : key
    }
}

/// Calls the agent's API off the cooperative pool (the client blocks in read(2)) and turns its
/// answers into MCP results.
struct AgentBridge: Sendable {
    let client: APIClient

    /// The answer's `data`, or throws its error as an MCP error.
    func data(_ method: String, _ target: String, body: String? = nil, timeout: Double = 10) async throws -> [String: Any]? {
        let text = try await call(method, target, body: body, timeout: timeout)
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        return object?["data"] as? [String: Any]
    }

    func call(_ method: String, _ target: String, body: String? = nil, timeout: Double = 10) async throws -> String {
        let client = self.client
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    continuation.resume(returning: try client.call(method, target, body: body, timeout: timeout))
                } catch let error as CLIError {
                    continuation.resume(throwing: MCPTools.MCPAgentError(error: error))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Runs a tool: the agent's `data` as JSON text, or a tool error carrying code, message and hint.
    func callTool(_ name: String, arguments: [String: Value]) async -> CallTool.Result {
        do {
            let request = try MCPTools.request(name, arguments: arguments)
            let text = try await call(request.method, request.target, body: request.body, timeout: request.timeout)
            let data: Any
            if request.isQuery {
                data = MCPTools.queryResult(text)
            } else {
                let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                data = object?["data"] ?? NSNull()
            }
            let json = try JSONSerialization.data(withJSONObject: data, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
            return .init(content: [.text(text: String(decoding: json, as: UTF8.self), annotations: nil, _meta: nil)], isError: false)
        } catch let error as MCPTools.MCPAgentError {
            return .init(content: [.text(text: error.error.json, annotations: nil, _meta: nil)], isError: true)
        } catch {
            let failure = CLIError(code: "bad_response", message: "\(error)", hint: "see the agent's log")
            return .init(content: [.text(text: failure.json, annotations: nil, _meta: nil)], isError: true)
        }
    }
}

/// The tools and how each maps onto the API.
enum MCPTools {
    /// Resources listed by `resources/list` (the rest are reachable through the template).
    static let listedResources = 1_000

    struct MCPAgentError: Error {
        var error: CLIError

        init(error: CLIError) { self.error = error }
    }

    static func schema(_ properties: [String: Value], required: [String] = []) -> Value {
        .object(["type": "object", "properties": .object(properties), "required": .array(required.map { .string($0) })])
    }

    static func string(_ description: String) -> Value { .object(["type": "string", "description": .string(description)]) }

    /// The `stale` argument of the reading tools.
    static let stale: Value = .object([
        "type": "boolean",
        "description": "Answer even while the agent is syncing after a restart (the value may be older than the swarm's). Default false: such a read fails with not_ready; retry shortly.",
    ])

    static let all: [Tool] = [
        Tool(
            name: "members",
            description: "Every member of the swarm this node knows: name, address, state (alive, suspect, dead, left), metadata, network coordinate and estimated round trip (rttMs). With sort=rtt, nearest first.",
            inputSchema: schema(["sort": string("name (default) or rtt (nearest first).")])),
        Tool(
            name: "rtt",
            description: "The round trip between two nodes estimated from their Vivaldi network coordinates (as serf rtt); other defaults to this node. Fails with unknown_node, or no_coordinate before the node has answered a probe.",
            inputSchema: schema(["node": string("The first node."), "other": string("The second node (default: this node).")], required: ["node"])),
        Tool(
            name: "get",
            description: "Read a key's live value from the replicated state. Fails with not_ready while the agent is syncing after a restart, unless stale is true.",
            inputSchema: schema(["key": string("The key."), "stale": stale], required: ["key"])),
        Tool(
            name: "put",
            description: "Write a value; it replicates to every node (last writer wins). Optionally with a time to live, as ephemeral presence (gone when this node fails or leaves), or waiting until N nodes (or all) hold it.",
            inputSchema: schema(
                [
                    "key": string("The key (UTF-8)."), "value": string("The value (text; JSON is the common case)."),
                    "ttl": string("Time to live: 30s, 5m, 2h or plain seconds."),
                    "ephemeral": .object(["type": "boolean", "description": "Remove the value when this node fails or leaves."]),
                    "wait": string("Return only once this many nodes hold the write: 'all' or a count (the writer included)."),
                    "timeout": string("How long wait may take: 5s, 1m or plain seconds (default 10s)."),
                ], required: ["key", "value"])),
        Tool(
            name: "delete", description: "Delete a key (a tombstone replicates, so the key does not come back); optionally waiting until N nodes (or all) hold the delete.",
            inputSchema: schema(
                [
                    "key": string("The key."),
                    "wait": string("Return only once this many nodes hold the delete: 'all' or a count (the writer included)."),
                    "timeout": string("How long wait may take: 5s, 1m or plain seconds (default 10s)."),
                ], required: ["key"])),
        Tool(
            name: "list",
            description: "Live keys and values, optionally under a prefix. Fails with not_ready while the agent is syncing after a restart, unless stale is true.",
            inputSchema: schema(["prefix": string("Only keys starting with this."), "stale": stale])),
        Tool(name: "status", description: "A summary of the replicated state: values, tombstones, change-log seq, last anti-entropy, per-peer lag.", inputSchema: schema([:])),
        Tool(
            name: "event", description: "Send a user event (Serf's) to every node once, or to chosen Rumor nodes: a 'do this now' signal that stores nothing. Name and payload: up to 512 bytes to every node (Serf's limit), up to 1 MiB straight to Rumor nodes.",
            inputSchema: schema(
                [
                    "name": string("The event's name."), "payload": string("The payload (text)."),
                    "coalesce": .object(["type": "boolean", "description": "Receivers may keep only the latest of a burst with this name."]),
                    "nodes": .object(["type": "array", "items": ["type": "string"], "description": "Only these Rumor nodes get it (straight, not gossiped)."]),
                ], required: ["name"])),
        Tool(
            name: "query",
            description: "Ask nodes something (Serf's query) and collect their answers until the timeout: each node that passes the filters acknowledges, and its query handler's output is its response.",
            inputSchema: schema(
                [
                    "name": string("The query's name."), "payload": string("The payload (text)."),
                    "nodes": .object(["type": "array", "items": ["type": "string"], "description": "Only these nodes answer."]),
                    "tags": .object(["type": "array", "items": ["type": "string"], "description": "KEY=REGEX each: only nodes whose tag matches answer."]),
                    "timeout": string("How long to collect answers: 5s, 1m or plain seconds (default: Serf's for the swarm's size)."),
                ], required: ["name"])),
    ]

    /// A query's NDJSON answer stream as one result: `{"acks":[…],"responses":{node: text}}`.
    static func queryResult(_ text: String) -> [String: Any] {
        var acks: [String] = []
        var responses: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let type = object["type"] as? String, let from = object["from"] as? String
            else { continue }
            if type == "ack" { acks.append(from) } else if type == "response" { responses[from] = object["payload"] as? String ?? "" }
        }
        return ["acks": acks.sorted(), "responses": responses]
    }

    struct Request {
        var method: String
        var target: String
        var body: String?
        var timeout: Double = 10
        /// The answer is a query's NDJSON stream, not an envelope.
        var isQuery = false
    }

    /// The API request a tool call makes.
    /// - Throws: `MCPAgentError` `bad_arguments` for a missing or malformed argument.
    static func request(_ name: String, arguments: [String: Value]) throws -> Request {
        func required(_ argument: String) throws -> String {
            guard let value = arguments[argument]?.stringValue else {
                throw MCPAgentError(error: CLIError(
                    code: "bad_arguments", message: "\(name) needs the string argument '\(argument)'",
                    hint: "see the tool's input schema (tools/list)"))
            }
            return value
        }
        let staleParameter: (String, String?) = ("stale", arguments["stale"]?.boolValue == true ? "true" : nil)
        func duration(_ argument: String) throws -> Double? {
            guard let value = arguments[argument] else { return nil }
            if let seconds = value.doubleValue ?? value.intValue.map(Double.init) { return seconds }
            do {
                return try parseDuration(value.stringValue ?? "")
            } catch {
                throw MCPAgentError(error: error)
            }
        }
        switch name {
        case "members": return Request(method: "GET", target: "/v1/members" + APIClient.query([("sort", arguments["sort"]?.stringValue)]))
        case "rtt":
            return Request(
                method: "GET", target: "/v1/rtt" + APIClient.query([("node", try required("node")), ("other", arguments["other"]?.stringValue)]))
        case "status": return Request(method: "GET", target: "/v1/kv/status")
        case "get":
            return Request(method: "GET", target: "/v1/kv/get" + APIClient.query([("key", try required("key")), staleParameter]))
        case "list":
            return Request(
                method: "GET", target: "/v1/kv/list" + APIClient.query([("prefix", arguments["prefix"]?.stringValue ?? ""), staleParameter]))
        case "delete", "put":
            var body = ["key": JSONText.quote(try required("key"))]
            if name == "put" {
                body["value"] = JSONText.quote(try required("value"))
                if let ttl = try duration("ttl") { body["ttlSeconds"] = String(ttl) }
                if arguments["ephemeral"]?.boolValue == true { body["ephemeral"] = "true" }
            }
            let timeout = try duration("timeout")
            if let timeout { body["timeoutSeconds"] = String(timeout) }
            if let wait = arguments["wait"] {
                body["wait"] = JSONText.quote(wait.stringValue ?? wait.intValue.map(String.init) ?? "")
            }
            return Request(method: "POST", target: "/v1/kv/\(name)", body: JSONText.object(body), timeout: (timeout ?? 10) + 10)
        case "event":
            var body = ["name": JSONText.quote(try required("name"))]
            if let payload = arguments["payload"]?.stringValue { body["payload"] = JSONText.quote(payload) }
            if arguments["coalesce"]?.boolValue == true { body["coalesce"] = "true" }
            if let nodes = arguments["nodes"]?.arrayValue { body["nodes"] = JSONText.array(nodes.compactMap(\.stringValue)) }
            return Request(method: "POST", target: "/v1/event", body: JSONText.object(body))
        case "query":
            var body = ["name": JSONText.quote(try required("name"))]
            if let payload = arguments["payload"]?.stringValue { body["payload"] = JSONText.quote(payload) }
            for list in ["nodes", "tags"] {
                guard let values = arguments[list]?.arrayValue else { continue }
                body[list] = JSONText.array(values.compactMap(\.stringValue))
            }
            let timeout = try duration("timeout")
            if let timeout { body["timeoutSeconds"] = String(timeout) }
            return Request(method: "POST", target: "/v1/query", body: JSONText.object(body), timeout: (timeout ?? 10) + 10, isQuery: true)
        default:
            throw MCPAgentError(error: CLIError(
                code: "bad_arguments", message: "no tool named '\(name)'",
                hint: "the tools are " + all.map(\.name).joined(separator: ", ")))
        }
    }
}

/// MCP over stdin/stdout with a thread that blocks in read(2): an idle `rumor mcp` costs no CPU
/// (the SDK's `StdioTransport` polls a non-blocking descriptor every 10 ms, 1 % of a core idle).
actor BlockingStdioTransport: Transport {
    nonisolated let logger = Logger(label: "rumor.mcp")
    private let messages: AsyncThrowingStream<Data, Swift.Error>
    private let continuation: AsyncThrowingStream<Data, Swift.Error>.Continuation

    init() {
        (messages, continuation) = AsyncThrowingStream.makeStream(of: Data.self)
    }

    func connect() async throws {
        let continuation = self.continuation
        Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                pending += buffer[0..<count]
                var start = 0
                while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    if newline > start { continuation.yield(Data(pending[start..<newline])) }
                    start = newline + 1
                }
                pending.removeFirst(start)
            }
            continuation.finish()
        }.start()
    }

    func disconnect() async {
        continuation.finish()
    }

    func send(_ data: Data) async throws {
        var bytes = Array(data)
        bytes.append(UInt8(ascii: "\n"))
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw MCPError.transportError(POSIXError(.EPIPE)) }
            sent += count
        }
    }

    nonisolated func receive() -> AsyncThrowingStream<Data, Swift.Error> { messages }
}

/// A resource read refused by the agent (`not_ready` while it syncs, `key_not_found`) reaches
/// the client as an internal error whose message is the agent's error envelope.
extension MCPTools.MCPAgentError: LocalizedError {
    var errorDescription: String? { error.json }
}
