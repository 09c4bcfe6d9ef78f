import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Options every command that talks to a running agent takes.
public struct ClientOptions: ParsableArguments {
    @Option(name: .customLong("api"), help: "The agent's API address (env RUMOR_API).")
    public var api: String = environment("RUMOR_API") ?? "127.0.0.1:7373"

    @Option(name: .customLong("api-token"), help: "Bearer token, when the agent requires one (env RUMOR_API_TOKEN).")
    public var token: String?

    @Flag(help: "Print the JSON envelope instead of text.")
    public var json = false

    public init() {}

    public var client: APIClient {
        APIClient(address: api, token: token ?? environment("RUMOR_API_TOKEN"), json: json)
    }

    /// Performs the request and prints the answer.
    func show(_ method: String, _ target: String, body: String? = nil, timeout: Double = 10) throws(CLIError) {
        Output.print(try client.call(method, target, body: body, timeout: timeout))
    }
}

public struct MembersCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "members", abstract: "List the members this agent knows.",
        discussion: "Filters match whole values, as `serf members` does: --tag role=web.* lists members whose role starts with web.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Only members whose tag KEY matches REGEX (KEY=REGEX); repeatable, all must match.") var tag: [String] = []
    @Option(help: "Only members in this state: alive, suspect, dead or left.") var status: String?
    @Option(help: "Only members whose name matches REGEX.") var name: String?
    @Option(help: "name (default), or rtt: nearest first by estimated round trip (see `rumor rtt`).") var sort: String?
    public init() {}

    public func run() throws {
        let query = APIClient.query(tag.map { ("tag", $0) } + [("status", status), ("name", name), ("sort", sort)])
        try options.show("GET", "/v1/members" + query)
    }
}

/// `rumor tags set|delete`: changes this node's tags, which every member then sees.
public struct TagsCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tags", abstract: "Set or delete this node's tags (Serf's tags; others see the change).",
        subcommands: [Set.self, Delete.self])
    public init() {}

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Add or change tags: KEY=VALUE …")
        @OptionGroup var options: ClientOptions
        @Argument(help: "KEY=VALUE pairs.") var pairs: [String]

        func run() throws {
            var fields: [String] = []
            for pair in pairs {
                guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                    throw CLIError(code: "bad_arguments", message: "'\(pair)' is not KEY=VALUE", hint: "e.g. rumor tags set role=web")
                }
                fields.append(JSONText.quote(String(pair[..<equals])) + ":" + JSONText.quote(String(pair[pair.index(after: equals)...])))
            }
            let body = JSONText.object(["set": "{" + fields.joined(separator: ",") + "}"])
            try options.show("POST", "/v1/tags", body: body)
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Remove tags: KEY …")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Tag names.") var keys: [String]

        func run() throws {
            let body = JSONText.object(["delete": JSONText.array(keys)])
            try options.show("POST", "/v1/tags", body: body)
        }
    }
}

public struct JoinCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "join", abstract: "Join the swarm through one or more addresses.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Seed addresses, HOST:PORT.") var addresses: [String]
    public init() {}

    public func run() throws {
        let body = JSONText.object(["addresses": JSONText.array(addresses)])
        try options.show("POST", "/v1/join", body: body, timeout: 30)
    }
}

public struct LeaveCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "leave", abstract: "Leave the swarm gracefully (the agent keeps running until stopped).")
    @OptionGroup var options: ClientOptions
    public init() {}

    public func run() throws { try options.show("POST", "/v1/leave", timeout: 15) }
}

public struct InfoCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "info", abstract: "Show this agent's state and counters.")
    @OptionGroup var options: ClientOptions
    public init() {}

    public func run() throws { try options.show("GET", "/v1/info") }
}

