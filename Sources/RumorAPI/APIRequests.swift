import Foundation
import RumorCore
import RumorWire

/// The local API's request bodies (`JoinRequest`, `PutRequest`, `BatchRequest`, `DeleteRequest`,
/// `KeyringRequest`, which the CLI encodes): bytes in, a validated request or an `AgentError`
/// (`bad_request`, `bad_key`, `too_large`) out. Kept apart from the HTTP server so the decoders
/// can be fuzzed and tested without sockets.
public enum APIRequests {
    /// Largest request body accepted (the server refuses longer ones before reading them).
    public static let maximumBodyBytes = 64 << 20

    /// `POST /v1/join`: `{"addresses":["host:port",…]}`.
    public static func join(_ body: [UInt8]) throws(AgentError) -> [String] {
        let join = try decode(JoinRequest.self, body, hint: #"send {"addresses":["host:port", …]}"#)
        guard !join.addresses.isEmpty else {
            throw AgentError(code: .badRequest, message: "no addresses to join", hint: "give at least one host:port")
        }
        return join.addresses
    }

    /// `POST /v1/event`: a user event's name, payload and coalescing.
    public static func event(_ body: [UInt8]) throws(AgentError) -> (name: String, payload: [UInt8], coalesce: Bool, nodes: [String]?) {
        let event = try decode(EventRequest.self, body, hint: #"send {"name":"deploy","payload":"v1.2","coalesce":false}"#)
        guard !event.name.isEmpty else {
            throw AgentError(code: .badRequest, message: "an event needs a name", hint: #"send {"name":"deploy"}"#)
        }
        if let nodes = event.nodes, nodes.isEmpty || nodes.contains(where: \.isEmpty) {
            throw AgentError(code: .badRequest, message: "nodes lists no node, or an empty name", hint: #"send {"name":"deploy","nodes":["web-1"]}"#)
        }
        return (event.name, Array((event.payload ?? "").utf8), event.coalesce ?? false, event.nodes)
    }

    /// A validated `POST /v1/query`.
    public struct Query: Sendable, Hashable {
        public var name: String
        public var payload: [UInt8]
        public var filters: [SerfFilter]
        public var timeout: Duration?
        public var wantsAck: Bool
        public var relayFactor: UInt8
    }

    /// `POST /v1/query`: a name (not one of Serf's internal `_serf_` queries), filters whose
    /// regular expressions compile, a timeout in (0, 3600] s, a relay factor in 0…5.
    public static func query(_ body: [UInt8]) throws(AgentError) -> Query {
        let hint = #"send {"name":"uptime","payload":"","nodes":["web-1"],"tags":["role=web"],"timeoutSeconds":3,"ack":true}"#
        let request = try decode(QueryRequest.self, body, hint: hint)
        guard !request.name.isEmpty else {
            throw AgentError(code: .badRequest, message: "a query needs a name", hint: hint)
        }
        guard !request.name.hasPrefix("_serf_") else {
            throw AgentError(
                code: .badRequest, message: "query names starting with _serf_ are Serf's own", hint: "pick another name")
        }
        var filters: [SerfFilter] = []
        if let nodes = request.nodes, !nodes.isEmpty { filters.append(.nodes(nodes)) }
        for tag in request.tags ?? [] {
            guard let equals = tag.firstIndex(of: "="), equals != tag.startIndex else {
                throw AgentError(code: .badRequest, message: "tag filter '\(tag)' is not KEY=REGEX", hint: "e.g. role=web")
            }
            let expression = String(tag[tag.index(after: equals)...])
            do {
                _ = try Regex(expression)
            } catch {
                throw AgentError(
                    code: .badRequest, message: "tag filter '\(tag)': not a regular expression: \(error)", hint: "e.g. role=web|db")
            }
            filters.append(.tag(name: String(tag[..<equals]), expression: expression))
        }
        var timeout: Duration?
        if let seconds = request.timeoutSeconds {
            guard seconds > 0, seconds <= 3600 else {
                throw AgentError(code: .badRequest, message: "timeout \(seconds) s is out of range", hint: "give a timeout in (0, 3600] seconds")
            }
            timeout = .milliseconds(Int64((seconds * 1000).rounded(.up)))
        }
        let relayFactor = request.relayFactor ?? 0
        guard (0...5).contains(relayFactor) else {
            throw AgentError(code: .badRequest, message: "relay factor \(relayFactor) is out of range", hint: "give 0 to 5")
        }
        return Query(
            name: request.name, payload: Array((request.payload ?? "").utf8), filters: filters, timeout: timeout,
            wantsAck: request.ack ?? true, relayFactor: UInt8(relayFactor))
    }

    /// `POST /v1/tags`: tags to set and to delete, at least one, none of them Rumor's own.
    public static func tags(_ body: [UInt8]) throws(AgentError) -> (set: [String: String], delete: [String]) {
        let request = try decode(TagsRequest.self, body, hint: #"send {"set":{"role":"web"}} and/or {"delete":["role"]}"#)
        let set = request.set ?? [:]
        let delete = request.delete ?? []
        guard !set.isEmpty || !delete.isEmpty else {
            throw AgentError(code: .badRequest, message: "no tags to set or delete", hint: #"send {"set":{"role":"web"}} or {"delete":["role"]}"#)
        }
        for key in Array(set.keys) + delete {
            guard !key.isEmpty, !key.contains("=") else {
                throw AgentError(code: .badRequest, message: "'\(key)' is not a tag name", hint: "a tag name is not empty and has no '='")
            }
            guard !Node.reservedTagKeys.contains(key) else {
                throw AgentError(
                    code: .badRequest, message: "the tag \(key) is Rumor's own (\(Node.replicationTag.key) marks nodes that replicate state, \(Node.generationTagKey) their process)",
                    hint: "pick another tag name")
            }
        }
        return (set, delete)
    }

    /// A validated `POST /v1/kv/put`.
    public struct Put: Sendable, Hashable {
        public var key: String
        public var value: [UInt8]
        public var timeToLive: Duration?
        public var ephemeral: Bool
        public var replicas: ReplicaTarget?
        public var timeout: Duration
    }

    /// `POST /v1/kv/put`: `{"key","value","ttlSeconds","ephemeral","wait":"all"|N,"timeoutSeconds"}`.
    public static func put(_ body: [UInt8]) throws(AgentError) -> Put {
        let put = try decode(
            PutRequest.self, body,
            hint: #"send {"key":"k","value":"v","ttlSeconds":30,"ephemeral":false,"wait":"all","timeoutSeconds":5}"#)
        var timeToLive: Duration?
        if let seconds = put.ttlSeconds {
            guard seconds > 0, seconds <= 10 * 365 * 24 * 3600 else {
                throw AgentError(
                    code: .badRequest, message: "ttlSeconds must be positive and at most ten years",
                    hint: "give the time to live in seconds, e.g. 30")
            }
            timeToLive = .milliseconds(max(1, Int64(seconds * 1000)))
        }
        let (replicas, timeout) = try replicaWait(put.wait, timeoutSeconds: put.timeoutSeconds)
        return Put(
            key: put.key, value: Array(put.value.utf8), timeToLive: timeToLive, ephemeral: put.ephemeral ?? false,
            replicas: replicas, timeout: timeout)
    }

    /// `POST /v1/kv/batch`: `{"entries":[{"key","value"},…]}` (a null value deletes).
    public static func batch(_ body: [UInt8]) throws(AgentError) -> [Replication.Write] {
        let batch = try decode(BatchRequest.self, body, hint: #"send {"entries":[{"key":"k","value":"v"},…]}"#)
        return batch.entries.map { Replication.Write(key: $0.key, value: $0.value.map { Array($0.utf8) }) }
    }

    /// A validated `POST /v1/kv/delete`.
    public struct Delete: Sendable, Hashable {
        public var key: String
        public var replicas: ReplicaTarget?
        public var timeout: Duration
    }

    /// `POST /v1/kv/delete`: `{"key","wait"?,"timeoutSeconds"?}`.
    public static func delete(_ body: [UInt8]) throws(AgentError) -> Delete {
        let delete = try decode(DeleteRequest.self, body, hint: #"send {"key":"k"} (and "wait":"all" to return once every node has it)"#)
        let (replicas, timeout) = try replicaWait(delete.wait, timeoutSeconds: delete.timeoutSeconds)
        return Delete(key: delete.key, replicas: replicas, timeout: timeout)
    }

    /// `wait` and `timeoutSeconds` of a write, checked.
    static func replicaWait(_ wait: PutRequest.ReplicaCount?, timeoutSeconds: Double?) throws(AgentError) -> (ReplicaTarget?, Duration) {
        var replicas: ReplicaTarget?
        if let wait {
            guard let target = ReplicaTarget(wait.text) else {
                throw AgentError(
                    code: .badRequest, message: "wait must be \"all\" or a positive number of nodes, not \(wait.text)",
                    hint: #"send "wait":"all" or "wait":3"#)
            }
            replicas = target
        }
        let timeout = timeoutSeconds ?? 10
        guard timeout > 0, timeout <= 3600 else {
            throw AgentError(
                code: .badRequest, message: "timeoutSeconds must be in (0, 3600]", hint: "give the wait limit in seconds, e.g. 5")
        }
        return (replicas, .milliseconds(max(1, Int64(timeout * 1000))))
    }

    /// `POST /v1/keys`: `{"operation":"install"|"use"|"remove","key":BASE64}`.
    public static func keyOperation(_ body: [UInt8]) throws(AgentError) -> KeyringOperation {
        let hint = #"send {"operation":"install","key":"<base64 key from `rumor keygen`>"} (install, use or remove)"#
        let request = try decode(KeyringRequest.self, body, hint: hint)
        let key = try KeyText.decode(request.key)
        switch request.operation {
        case "install": return .install(key)
        case "use": return .use(key)
        case "remove": return .remove(key)
        default: throw AgentError(code: .badRequest, message: "unknown key operation '\(request.operation)'", hint: hint)
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], hint: String) throws(AgentError) -> T {
        guard body.count <= maximumBodyBytes else {
            throw AgentError(code: .tooLarge, message: "the request body exceeds \(maximumBodyBytes) bytes", hint: hint)
        }
        do {
            // Foundation's decoder takes trailing commas and keeps the first of duplicate keys.
            try StrictJSON.check(body)
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch let problem as StrictJSON.Problem {
            throw AgentError(code: .badRequest, message: "the request body is not valid JSON: \(problem)", hint: hint)
        } catch {
            throw AgentError(code: .badRequest, message: "the request body is not valid: \(error)", hint: hint)
        }
    }
}
