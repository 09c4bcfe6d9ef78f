import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `rumor wait --ready`: returns once the agent serves reads (it synced with a peer since it
/// started), or fails with `not_ready` after `--timeout`. An agent still starting (its API not
/// listening yet) is waited for too, so `rumor agent … & rumor wait --ready` works.
public struct WaitCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Wait until the agent is ready to serve reads (synced with a peer since it started).",
        discussion: """
            After a start with peers to join, an agent is syncing until it has merged a complete answer \
            from one of them (or waited its ready_timeout, 10s by default); reads answer not_ready \
            meanwhile. `rumor wait --ready` returns as soon as it is ready (exit 0) and fails with \
            not_ready (exit 1) if it is not within --timeout.
            """)
    @OptionGroup var options: ClientOptions
    @Flag(help: "Wait until the agent is ready to serve reads.") var ready = false
    @Option(help: "Give up after this long: 30s, 2m or plain seconds (default 30s).") var timeout: String?
    public init() {}

    public func run() throws {
        guard ready else {
            throw CLIError(code: "bad_arguments", message: "say what to wait for", hint: "rumor wait --ready")
        }
        let limit = try parseDuration(timeout ?? "30")
        var client = options.client
        client.json = true
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(limit * 1000))
        var last: CLIError?
        while true {
            let left = Double((deadline - clock.now).components.seconds) + Double((deadline - clock.now).components.attoseconds) / 1e18
            if left <= 0 { break }
            // The agent holds the answer until it is ready or `wait` passes: no polling while it runs.
            let wait = min(left, 10)
            let answer: Result<String, CLIError>
            do {
                answer = .success(
                    try client.call("GET", "/v1/health" + APIClient.query([("ready", "true"), ("wait", String(wait))]), timeout: wait + 5))
            } catch {
                answer = .failure(error)
            }
            switch answer {
            case .success(let text):
                // The text rendering says why it is ready ("ready: synced with n2 in 140 ms").
                Output.print(options.json ? text : (try? options.client.call("GET", "/v1/health")) ?? "ready")
                return
            case .failure(let error):
                guard error.code == "not_ready" || error.code == "agent_unreachable" else { throw error }
                last = error
                if error.code == "agent_unreachable" { usleep(100_000) }  // not started yet
            }
        }
        let why = last.map { $0.code == "not_ready" ? $0.message : "the agent at \(options.api) does not answer: \($0.message)" } ?? ""
        throw CLIError(
            code: last?.code == "agent_unreachable" ? "agent_unreachable" : "not_ready",
            message: "not ready after \(timeout ?? "30s"): \(why)",
            hint: last?.code == "agent_unreachable"
                ? "is the agent running, with this --api address?"
                : "no peer answered the agent's sync yet; it is ready after its ready_timeout at the latest: wait longer, or check its peers with `rumor members`")
    }
}
