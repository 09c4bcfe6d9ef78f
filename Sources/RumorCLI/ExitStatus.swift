/// The exit status of every `rumor` command: one table, shown in docs/guide/cli.md and `rumor context`.
///
/// A status says who is at fault, so a script can branch without reading stderr: the command
/// line (64), the address it points at (69, 76), or the agent's answer (1, whose `code` says
/// more). The values follow `sysexits.h`, as argument-parser's own usage errors (64) already do.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    /// The command did what it was asked.
    case success = 0
    /// The agent answered with an error (or `rumor agent` itself could not start or run): the
    /// error's code says which, e.g. `key_not_found`, `replication_timeout`, `bind_failed`.
    case agentError = 1
    /// The command line is wrong: a missing or unknown argument, a value out of range
    /// (`bad_arguments`, argument-parser's usage errors). Nothing was sent.
    case usage = 64
    /// No agent answers at `--api` (`agent_unreachable`): not running, or another address.
    case unreachable = 69
    /// Something answers at `--api`, but not as a Rumor agent's API (`bad_response`): another
    /// service, or the agent's gossip port.
    case notAnAgent = 76

    /// The status for an error with this code (an `ErrorCode` raw value).
    public init(errorCode: String) {
        switch errorCode {
        case "bad_arguments": self = .usage
        case "agent_unreachable": self = .unreachable
        case "bad_response": self = .notAnAgent
        default: self = .agentError
        }
    }

    /// What the status means, one line.
    public var meaning: String {
        switch self {
        case .success: "success"
        case .agentError: "the agent answered with an error, or `rumor agent` could not start or run: see the error's code"
        case .usage: "usage: the command line is wrong (missing, unknown or out-of-range arguments); nothing was sent"
        case .unreachable: "no agent answers at --api (RUMOR_API): it is not running, or listens elsewhere"
        case .notAnAgent: "something answers at --api, but not as a Rumor agent's API (another service, or the gossip port)"
        }
    }
}