public struct PutCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "put", abstract: "Write a value; it replicates to every node.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The key (UTF-8).") var key: String
    @Argument(help: "The value (text; JSON is the common case). Omit it to read the value with --file.") var value: String?
    @Option(help: "Read the value from this file ('-': standard input), for values too large for an argument.")
    var file: String?
    @Option(parsing: .unconditional, help: "Time to live: 30s, 5m, 2h or plain seconds.") var ttl: String?
    @Flag(help: "Remove the value when this node fails or leaves (presence).") var ephemeral = false
    @OptionGroup var waiting: WaitOptions
    public init() {}

    public func run() throws {
        let value: String
        switch (self.value, file) {
        case (let given?, nil): value = given
        case (nil, let path?): value = try readValue(from: path)
        default:
            throw CLIError(
                code: "bad_arguments", message: "give the value either as an argument or with --file, not \(file == nil ? "neither" : "both")",
                hint: "e.g. rumor put KEY VALUE, or rumor put KEY --file value.json (--file - reads standard input)")
        }
        var body = ["key": JSONText.quote(key), "value": JSONText.quote(value)]
        if let ttl { body["ttlSeconds"] = String(try parseDuration(ttl, flag: "--ttl")) }
        if ephemeral { body["ephemeral"] = "true" }
        let limit = try waiting.add(to: &body)
        try options.show("POST", "/v1/kv/put", body: JSONText.object(body), timeout: limit + 10)
    }
}

/// `--wait` and `--timeout` of a write (put, delete).
public struct WaitOptions: ParsableArguments {
    // Numbers are taken as text whatever they look like (`.unconditional`), so that a negative
    // one is refused naming the flag and the range, not reported as a missing value.
    @Option(parsing: .unconditional, help: "Return only once this many nodes hold the write: 'all' live nodes, or a count (the writer included).")
    var wait: String?
    @Option(parsing: .unconditional, help: "How long --wait may take: 5s, 1m or plain seconds (default 10s).") var timeout: String?
    public init() {}

    /// Adds `wait` and `timeoutSeconds` to a request body; returns the wait limit in seconds.
    func add(to body: inout [String: String]) throws(CLIError) -> Double {
        var limit = 10.0
        if let timeout {
            guard wait != nil else {
                throw CLIError(code: "bad_arguments", message: "--timeout only applies with --wait", hint: "add --wait all or --wait N")
            }
            limit = try parseDuration(timeout, flag: "--timeout")
            body["timeoutSeconds"] = String(limit)
        }
        if let wait {
            guard wait == "all" || (Int(wait) ?? 0) > 0 else {
                throw CLIError(
                    code: "bad_arguments", message: "--wait takes 'all' or a positive count, not '\(wait)'",
                    hint: "e.g. --wait all, or --wait 3 for the writer and two more nodes")
            }
            body["wait"] = JSONText.quote(wait)
        }
        return limit
    }
}

public struct GetCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "get", abstract: "Read a key's value.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The key.") var key: String
    @OptionGroup var staleness: StaleOption
    public init() {}

    public func run() throws { try options.show("GET", "/v1/kv/get" + APIClient.query([("key", key), staleness.parameter])) }
}

public struct DeleteCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a key (a tombstone replicates).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The key.") var key: String
    @OptionGroup var waiting: WaitOptions
    public init() {}

    public func run() throws {
        var body = ["key": JSONText.quote(key)]
        let limit = try waiting.add(to: &body)
        try options.show("POST", "/v1/kv/delete", body: JSONText.object(body), timeout: limit + 10)
    }
}

public struct ListCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "list", abstract: "List live keys, optionally under a prefix.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Only keys starting with this.") var prefix: String = ""
    @OptionGroup var staleness: StaleOption
    public init() {}

    public func run() throws { try options.show("GET", "/v1/kv/list" + APIClient.query([("prefix", prefix), staleness.parameter])) }
}

/// `--stale` of a read (get, list): answer even while the agent is syncing after its start.
public struct StaleOption: ParsableArguments {
    @Flag(
        help: "Answer even while the agent is syncing after a restart (the value may be older than the swarm's); without it such a read fails with not_ready.")
    var stale = false
    public init() {}

    /// The query parameter it adds (none without `--stale`).
    var parameter: (String, String?) { ("stale", stale ? "true" : nil) }
}

public struct StatusCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "status", abstract: "Summarize the replicated state.")
    @OptionGroup var options: ClientOptions
    public init() {}

    public func run() throws { try options.show("GET", "/v1/kv/status") }
}

