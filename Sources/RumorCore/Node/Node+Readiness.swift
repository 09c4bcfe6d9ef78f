/// Readiness: whether this process's state has been reconciled with the swarm since it started.
///
/// A node that joins peers starts `syncing`: its state may lack what others wrote while it was
/// down (all of it, after a restart without a data dir), so a value read from it may be older
/// than the swarm's, and a "read, add 1, write" step would push the old value back everywhere
/// (last writer wins). It becomes `ready` once a complete anti-entropy answer from a peer has
/// been merged (`synced`), or a catch-up ran to its last page; or after `readyTimeout` when no
/// peer answered (a swarm that is down must not keep the node unreadable for good). A node
/// with nothing to join (a lone first node) is ready at once.
///
/// Readiness only ever goes from `syncing` to `ready`, once per process. It changes nothing in
/// the core's behaviour: writes are taken while syncing (the sync's entries merge with them by
/// version, as any others), and `read` answers; refusing reads while syncing is the API's
/// policy (`not_ready`), decided from `Node.readiness`, and so is holding writes until the sync
/// when one is in reach (`writesAwaitSync`). Kubernetes separates liveness from
/// readiness the same way, and Redis answers `-LOADING` until its dataset is loaded.
public enum Readiness: Sendable, Hashable {
    /// Waiting for a first sync, since this monotonic time.
    case syncing(since: Instant)
    case ready(ReadyReason)

    public var isReady: Bool {
        if case .ready = self { true } else { false }
    }
}

/// Why a node became ready.
public enum ReadyReason: Sendable, Hashable {
    /// It had no peer to sync with: no seed to join, or a swarm with no other replicating node.
    case alone
    /// A pull answer (or the last page of a catch-up) from `peer` was merged, `after` the start.
    case synced(peer: String, after: Duration)
    /// No peer answered within `NodeSettings.readyTimeout` (`after`).
    case timedOut(after: Duration)

    /// One line for logs and the API: "synced with n2 in 140 ms".
    public var description: String {
        switch self {
        case .alone: "no peer to sync with"
        case .synced(let peer, let after): "synced with \(peer) in \(Self.text(after))"
        case .timedOut(let after): "no peer answered in \(Self.text(after)); serving this node's state as it is"
        }
    }

    static func text(_ duration: Duration) -> String {
        let milliseconds = duration.nanosecondsClamped / 1_000_000
        return milliseconds < 10_000 && milliseconds % 1000 != 0 ? "\(milliseconds) ms" : "\(milliseconds / 1000) s"
    }
}

extension Node {
    /// Whether a local write should wait for the first sync: the node is syncing and has peers
    /// to sync with, or a join under way may bring some. After the sync its clock has passed
    /// every stamp the swarm holds of its earlier processes, so a write of a key it wrote before
    /// is stamped above that value whatever its wall clock says. With no peer in reach, waiting
    /// would teach it nothing: the write goes through.
    public var writesAwaitSync: Bool {
        guard !readiness.isReady else { return false }
        return !joins.isEmpty || !replicationMembers().isEmpty
    }

    /// Begins readiness at `start`: ready at once when nothing will be joined; else syncing,
    /// with the ready timer armed and, when peers are already known (fixed), a pull at once.
    mutating func startReadiness(joining: Bool, at time: NodeTime) -> [NodeEffect] {
        guard joining else { return becomeReady(.alone, at: time) }
        readiness = .syncing(since: time.now)
        var out: [NodeEffect] = [
            .startTimer(.readyTimeout, after: readyTimeout),
            .log(
                NodeLog(
                    .info, "syncing: reads answer not_ready until a peer answers (at most \(ReadyReason.text(readyTimeout)))")),
        ]
        out += pullForFirstSync(at: time)
        return out
    }

    /// A join completed: pull at once rather than at the next anti-entropy round; with no
    /// replicating peer to pull from (a swarm of Serf or memberlist nodes only), ready now.
    mutating func joinedWhileSyncing(at time: NodeTime) -> [NodeEffect] {
        guard case .syncing = readiness else { return [] }
        if replicationPeers().isEmpty { return becomeReady(.alone, at: time) }
        return pullForFirstSync(at: time)
    }

    /// A pull from one random peer now, retried on another after `pullRetryAfter` (as an
    /// anti-entropy round's), without touching the anti-entropy cadence.
    mutating func pullForFirstSync(at time: NodeTime) -> [NodeEffect] {
        guard case .syncing = readiness else { return [] }
        return effects(of: replication.pullAtOnce(peers: replicationPeers(), roundTrips: membership.roundTrips), at: time)
    }

    /// A pull answer or a catch-up's last page from `peer` was merged.
    mutating func syncedForReadiness(with peer: String, at time: NodeTime) -> [NodeEffect] {
        guard case .syncing(let since) = readiness else { return [] }
        return becomeReady(.synced(peer: peer, after: time.now - since), at: time)
    }

    /// The ready timer fired: still syncing means no peer answered in time.
    mutating func readyTimerFired(at time: NodeTime) -> [NodeEffect] {
        guard case .syncing = readiness else { return [] }
        return becomeReady(.timedOut(after: readyTimeout), at: time)
    }

    private mutating func becomeReady(_ reason: ReadyReason, at time: NodeTime) -> [NodeEffect] {
        readiness = .ready(reason)
        let level: NodeLog.Level = if case .timedOut = reason { .warning } else { .info }
        return [.log(NodeLog(level, "ready: \(reason.description)")), .ready(reason)]
    }
}

extension Replication {
    /// A pull from one random peer now, with this round's retries, unless a catch-up is under
    /// way (it is the pull, and more). The anti-entropy timer is left as it is.
    mutating func pullAtOnce(peers: [NodeAddress], roundTrips: RoundTripTimes) -> [ReplicationDirective] {
        guard catchUp == nil, !peers.isEmpty else { return [] }
        // `pullRetryTimerFired` pulls while retries are left: one for this pull, then this round's.
        pullRetriesLeft = settings.pullRetries + 1
        return pullRetryTimerFired(peers: peers, roundTrips: roundTrips)
    }
}
