import ArgumentParser
import Foundation
import RumorAgent
import RumorCore

struct PutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put", abstract: "Write a value; it replicates to every node.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The key (UTF-8).") var key: String
    @Argument(help: "The value (text; JSON is the common case).") var value: String
    @Option(help: "Time to live: 30s, 5m, 2h or plain seconds.") var ttl: String?
    @Flag(help: "Remove the value when this node fails or leaves (presence).") var ephemeral = false
    @Option(help: "Return only once this many nodes hold the write: 'all' live nodes, or a count (the writer included).")
    var wait: String?
    @Option(help: "How long --wait may take: 5s, 1m or plain seconds (default 10s).") var timeout: String?

    func run() async throws {
        var body = PutRequest(key: key, value: value)
        if let ttl { body.ttlSeconds = try parseDuration(ttl) }
        if ephemeral { body.ephemeral = true }
        var limit = 10.0
        if let timeout {
            guard wait != nil else {
                throw AgentError(code: .badArguments, message: "--timeout only applies with --wait", hint: "add --wait all or --wait N")
            }
            limit = try parseDuration(timeout)
            body.timeoutSeconds = limit
        }
        if let wait {
            guard ReplicaTarget(wait) != nil else {
                throw AgentError(
                    code: .badArguments, message: "--wait takes 'all' or a positive count, not '\(wait)'",
                    hint: "e.g. --wait all, or --wait 3 for the writer and two more nodes")
            }
            body.wait = PutRequest.ReplicaCount(wait)
        }
        let (entry, envelope) = try await options.client(timeout: limit + 10)
            .call("POST", "/v1/kv/put", as: EntrySnapshot.self, body: body)
        var text = "ok \(entry.key) @ \(entry.timestamp) by \(entry.origin)"
        if let replicas = entry.replicas { text += " on \(replicas.count) nodes: \(replicas.joined(separator: ", "))" }
        options.emit(envelope: envelope, text: text)
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Read a key's value.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The key.") var key: String

    func run() async throws {
        var components = URLComponents()
        components.queryItems = [URLQueryItem(name: "key", value: key)]
        let query = components.percentEncodedQuery ?? ""
        let (entry, envelope) = try await options.client().call("GET", "/v1/kv/get?\(query)", as: EntrySnapshot.self)
        options.emit(envelope: envelope, text: entry.value ?? entry.valueBase64 ?? "")
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a key (a tombstone replicates).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The key.") var key: String

    func run() async throws {
        let (entry, envelope) = try await options.client().call("POST", "/v1/kv/delete", as: EntrySnapshot.self, body: DeleteRequest(key: key))
        options.emit(envelope: envelope, text: "deleted \(entry.key) @ \(entry.timestamp)")
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List live keys, optionally under a prefix.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Only keys starting with this.") var prefix: String = ""

    struct Entries: Decodable { var entries: [EntrySnapshot] }

    func run() async throws {
        var components = URLComponents()
        components.queryItems = [URLQueryItem(name: "prefix", value: prefix)]
        let query = components.percentEncodedQuery ?? ""
        let (list, envelope) = try await options.client().call("GET", "/v1/kv/list?\(query)", as: Entries.self)
        options.emit(
            envelope: envelope,
            text: Output.table(
                ["KEY", "VALUE", "TIMESTAMP", "ORIGIN"],
                list.entries.map { [$0.key, $0.value ?? "base64:" + ($0.valueBase64 ?? ""), $0.timestamp, $0.origin] }))
    }
}

/// `30s`, `5m`, `2h`, `1d` or plain seconds, in seconds.
func parseDuration(_ text: String) throws -> Double {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
    var number = Substring(text)
    var scale = 1.0
    if let last = text.last, let unit = units[last] {
        number = number.dropLast()
        scale = unit
    }
    guard let value = Double(number), value > 0, value.isFinite else {
        throw AgentError(code: .badArguments, message: "'\(text)' is not a duration", hint: "use e.g. 30s, 5m, 2h or 90")
    }
    return value * scale
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Summarize the replicated state.")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let (status, envelope) = try await options.client().call("GET", "/v1/kv/status", as: StateStatus.self)
        let synced = status.lastSyncedMillisecondsAgo.map { String(format: "%.1f s ago", Double($0) / 1000) } ?? "never"
        let digest = status.digest.sorted { $0.key < $1.key }.map { "  \($0.key) \($0.value)" }.joined(separator: "\n")
        let lag = status.peerLagMilliseconds.sorted { $0.key < $1.key }.map { "  \($0.key) \($0.value) ms" }
            .joined(separator: "\n")
        options.emit(
            envelope: envelope,
            text: """
                values:      \(status.values)
                tombstones:  \(status.tombstones)
                durable:     \(status.durable)
                seq:         \(status.seq)
                last sync:   \(synced)
                digest:
                \(digest)
                peer lag (by digest):
                \(lag.isEmpty ? "  none known yet" : lag)
                """)
    }
}

struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Print changes as they happen, one JSON object per line (NDJSON).",
        discussion: """
            Each line is a key's new state with its `seq` (this agent's change-log position) and \
            `change` (put, delete, expire or depart). Resume after an interruption with \
            --from <the last seq you processed>; --from 0 replays every key first.
            """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "Only keys starting with this.") var prefix: String = ""
    @Option(help: "Start after this change-log seq (0 replays every key); default: only new changes.") var from: UInt64?

    func run() async throws {
        var components = URLComponents()
        components.queryItems = [URLQueryItem(name: "prefix", value: prefix)] + (from.map { [URLQueryItem(name: "from", value: String($0))] } ?? [])
        let query = components.percentEncodedQuery ?? ""
        var last = from
        for try await line in try options.client().lines("/v1/kv/watch?\(query)") {
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            if object?["status"] as? String == "error" {
                throw AgentError(
                    code: ErrorCode(answered: object?["code"]), message: object?["message"] as? String ?? line,
                    hint: object?["hint"] as? String ?? "")
            }
            if let seq = object?["seq"] as? NSNumber { last = seq.uint64Value }
            Output.print(line)
        }
        throw AgentError(
            code: .watchEnded, message: "the agent ended the watch (it is shutting down)",
            hint: "resume with `rumor watch \(prefix.isEmpty ? "" : "\(prefix) ")--from \(last.map(String.init) ?? "0")` once it is back")
    }
}