/// `rumor keygen`: prints a new random 32-byte (AES-256) key, base64.
public struct KeygenCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Print a new gossip encryption key (base64, 32 bytes: AES-256).")
    @Flag(help: "Print the JSON envelope instead of text.")
    var json = false
    public init() {}

    public func run() {
        var generator = SystemRandomNumberGenerator()
        let text = Base64.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        Output.print(json ? #"{"data":{"key":"\#(text)"},"status":"ok"}"# : text)
    }
}

/// `rumor keys list|install|use|remove`: manages the gossip keyring of every node at once.
public struct KeysCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List or rotate the swarm's gossip encryption keys.",
        discussion: """
            Rotation without downtime: `rumor keys install NEW`, then `rumor keys use NEW`, then \
            `rumor keys remove OLD`. Each command runs on every live node and reports those that \
            failed; rerunning it is safe.
            """,
        subcommands: [List.self, Install.self, Use.self, Remove.self])
    public init() {}

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Show which keys the nodes hold.")
        @OptionGroup var options: ClientOptions

        func run() throws { try options.show("GET", "/v1/keys", timeout: 30) }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install", abstract: "Install a key on every node (used for receiving at once).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The key, base64 (from `rumor keygen`).") var key: String

        func run() throws { try KeysCommand.run("install", key: key, options: options) }
    }

    struct Use: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "use", abstract: "Make an installed key the primary (sending) key on every node.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The key, base64.") var key: String

        func run() throws { try KeysCommand.run("use", key: key, options: options) }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove", abstract: "Remove a key (not the primary) from every node.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The key, base64.") var key: String

        func run() throws { try KeysCommand.run("remove", key: key, options: options) }
    }

    static func run(_ operation: String, key: String, options: ClientOptions) throws(CLIError) {
        let body = JSONText.object(["operation": JSONText.quote(operation), "key": JSONText.quote(key)])
        try options.show("POST", "/v1/keys", body: body, timeout: 30)
    }
}

/// `500ms`, `30s`, `5m`, `2h`, `1d` or plain seconds, in seconds.
/// - Parameter flag: the flag that gave `text` (`--ttl`), named at the start of the error message.
public func parseDuration(_ text: String, flag: String? = nil) throws(CLIError) -> Double {
    let named = flag.map { "\($0): " } ?? ""
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
    var number = Substring(text)
    var scale = 1.0
    if text.hasSuffix("ms") {
        number = number.dropLast(2)
        scale = 0.001
    } else if let last = text.last, let unit = units[last] {
        number = number.dropLast()
        scale = unit
    }
    guard let value = Double(number), value.isFinite else {
        throw CLIError(
            code: "bad_arguments", message: "\(named)'\(text)' is not a duration", hint: "use e.g. 500ms, 30s, 5m, 2h or 90")
    }
    guard value > 0 else {
        throw CLIError(code: "bad_arguments", message: "\(named)a duration must be positive, not '\(text)'", hint: "use e.g. 30s, 5m, 2h or 90")
    }
    return value * scale
}

/// The whole of the file at `path` (`-`: standard input) as UTF-8 text.
func readValue(from path: String) throws(CLIError) -> String {
    let descriptor = path == "-" ? 0 : open(path, O_RDONLY)
    guard descriptor >= 0 else {
        throw CLIError(
            code: "bad_arguments", message: "cannot read \(path): \(String(cString: strerror(errno)))",
            hint: "give a readable file, or - for standard input")
    }
    defer { if descriptor != 0 { close(descriptor) } }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        guard count >= 0 else {
            throw CLIError(code: "bad_arguments", message: "cannot read \(path): \(String(cString: strerror(errno)))", hint: "give a readable file")
        }
        if count == 0 { break }
        bytes += chunk[0..<count]
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
        throw CLIError(
            code: "bad_arguments", message: "the value in \(path) is not valid UTF-8",
            hint: "values are UTF-8 text; send binary values base64-encoded")
    }
    return text
}

/// Standard base64 (RFC 4648, padded).
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
            for position in 0..<4 {
                out.append(position <= chunk.count ? alphabet[Int((value >> (18 - 6 * UInt32(position))) & 63)] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
