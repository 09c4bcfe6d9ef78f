import Foundation
import RumorCore

/// Whether the agent serves reads, as `GET /v1/health` reports it and `rumor wait --ready`
/// waits for it (see `Readiness` in the core).
public struct ReadinessSnapshot: Codable, Sendable, Hashable {
    /// Always true: the agent answers (liveness).
    public var ok: Bool
    /// The node's name.
    public var node: String
    /// True once reads are served: the node synced with a peer since it started, had no peer to
    /// sync with, or waited `readyTimeoutSeconds` for one.
    public var ready: Bool
    /// `syncing` or `ready`.
    public var state: String
    /// While syncing: for how long so far.
    public var syncingSeconds: Double?
    /// The longest a node syncs before it is ready anyway (the agent's `ready_timeout`).
    public var readyTimeoutSeconds: Double
    /// Once ready: why, e.g. "synced with n2 in 140 ms".
    public var reason: String?
    /// `ok`, or `degraded` while the node's clock is fenced (it refuses local writes: `clock`
    /// says why); liveness and readiness are not affected.
    public var status: String
    public var clock: ClockSnapshot?

    public init(
        node: String, ready: Bool, syncingSeconds: Double?, readyTimeoutSeconds: Double, reason: String?, clock: ClockSnapshot? = nil
    ) {
        self.ok = true
        self.status = clock?.fenced == true ? "degraded" : "ok"
        self.clock = clock
        self.node = node
        self.ready = ready
        self.state = ready ? "ready" : "syncing"
        self.syncingSeconds = syncingSeconds
        self.readyTimeoutSeconds = readyTimeoutSeconds
        self.reason = reason
    }

    /// The one line `rumor wait --ready` and the health text print.
    public var text: String {
        if ready { return "ready: " + (reason ?? "") }
        let elapsed = String(format: "%.1f s", syncingSeconds ?? 0)
        let limit = String(format: "%g s", readyTimeoutSeconds)
        return "syncing for \(elapsed) (ready after a first sync with a peer, at most \(limit) after the start)"
    }
}

extension AgentError {
    /// The hint of every `not_ready` answer.
    public static let notReadyHint =
        "this node restarted and has not synced with a peer yet; retry, wait with `rumor wait --ready`, or pass --stale for a possibly stale read"

    /// A read refused while `node` is syncing (`not_ready`, HTTP 503): its state may lack writes
    /// the swarm made while it was down. Nothing was read.
    public static func notReady(_ readiness: ReadinessSnapshot) -> AgentError {
        AgentError(
            code: .notReady,
            message: "\(readiness.node) is syncing: no peer has answered its first anti-entropy pull since it started "
                + "(\(readiness.text)); a read now may miss what the swarm wrote meanwhile",
            hint: notReadyHint)
    }
}
