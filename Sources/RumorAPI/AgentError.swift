import RumorCore

/// An agent error the API reports as `{"status":"error","code":…,"message":…,"hint":…}` and the
/// CLI prints as `error:`/`hint:` lines (or that JSON with `--json`).
public struct AgentError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is, stable for machines.
    public var code: ErrorCode
    /// What failed, for people.
    public var message: String
    /// What to do about it.
    public var hint: String

    public init(code: ErrorCode, message: String, hint: String) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    /// An error a node command ended with, with its code, message and hint unchanged.
    public init(_ error: NodeError) {
        self.init(code: ErrorCode(error.code), message: error.message, hint: error.hint)
    }

    public var description: String { "\(code.rawValue): \(message) (\(hint))" }
}
