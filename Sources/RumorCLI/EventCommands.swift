import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `rumor event NAME [PAYLOAD]`: a Serf user event to every node, Serf agents included.
public struct EventCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "event", abstract: "Send a user event (Serf's) to every node, or to chosen Rumor nodes.",
        discussion: """
            Every node delivers it once (`rumor events` prints them; Serf agents run their \
            handlers). Up to 512 bytes of name and payload (Serf's limit) it goes to every node \
            by gossip; past that, up to 1 MiB, or with --node, it goes straight to the Rumor \
            nodes (Serf agents cannot take it). --coalesce lets receivers' handlers keep only \
            the latest of a burst with the same name.
            """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "The event's name.") var name: String
    @Argument(help: "The payload (text).") var payload: String?
    @Flag(help: "Receivers may coalesce it with later events of the same name.") var coalesce = false
    @Option(name: .customLong("node"), help: "Only this Rumor node gets it (repeatable).") var nodes: [String] = []
    public init() {}

    public func run() throws {
        var body = ["name": JSONText.quote(name), "coalesce": coalesce ? "true" : "false"]
        if let payload { body["payload"] = JSONText.quote(payload) }
        if !nodes.isEmpty { body["nodes"] = JSONText.array(nodes) }
        try options.show("POST", "/v1/event", body: JSONText.object(body))
    }
}

/// `rumor events`: prints user events as this agent delivers them, one JSON object per line.
public struct EventsCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print user events (and queries received) as they arrive, one JSON object per line (NDJSON).",
        discussion: """
            Each line: {"event":"user" or "query","name","payload","ltime","coalesce"}. When the \
            agent stops, it waits for it (noted once on stderr) and goes on with the events the \
            agent delivers once it is back; events sent while no agent ran are not shown (an agent \
            does not replay events from before it started). --no-reconnect ends it instead.
            """)
    @OptionGroup var options: ClientOptions
    @Flag(help: "End (with events_ended) when the agent stops, instead of waiting for it to come back.")
    var noReconnect = false
    public init() {}

    public func run() throws {
        var events = EventStream(client: options.client)
        try events.follow(reconnect: !noReconnect) { lines in Output.write(lines, to: 1) }
    }
}

/// The stream of user events behind `rumor events`: follows one agent across its restarts.
///
/// Events are not resumable: an agent delivers each event once, to the streams open when it
/// arrives, and a restarted agent does not replay the events from before it started (as a Serf
/// agent that joins). So a reconnected stream goes on with new events, and the ones sent while
/// no agent ran are not shown; nothing is shown twice.
struct EventStream {
    let client: APIClient
    /// Streams opened so far: once one has, a failure to connect means "the agent went away".
    var opened = 0

    /// Hands whole NDJSON lines to `receive` as they arrive. With `reconnect`, an agent that
    /// stops (gracefully or not) is polled for every 0.1–2 s, noted once on stderr per outage;
    /// without, the stream ends with `events_ended`.
    /// - Throws: `CLIError`: the agent's refusal, `agent_unreachable` before the first stream,
    ///   or `events_ended` without `reconnect`.
    mutating func follow(reconnect: Bool, _ receive: (String) -> Void) throws(CLIError) {
        var pause = 0.1
        var notedAfterOpening = 0
        while true {
            do {
                try open(receive)
            } catch {
                // Past the first stream, the agent going away (mid-stream, or not back yet) is
                // not an error of the stream: its message (and errno) is not shown; nor is an
                // agent back but holding its most streams or connections for now.
                guard opened > 0, ["agent_unreachable", "too_many_streams", "too_many_connections"].contains(error.code) else { throw error }
            }
            guard reconnect else {
                throw CLIError(
                    code: "events_ended", message: "the agent at \(client.address) stopped: the event stream ended",
                    hint: "run `rumor events` again once it is back (without --no-reconnect it waits by itself); events sent meanwhile are not shown")
            }
            if notedAfterOpening != opened {
                notedAfterOpening = opened
                pause = 0.1
                Output.printError(
                    "rumor events: the agent at \(client.address) ended the event stream; waiting for it (events sent until it is back are not shown)")
            }
            usleep(UInt32(pause * 1_000_000))
            pause = min(pause * 2, 2)
        }
    }

