import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public struct WatchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Print changes as they happen, one JSON object per line (NDJSON).",
        discussion: """
            Each line is a key's new state with its `seq` (this agent's change-log position) and \
            `change` (put, delete, expire or depart). When the agent stops, the watch waits for it \
            and resumes after the last seq it printed (replaying every key if the agent's change \
            log restarted); --no-reconnect ends it instead. Resume after an interruption with \
            --from <the last seq you processed>; --from 0 replays every key first.
            """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "Only keys starting with this.") var prefix: String = ""
    // Taken as text, whatever it looks like, so that `--from -5` is refused naming the flag and
    // the range (argument-parser would read -5 as a flag and report a missing value).
    @Option(
        parsing: .unconditional, help: ArgumentHelp("Start after this change-log seq (0 replays every key); default: only new changes.", valueName: "seq"))
    var from: String?
    @Flag(help: "End (with watch_ended) when the agent stops, instead of waiting for it to come back.")
    var noReconnect = false
    public init() {}

    public func run() throws {
        let start = try from.map { try Self.seq(fromFlag: $0) }
        var watch = Watch(client: options.client, prefix: prefix, last: start)
        try watch.follow(reconnect: !noReconnect) { lines in Output.write(lines, to: 1) }
    }

    /// The value of `--from`: a change-log seq, 0 or more.
    /// - Throws: `CLIError` `bad_arguments` naming the flag, the value and the accepted range.
    static func seq(fromFlag text: String) throws(CLIError) -> UInt64 {
        guard let seq = UInt64(text) else {
            throw CLIError(
                code: "bad_arguments",
                message: "--from takes a change-log seq, a whole number from 0 to \(UInt64.max); '\(text)' is not one",
                hint: "--from 0 replays every key; --from N resumes after seq N (the `seq` of the last change you processed)")
        }
        return seq
    }
}

/// One watch: streams changes to a handler and remembers the last seq it handed over.
public struct Watch: Sendable {
    let client: APIClient
    let prefix: String
    /// The seq of the last change handed over (nil: none yet, the watch started with new changes).
    public private(set) var last: UInt64?
    /// Streams opened so far: once one has, a failure to connect means "the agent went away".
    var opened = 0

    public init(client: APIClient, prefix: String, last: UInt64?) {
        self.client = client
        self.prefix = prefix
        self.last = last
    }

    /// Streams changes to `receive` (whole NDJSON lines, each ending in a newline, as they
    /// arrive) for as long as the agent serves them. With `reconnect`, an agent that stops is
    /// waited for (noted once on stderr) and the watch resumes after `last`; without, the watch
    /// ends with `watch_ended`.
    /// - Throws: `CLIError`: the agent's refusal, or `agent_unreachable` before the first stream.
    public mutating func follow(reconnect: Bool, _ receive: (String) -> Void) throws(CLIError) {
        var pause = 0.1
        var notedAfterOpening = 0
        while true {
            do {
                try stream(receive)
            } catch {
                // Past the first stream, the agent going away (mid-stream, or not back yet) is waited out;
                // so is a connection it closed unanswered while stopping (`bad_response`): it did answer here.
                guard opened > 0, reconnect, error.code == "agent_unreachable" || error.code == "bad_response" else { throw error }
            }
            guard reconnect else {
                throw CLIError(
                    code: "watch_ended", message: "the agent ended the watch (it is shutting down)",
                    hint: "resume with `rumor watch \(prefix.isEmpty ? "" : "\(prefix) ")--from \(last.map(String.init) ?? "0")` once it is back")
            }
            if notedAfterOpening != opened {
                notedAfterOpening = opened
                pause = 0.1
                Output.printError(
                    "rumor watch: the agent at \(client.address) ended the watch; waiting for it (resuming after seq \(last.map(String.init) ?? "now"))")
            }
            usleep(UInt32(pause * 1_000_000))
            pause = min(pause * 2, 2)
        }
    }

    /// Streams changes until the agent ends the stream.
    mutating func stream(_ receive: (String) -> Void) throws(CLIError) {
        do {
            try open(receive)
        } catch {
            // The agent came back with a change log that no longer holds our position (restarted
            // without a data dir, or compacted meanwhile): every key again, then new changes.
            guard opened > 0, error.code == "watch_ahead" || error.code == "watch_compacted" else { throw error }
            Output.printError("rumor watch: the agent's change log no longer holds seq \(last.map(String.init) ?? "-") (\(error.code)); replaying every key from seq 0")
            last = 0
            try open(receive)
        }
    }

    private mutating func open(_ receive: (String) -> Void) throws(CLIError) {
        let connection = try HTTPConnection(address: client.address, timeout: 5)
        connection.setReadTimeout(nil)
        let target = "/v1/kv/watch" + APIClient.query([("prefix", prefix), ("from", last.map(String.init))])
        try connection.send(method: "GET", target: target, accept: "application/x-ndjson", token: client.token, body: nil)
        let head = try connection.readHead()
        guard head.status == 200 else {
            var json = client
            json.json = true
            let error = json.agentError(String(decoding: try connection.readBody(head), as: UTF8.self), head: head)
            throw client.json ? error : CLIError(code: error.code, message: error.message, hint: error.hint)
        }
        opened += 1
        var pending: [UInt8] = []
        var lines = ""
        var last = self.last
        defer { self.last = last }
        let asJSON = client.json
        try connection.streamBody(head) { (bytes: [UInt8]) throws(CLIError) in
            pending += bytes
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[start..<newline], as: UTF8.self)
                start = newline + 1
                guard !line.isEmpty else { continue }
                if line.hasPrefix("{\"code\":"), JSONText.string("status", in: line) == "error" {
                    let error = CLIError(
                        code: JSONText.string("code", in: line) ?? "bad_response",
                        message: JSONText.string("message", in: line) ?? line, hint: JSONText.string("hint", in: line) ?? "")
                    throw asJSON ? CLIError(code: error.code, message: error.message, hint: error.hint, answered: line) : error
                }
                if let seq = JSONText.unsigned("seq", in: line) { last = seq }
                lines += line + "\n"
            }
            if !lines.isEmpty { receive(lines) }
            lines = ""
            pending.removeFirst(start)
        }
    }
}
