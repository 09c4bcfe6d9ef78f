/// Something the driver must do for the replication machine.
public enum ReplicationDirective: Sendable, Hashable {
    /// Send these entries to `to` (a packet when small, a stream otherwise), asking for an
    /// acknowledgement when `acknowledge`.
    /// `after`: see `ReplicationFrame.push`.
    case push([Entry], relay: PushRelay, acknowledge: Bool, after: HybridTimestamp?, to: NodeAddress)
    /// Confirm to `to` that the tree push whose first entry is this version arrived.
    case confirmRelay(Version, to: NodeAddress)
    /// Call `relayTimerFired` after this long.
    case startRelayTimer(after: Duration)
    /// `peer` did not answer a request in its timeout (`RoundTripTimes.noAnswer`).
    case noAnswer(from: NodeAddress)
    /// Tell the member named `to` that this node holds these versions of its writes.
    case acknowledge([Version], to: String)
    /// Ask `from` for what `digest` lacks, then call `receivePullAnswer(replyingTo: from)`.
    case pull(from: NodeAddress, digest: Digest, held: HeldWrites)
    /// Send these entries, which `to` lacks, with our digest: the push half of a push-pull
    /// exchange. The receiver merges them with `receivePullAnswer(replyingTo: nil)`.
    case sendDelta([Entry], digest: Digest, to: NodeAddress)
    /// Send this first page of a delta too large for one message; its receiver catches up from us.
    case sendPage(CatchUpPage, to: NodeAddress)
    /// Open a catch-up stream to `from` asking with this digest and held writes, and feed each
    /// page to `receiveCatchUpPage(inCatchUp: true)`, then call `catchUpEnded`.
    case catchUp(from: NodeAddress, digest: Digest, held: HeldWrites)
    /// Call `antiEntropyTimerFired` after this long.
    case startAntiEntropyTimer(after: Duration)
    /// Call `pullRetryTimerFired` after this long.
    case startPullRetryTimer(after: Duration)
    /// These remote entries became winners (for watchers).
    case applied([Entry])
    /// These tombstones were forgotten after the grace period.
    case forgot([String])
    /// These entries, from `from` (a peer's name or address), were refused for `reason`: log
    /// it, and with `tellWriters` tell each writer (who waits for acknowledgements).
    case refused([Version], reason: String, from: String, tellWriters: Bool)
    /// These values' time to live ran out since the last report (for watchers).
    case expired([Entry])
}
