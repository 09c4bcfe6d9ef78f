/// Something the driver must do on the machine's behalf.
public enum MembershipDirective: Sendable, Hashable {
    /// Send one UDP packet holding `messages` (a compound when more than one), with a CRC when
    /// `checksum` is set (memberlist adds one for peers speaking protocol 5: see
    /// `ProtocolVersions.acceptsChecksums`).
    case send(to: NodeAddress, messages: [Message], checksum: Bool)
    /// Call `timerFired(timer)` after `after`. Timers are never cancelled: the machine ignores
    /// those that no longer apply.
    case startTimer(MembershipTimer, after: Duration)
    /// Open a stream to `to`, send `state` as a push-pull, read the reply and hand it to
    /// `receivePushPullReply`. Failure needs no report.
    case pushPull(to: NodeAddress, state: PushPull)
    /// Fallback probe: send `ping` over a stream and wait for its ack until `deadline`; report
    /// with `streamPingFinished`.
    case streamPing(to: NodeAddress, ping: Ping, deadline: Instant)
    /// An application (user) message arrived.
    case deliver([UInt8], from: NodeAddress)
    /// Membership changed.
    case event(MemberEvent)
    /// Another node claims a name we know at a different address; it was ignored.
    case conflict(existing: Member, claimed: Alive)
    /// Our leave announcement has been gossiped as often as any broadcast is.
    case leaveCompleted
    /// The current probe was acknowledged this long after its ping (directly or through a relay).
    case probeAnswered(roundTrip: Duration)
    /// The coordinate in `node`'s ack to our probe (or the round trip) was refused; nothing
    /// changed. Count and log it.
    case coordinateRejected(node: String, CoordinateRejection)
    /// A received message (or one member record of a push-pull) named an address `addressRule`
    /// refuses: it was dropped, nothing else changed. Count and log it.
    case addressRefused(AddressRefusal)
}

/// Timers the membership machine asks its driver for.
public enum MembershipTimer: Sendable, Hashable {
    /// Close the current probe and start the next (every probe interval, scaled by local health).
    case probe
    /// The direct ack for probe `sequence` is overdue: go indirect.
    case probeTimeout(sequence: UInt32)
    /// An indirect probe we relay got no ack in time: nack the requester if it asked.
    case relayTimeout(sequence: UInt32)
    /// Gossip queued broadcasts.
    case gossip
    /// Run a push-pull exchange with a random member.
    case pushPull
    /// The suspicion of `node` may have expired.
    case suspicionTimeout(node: String)
    /// Offer a push-pull exchange to one failed member (partition healing).
    case reconnect
    /// A join storm may have passed: run the settling push-pull (`MembershipSettings.stormSettleDelay`).
    case stormSettle
    /// Gossip news that arrived too soon after the last eager gossip.
    case flushGossip
}
