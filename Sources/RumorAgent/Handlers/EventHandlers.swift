import Foundation
import Logging
import NIOConcurrencyHelpers
import RumorAPI
import RumorCore

#if canImport(Glibc)
import Glibc
#endif

/// One `--event-handler [FILTER=]SCRIPT`, as Serf's agent takes it (docs/serf-wire.md §9.1):
/// FILTER is a comma-separated list of `member-join`, `member-leave`, `member-failed`,
/// `member-update`, `member-reap`, `user`, `user:NAME`, `query`, `query:NAME` or `*`; none means
/// every event.
public struct EventHandlerSpec: Sendable, Hashable {
    public var filters: [String]
    public var script: String

    static let kinds: Set<String> = [
        "member-join", "member-leave", "member-failed", "member-update", "member-reap", "user", "query", "*",
    ]

    /// - Throws: `AgentError` `bad_arguments` naming the filter that is not one of Serf's.
    public init(_ text: String) throws(AgentError) {
        let (filterText, script): (Substring, Substring)
        if let equals = text.firstIndex(of: "="), text[..<equals].allSatisfy({ $0.isLetter || $0 == "-" || $0 == "," || $0 == ":" || $0 == "*" || $0.isNumber || $0 == "_" || $0 == "." }) {
            (filterText, script) = (text[..<equals], text[text.index(after: equals)...])
        } else {
            (filterText, script) = ("", Substring(text))
        }
        guard !script.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw AgentError(code: .badArguments, message: "event handler '\(text)' has no script", hint: "e.g. --event-handler member-join,user:deploy=./deploy.sh")
        }
        let filters = filterText.isEmpty ? ["*"] : filterText.split(separator: ",").map(String.init)
        for filter in filters {
            let kind = filter.split(separator: ":", maxSplits: 1).first.map(String.init) ?? filter
            guard Self.kinds.contains(kind), !filter.contains(":") || kind == "user" || kind == "query" else {
                throw AgentError(
                    code: .badArguments, message: "event handler filter '\(filter)' is not one of Serf's",
                    hint: "use member-join, member-leave, member-failed, member-update, member-reap, user[:NAME], query[:NAME] or *")
            }
        }
        self.filters = filters
        self.script = String(script)
    }

    /// Whether the handler takes `event` (`user` events also match `user:NAME`).
    func accepts(_ event: HandlerEvent) -> Bool {
        filters.contains { filter in
            if filter == "*" || filter == event.type { return true }
            switch event {
            case .user(let user, _): return filter == "user:" + user.name
            case .query(let query, _): return filter == "query:" + query.name
            case .member: return false
            }
        }
    }
}

/// What a handler is run for, with this node's name and tags at that moment (Serf's
/// `SERF_SELF_*` variables).
enum HandlerEvent: Sendable {
    case member(type: String, members: [MemberSnapshot], selfName: String, selfTags: [String: String])
    case user(SerfUserEvent, self: (name: String, tags: [String: String]))
    case query(SerfQuery, self: (name: String, tags: [String: String]))

    /// Serf's `SERF_EVENT`.
    var type: String {
        switch self {
        case .member(let type, _, _, _): type
        case .user: "user"
        case .query: "query"
        }
    }

    /// Serf's event type for a membership change, nil for those Serf does not report.
    static func memberType(_ kind: MemberEvent.Kind) -> String? {
        switch kind {
        case .joined: "member-join"
        case .left: "member-leave"
        case .failed: "member-failed"
        case .updated: "member-update"
        case .reaped: "member-reap"
        case .suspected, .recovered: nil
        }
    }
}

/// Runs the event handlers off the gossip path, as Serf does but bounded: events wait in a
/// queue of `queueLimit` (past it they are dropped, logged and counted), handlers run one at a
/// time in order, each in its own process group under `/bin/sh -c`, with Serf's environment and
/// stdin, and one that runs longer than `timeout` is killed with its children. Exit statuses and
/// timeouts are logged and counted.
final class EventHandlers: Sendable {
    static let queueLimit = 256
    /// How much of a handler's output is kept (for the log): the last 8 KiB, as Serf.
    static let outputLimit = 8 << 10

    let specs: [EventHandlerSpec]
    let timeout: Duration
    private let logger: Logger
    /// Handlers run here, one at a time: a serial dispatch queue, whose thread may block on a
    /// child process without holding up Swift's cooperative threads (the agent's actor).
    private let runs = DispatchQueue(label: "rumor.event-handlers")
    private let pending = NIOLockedValueBox(0)
    /// Runs, failures (non-zero exit), timeouts and drops, for `rumor info`.
    let counts = NIOLockedValueBox([String: UInt64]())

    init(specs: [EventHandlerSpec], timeout: Duration, logger: Logger) {
        self.specs = specs
        self.timeout = timeout
        self.logger = logger
    }

    /// Queues `event` for every handler that takes it; never blocks. For a query, `respond` gets
    /// the output of the first handler that exits 0 having written something (Serf's response).
    func handle(_ event: HandlerEvent, respond: (@Sendable ([UInt8]) -> Void)? = nil) {
        let responded = NIOLockedValueBox(false)
        for spec in specs where spec.accepts(event) {
            let admitted = pending.withLockedValue { count -> Bool in
                guard count < Self.queueLimit else { return false }
                count += 1
                return true
            }
            guard admitted else {
                counts.withLockedValue { $0["event_handlers_dropped", default: 0] += 1 }
                logger.warning(
                    "event handler queue full: event dropped",
                    metadata: ["event": "\(event.type)", "script": "\(spec.script)", "queued": "\(Self.queueLimit)"])
                continue
            }
            runs.async { [timeout, logger, pending, counts] in
                let (outcome, output) = Self.run(spec, event, timeout: timeout, logger: logger)
                pending.withLockedValue { $0 -= 1 }
                counts.withLockedValue { $0[outcome, default: 0] += 1 }
                if let respond, let output, !output.isEmpty, outcome == "event_handler_runs",
                    responded.withLockedValue({ done in defer { done = true }; return !done })
                {
                    respond(output)
                }
            }
        }
    }

