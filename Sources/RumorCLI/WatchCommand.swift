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
            Each line is a key's new state with its `seq` (this agent's change-log position), the \
            log's `epoch` and `change` (put, delete, expire or depart). When the agent stops, the \
            watch waits for it and resumes after the last seq it printed; if the agent comes back \
            with a new change log (no --data-dir, or after a crash), it replays every key and \
            prints only the changes it has not printed (by each key's timestamp, origin and \
            change), so each change is printed once. --no-reconnect ends it instead. Resume \
            after an interruption with --from <the last seq you processed> --epoch <its epoch>; \
            --from 0 replays every key first.
            """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "Only keys starting with this.") var prefix: String = ""
    // Taken as text, whatever it looks like, so that `--from -5` is refused naming the flag and
    // the range (argument-parser would read -5 as a flag and report a missing value).
    @Option(
        parsing: .unconditional, help: ArgumentHelp("Start after this change-log seq (0 replays every key); default: only new changes.", valueName: "seq"))
    var from: String?
    @Option(help: "The change-log epoch --from was read in: if the agent's log is a new one, fail with watch_epoch_changed instead of resuming at a seq that names other changes.")
    var epoch: String?
    @Flag(help: "End (with watch_ended) when the agent stops, instead of waiting for it to come back.")
    var noReconnect = false
    public init() {}

    public func run() throws {
        let start = try from.map { try Self.seq(fromFlag: $0) }
        var watch = Watch(client: options.client, prefix: prefix, last: start, epoch: epoch)
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

/// One watch: streams changes to a handler, and remembers the last seq it handed over, the epoch
/// of the change log that seq belongs to, and each key's last version handed over, so that it
/// resumes across agent restarts without handing anything over twice.
public struct Watch: Sendable {
    let client: APIClient
    let prefix: String
    /// The seq of the last change handed over (nil: none yet, the watch started with new changes).
    public private(set) var last: UInt64?
    /// The epoch of the change log `last` is a position in (nil: not known yet).
    public private(set) var epoch: String?
    /// Each key's last version and change handed over, or seen when the watch started: what a
    /// replay must not repeat.
    public private(set) var delivered = DeliveredChanges()
    /// Streams opened so far: once one has, a failure to connect means "the agent went away".
    var opened = 0

    public init(client: APIClient, prefix: String, last: UInt64?, epoch: String? = nil) {
        self.client = client
        self.prefix = prefix
        self.last = last
        self.epoch = epoch
    }

    /// Streams changes to `receive` (whole NDJSON lines, each ending in a newline, as they
    /// arrive) for as long as the agent serves them. With `reconnect`, an agent that stops is
    /// waited for (noted once on stderr) and the watch resumes after `last`, or, if the agent
    /// came back with another change log, replays every key and hands over only what `delivered`
    /// says is news; without, the watch ends with `watch_ended`.
    /// - Throws: `CLIError`: the agent's refusal, or `agent_unreachable` before the first stream.
    public mutating func follow(reconnect: Bool, _ receive: (String) -> Void) throws(CLIError) {
        var pause = 0.1
        var notedAfterOpening = 0
        while true {
            do {
                try stream(receive)
            } catch {
                // Past the first stream, the agent going away (mid-stream, or not back yet) is waited out;
                // so is a connection it closed unanswered while stopping (`bad_response`): it did answer here;
                // and so is an agent back but holding its most streams or connections for now.
                guard opened > 0, reconnect, Self.waitedOut.contains(error.code) else { throw error }
            }
            guard reconnect else {
                throw CLIError(
                    code: "watch_ended", message: "the agent ended the watch (it is shutting down)",
                    hint: "resume with `rumor watch \(prefix.isEmpty ? "" : "\(prefix) ")--from \(last.map(String.init) ?? "0")\(epoch.map { " --epoch \($0)" } ?? "")` once it is back")
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

    /// The errors a reconnecting watch waits out.
    static let waitedOut: Set<String> = ["agent_unreachable", "bad_response", "too_many_streams", "too_many_connections"]

    /// Streams changes until the agent ends the stream.
    mutating func stream(_ receive: (String) -> Void) throws(CLIError) {
        do {
            try open(receive)
        } catch {
            // The agent came back with a change log that no longer holds our position (restarted
            // without a data dir or after a crash, or compacted meanwhile): every key again,
            // handing over only the changes not handed over yet.
            guard opened > 0, ["watch_ahead", "watch_compacted", "watch_epoch_changed"].contains(error.code) else { throw error }
            Output.printError(
                "rumor watch: the agent's change log no longer holds seq \(last.map(String.init) ?? "-") (\(error.code)); replaying every key from seq 0, printing only changes not printed yet (\(delivered.count) keys known)")
            last = 0
            epoch = nil
            try open(receive)
        }
    }

    private mutating func open(_ receive: (String) -> Void) throws(CLIError) {
        // Started with new changes only: replay every key first, silently, to learn the version
        // each key has now, so that a replay after a restart does not print keys that were there
        // before the watch started and never changed.
        let baseline = last == nil
        let connection = try HTTPConnection(address: client.address, timeout: 5)
        connection.setReadTimeout(nil)
        let target = "/v1/kv/watch"
            + APIClient.query([("prefix", prefix), ("from", String(last ?? 0)), ("epoch", baseline ? nil : epoch)])
        try connection.send(method: "GET", target: target, accept: "application/x-ndjson", token: client.token, body: nil)
        let head = try connection.readHead()
        guard head.status == 200 else {
            var json = client
            json.json = true
            let error = json.agentError(String(decoding: try connection.readBody(head), as: UTF8.self), head: head)
            throw client.json ? error : CLIError(code: error.code, message: error.message, hint: error.hint)
        }
        opened += 1
        let position = head.fields["rumor-watch-position"].flatMap { UInt64($0) }
        // The replay up to here only teaches versions (an agent that does not say: nothing is silent).
        let silentThrough = baseline ? position ?? 0 : 0
        var pending: [UInt8] = []
        var lines = ""
        var last = baseline ? position : self.last
        var epoch = head.fields["rumor-watch-epoch"] ?? self.epoch
        // Moved out (not copied) so recording a key does not copy every other.
        var delivered = self.delivered
        self.delivered = DeliveredChanges()
        defer {
            self.last = last
            self.epoch = epoch
            self.delivered = delivered
        }
        let asJSON = client.json
        try connection.streamBody(head) { (bytes: [UInt8]) throws(CLIError) in
            pending += bytes
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let slice = pending[start..<newline]
                start = newline + 1
                guard !slice.isEmpty else { continue }
                let line = String(decoding: slice, as: UTF8.self)
                if line.hasPrefix("{\"code\":"), JSONText.string("status", in: line) == "error" {
                    let error = CLIError(
                        code: JSONText.string("code", in: line) ?? "bad_response",
                        message: JSONText.string("message", in: line) ?? line, hint: JSONText.string("hint", in: line) ?? "")
                    throw asJSON ? CLIError(code: error.code, message: error.message, hint: error.hint, answered: line) : error
                }
                let fields = WatchLine(slice)
                let seq = fields.seq ?? 0
                last = max(last ?? 0, seq)
                if let lineEpoch = fields.epoch { epoch = lineEpoch }
                if delivered.admit(fields), seq > silentThrough { lines += line + "\n" }
            }
            if !lines.isEmpty { receive(lines) }
            lines = ""
            pending.removeFirst(start)
        }
    }
}