    private mutating func open(_ receive: (String) -> Void) throws(CLIError) {
        let connection = try HTTPConnection(address: client.address, timeout: 5)
        connection.setReadTimeout(nil)
        try connection.send(
            method: "GET", target: "/v1/events", accept: client.json ? "application/json" : "application/x-ndjson",
            token: client.token, body: nil)
        let head = try connection.readHead()
        guard head.status == 200 else {
            throw client.agentError(String(decoding: try connection.readBody(head), as: UTF8.self), head: head)
        }
        opened += 1
        var pending: [UInt8] = []
        try connection.streamBody(head) { (bytes: [UInt8]) throws(CLIError) in
            pending += bytes
            guard let end = pending.lastIndex(of: UInt8(ascii: "\n")) else { return }
            receive(String(decoding: pending[...end], as: UTF8.self))
            pending.removeFirst(end + 1)
        }
    }
}

/// `rumor monitor`: the agent's log, live.
public struct MonitorCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "monitor", abstract: "Print the agent's log as it is written (Serf's monitor).",
        discussion: "Lines below the agent's own --log-level are not written, so not shown either.")
    @OptionGroup var options: ClientOptions
    @Option(name: .customLong("log-level"), help: "Only lines at this level or above: trace, debug, info, notice, warning, error.")
    var logLevel = "info"
    public init() {}

    public func run() throws {
        try followLines(options.client, target: "/v1/monitor" + APIClient.query([("level", logLevel)]), accept: "text/plain")
    }
}

/// `rumor query NAME [PAYLOAD]`: a Serf query; prints acknowledgements and responses as they
/// arrive, until its timeout.
public struct QueryCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Send a query (Serf's) and print the acknowledgements and responses.",
        discussion: """
            Every node that passes the filters acknowledges it and runs its query handlers; a \
            handler's output is that node's response. Runs until the timeout (default: Serf's, \
            3.2 s up to 9 nodes on the LAN profile). With --json, one JSON object per line: \
            dispatched, then ack and response lines, then done with the totals. The encoded \
            query takes at most 1024 bytes, a response too (Serf's limits).
            """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "The query's name.") var name: String
    @Argument(help: "The payload (text).") var payload: String?
    @Option(name: .customLong("node"), help: "Only this node answers (repeatable).") var nodes: [String] = []
    @Option(name: .customLong("tag"), help: "Only nodes whose tag matches: KEY=REGEX, unanchored as in Serf (repeatable).")
    var tags: [String] = []
    @Option(parsing: .unconditional, help: "How long to collect answers: 5s, 1m or plain seconds.") var timeout: String?
    @Flag(name: .customLong("no-ack"), help: "Do not ask nodes to acknowledge.") var noAck = false
    @Option(name: .customLong("relay-factor"), parsing: .unconditional, help: "Extra copies of each answer through other nodes (0–5).")
    var relayFactor = 0
    public init() {}

    public func run() throws {
        guard (0...5).contains(relayFactor) else {
            throw CLIError(
                code: "bad_arguments", message: "--relay-factor takes 0 to 5 extra copies, not \(relayFactor)",
                hint: "e.g. --relay-factor 2; 0 (the default) sends each answer straight back only")
        }
        var body = ["name": JSONText.quote(name)]
        if let payload { body["payload"] = JSONText.quote(payload) }
        if !nodes.isEmpty { body["nodes"] = JSONText.array(nodes) }
        if !tags.isEmpty { body["tags"] = JSONText.array(tags) }
        if let timeout { body["timeoutSeconds"] = String(try parseDuration(timeout, flag: "--timeout")) }
        if noAck { body["ack"] = "false" }
        if relayFactor != 0 { body["relayFactor"] = String(relayFactor) }
        try followLines(
            options.client, method: "POST", target: "/v1/query", body: Array(JSONText.object(body).utf8),
            accept: options.client.json ? "application/x-ndjson" : "text/plain")
    }
}

/// Streams a line-by-line answer to standard output until the agent ends it.
func followLines(_ client: APIClient, method: String = "GET", target: String, body: [UInt8]? = nil, accept: String) throws(CLIError) {
    let connection = try HTTPConnection(address: client.address, timeout: 5)
    connection.setReadTimeout(nil)
    // With --json, errors come as the JSON envelope (the stream itself is the same either way).
    try connection.send(method: method, target: target, accept: client.json ? "application/json" : accept, token: client.token, body: body)
    let head = try connection.readHead()
    guard head.status == 200 else {
        throw client.agentError(String(decoding: try connection.readBody(head), as: UTF8.self), head: head)
    }
    var pending: [UInt8] = []
    try connection.streamBody(head) { (bytes: [UInt8]) throws(CLIError) in
        pending += bytes
        guard let end = pending.lastIndex(of: UInt8(ascii: "\n")) else { return }
        Output.write(String(decoding: pending[...end], as: UTF8.self), to: 1)
        pending.removeFirst(end + 1)
    }
}