    // MARK: - One run

    /// Runs one handler to completion or timeout; returns the counter to bump and what the handler
    /// wrote (its last 8 KiB of stdout and stderr).
    private static func run(_ spec: EventHandlerSpec, _ event: HandlerEvent, timeout: Duration, logger: Logger) -> (String, [UInt8]?) {
        let process = Process()
        // Foundation starts the child as the leader of its own process group, so a timeout kills
        // the script and every process it started (`kill(-pid)`).
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", spec.script]
        process.environment = ProcessInfo.processInfo.environment.merging(environment(for: event)) { $1 }
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        let kept = NIOLockedValueBox([UInt8]())
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            kept.withLockedValue { keepTail(of: data, in: &$0) }
        }
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let started = ContinuousClock.now
        do {
            try process.run()
        } catch {
            logger.error("cannot run event handler", metadata: ["script": "\(spec.script)", "error": "\(error)"])
            return ("event_handler_failures", nil)
        }
        try? input.fileHandleForWriting.write(contentsOf: stdin(for: event))
        try? input.fileHandleForWriting.close()
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        var timedOut = false
        if finished.wait(timeout: .now() + seconds) == .timedOut {
            timedOut = true
            kill(-process.processIdentifier, SIGKILL)
            finished.wait()
        }
        output.fileHandleForReading.readabilityHandler = nil
        // What is still in the pipe once the handler has exited, without waiting for an end of
        // file (a child the handler left running may hold the pipe open).
        let rest = drain(output.fileHandleForReading.fileDescriptor)
        let written = kept.withLockedValue { bytes in
            keepTail(of: rest, in: &bytes)
            return bytes
        }
        let text = String(decoding: written, as: UTF8.self)
        let metadata: Logger.Metadata = [
            "event": "\(event.type)", "script": "\(spec.script)", "status": "\(process.terminationStatus)",
            "seconds": "\((ContinuousClock.now - started).seconds)", "output": "\(text.suffix(512))",
        ]
        if timedOut {
            logger.warning("event handler killed: it ran past the handler timeout", metadata: metadata.merging(["timeout": "\(timeout)"]) { $1 })
            return ("event_handler_timeouts", written)
        }
        if process.terminationStatus != 0 {
            logger.warning("event handler failed", metadata: metadata)
            return ("event_handler_failures", written)
        }
        logger.debug("event handler ran", metadata: metadata)
        return ("event_handler_runs", written)
    }

    /// Whatever can be read from `descriptor` right now.
    private static func drain(_ descriptor: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while poll(&request, 1, 0) > 0, request.revents & Int16(POLLIN) != 0 {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            keepTail(of: chunk[..<count], in: &bytes)
        }
        return bytes
    }

    /// Appends `new` to a handler's output, keeping its last `outputLimit` bytes.
    private static func keepTail(of new: some Sequence<UInt8>, in bytes: inout [UInt8]) {
        bytes += new
        if bytes.count > outputLimit { bytes.removeFirst(bytes.count - outputLimit) }
    }

    /// Serf's variables (§9.2).
    static func environment(for event: HandlerEvent) -> [String: String] {
        var variables = ["SERF_EVENT": event.type]
        let (name, tags): (String, [String: String])
        switch event {
        case .member(_, _, let selfName, let selfTags):
            (name, tags) = (selfName, selfTags)
        case .user(let user, let own):
            (name, tags) = (own.name, own.tags)
            variables["SERF_USER_EVENT"] = user.name
            variables["SERF_USER_LTIME"] = String(user.time)
        case .query(let query, let own):
            (name, tags) = (own.name, own.tags)
            variables["SERF_QUERY_NAME"] = query.name
            variables["SERF_QUERY_LTIME"] = String(query.time)
        }
        variables["SERF_SELF_NAME"] = name
        variables["SERF_SELF_ROLE"] = tags["role"] ?? ""
        for (key, value) in tags {
            let upper = key.uppercased().map { ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" ? $0 : "_" }
            variables["SERF_TAG_" + String(upper)] = value
        }
        return variables
    }

    /// Serf's stdin (§9.3): a line per member, or the payload ending in a newline.
    static func stdin(for event: HandlerEvent) -> Data {
        switch event {
        case .member(_, let members, _, _):
            func clean(_ text: String) -> String {
                text.replacingOccurrences(of: "\t", with: "\\t").replacingOccurrences(of: "\n", with: "\\n")
            }
            let lines = members.map { member -> String in
                // The address without its port: IPv4, [IPv6], or a Pilot address (which has colons).
                let host = member.address.hasPrefix("[")
                    ? String(member.address.dropFirst().prefix { $0 != "]" })
                    : String(member.address[..<(member.address.lastIndex(of: ":") ?? member.address.endIndex)])
                let tags = member.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                return [clean(member.name), host, clean(member.tags["role"] ?? ""), clean(tags)].joined(separator: "\t") + "\n"
            }
            return Data(lines.joined().utf8)
        case .user, .query:
            var payload: [UInt8]
            switch event {
            case .user(let user, _): payload = user.payload
            case .query(let query, _): payload = query.payload
            case .member: payload = []
            }
            if let last = payload.last, last != UInt8(ascii: "\n") { payload.append(UInt8(ascii: "\n")) }
            return Data(payload)
        }
    }
}
