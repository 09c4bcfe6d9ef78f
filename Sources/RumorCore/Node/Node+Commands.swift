extension Node {
    // MARK: - Writes

    /// What a local write produced: the entries, and the effects to carry out (pushes, a
    /// completed wait…).
    public struct WriteOutcome: Sendable {
        public var entries: [Entry]
        public var effects: [NodeEffect]
    }

    /// A local write checked and timestamped but not applied: a durable node saves `save`
    /// first, then calls `commitWrite`, or `abandonWrite` when the save fails (then the write is
    /// never seen, and the remote state the save carried is queued again).
    public struct PreparedWrite: Sendable {
        public let entries: [Entry]
        /// The transaction to commit before the write is applied and acknowledged (nil when not
        /// durable): the writes, and any remote state queued for saving.
        public let save: StorageWrite?
        fileprivate let queued: SaveBatch
    }

    /// A wait for replicas of a write (`put --wait`).
    public struct ReplicaWaitRequest: Sendable, Hashable {
        public var target: ReplicaTarget
        public var timeout: Duration
        public var command: CommandID

        public init(target: ReplicaTarget, timeout: Duration, command: CommandID) {
            self.target = target
            self.timeout = timeout
            self.command = command
        }
    }

    /// Writes a batch locally (all or nothing) and replicates it: `prepareWrite` then
    /// `commitWrite`, for a driver with nothing to save between.
    /// - Throws: `NodeError` (`left`, `empty_key`, `key_too_long`, `value_too_large`); nothing
    ///   is written then.
    public mutating func write(_ writes: [Replication.Write], awaiting: ReplicaWaitRequest? = nil, at time: NodeTime)
        throws(NodeError) -> WriteOutcome
    {
        let prepared = try prepareWrite(writes, at: time)
        return commitWrite(prepared, awaiting: awaiting, at: time)
    }

    /// Checks and timestamps a batch of local writes, and builds the transaction that must
    /// commit before they are applied. Call `commitWrite` or `abandonWrite` next, before any
    /// other input.
    /// - Throws: `NodeError` (`left`, `empty_key`, `key_too_long`, `value_too_large`).
    public mutating func prepareWrite(_ writes: [Replication.Write], at time: NodeTime) throws(NodeError) -> PreparedWrite {
        guard !membership.hasLeft else {
            throw NodeError(.left, "this node has left the swarm", hint: "restart the agent to write")
        }
        // (From the cached peer names: decoding every member's tags per write would tax the write path.)
        let clock = clockOffsets.verdict(livePeers: replicationPeerNames(), at: time)
        guard !clock.isFenced else {
            throw NodeError(
                .clockSkew, "this node's clock is \(clock.description): it takes no local writes until its clock is back",
                hint: "fix this machine's time sync (chrony or ntpd; `timedatectl status`); reads and replication go on, "
                    + "and writes resume by themselves once the clock is within the bound")
        }
        let entries = try replication.prepare(writes, wallMilliseconds: time.wallMilliseconds)
        guard local.durable, let last = entries.last else { return PreparedWrite(entries: entries, save: nil, queued: SaveBatch()) }
        // The change-log positions `commitWrite` will give them.
        var sequences: [String: UInt64] = [:]
        var next = changes.last
        for entry in entries {
            next += 1
            sequences[entry.key] = next
        }
        // Durable before acknowledged, in one transaction with anything queued before it.
        let queued = unsaved
        unsaved = SaveBatch()
        var batch = queued
        batch.add(entries, sequences: sequences, digest: [last.version.writer: last.version.timestamp])
        return PreparedWrite(entries: entries, save: batch.write, queued: queued)
    }

    /// Applies a prepared write (saved, when durable) and replicates it. With `awaiting`, the
    /// pushes ask for acknowledgement and the command completes once enough nodes hold the
    /// writes (or fails with `replication_timeout`).
    public mutating func commitWrite(_ prepared: PreparedWrite, awaiting: ReplicaWaitRequest? = nil, at time: NodeTime)
        -> WriteOutcome
    {
        let entries = prepared.entries
        let directives = replication.commit(
            entries, wallMilliseconds: time.wallMilliseconds, peers: replicationPeers(), awaitingReplicas: awaiting != nil,
            now: time.now, roundTrips: membership.roundTrips)
        _ = recordChanges(entries.map(\.key))
        var out: [NodeEffect] = [.changesRecorded]
        out += effects(of: directives, at: time)
        if let awaiting {
            replicaWaits[awaiting.command] = ReplicaWait(
                entries: entries, target: awaiting.target, timeout: awaiting.timeout, deadline: time.now + awaiting.timeout)
            out += checkReplicaWaits(at: time)
            if !replicaWaits.isEmpty, !replicaWaitTimerArmed {
                replicaWaitTimerArmed = true
                out.append(.startTimer(.replicaWaits, after: replicaRepairInterval))
            }
        }
        return WriteOutcome(entries: entries, effects: out)
    }

    /// A save succeeded: the values it wrote now live on disk, and a durable node keeps in
    /// memory only what merge and digests need (the driver loads values back when it sends or
    /// shows an entry).
    public mutating func saved(_ write: StorageWrite) {
        guard local.durable, case .save(let entries, _, _) = write else { return }
        replication.store.keepValuesOnDisk(entries)
    }

    /// The prepared write's save failed: the write is dropped (never applied, never seen) and
    /// the remote state its transaction carried is queued again.
    public mutating func abandonWrite(_ prepared: PreparedWrite) {
        unsaved.add(prepared.queued)
    }

    /// A save of remote state failed (a full disk): queue it again, to be retried with the next
    /// save, so the digest on disk never runs ahead of the entries on disk.
    public mutating func saveFailed(_ write: StorageWrite, at time: NodeTime) -> [NodeEffect] {
        guard case .save(let entries, let sequences, let digest) = write else { return [] }
        return queueSave(entries, sequences: sequences, digest: digest, after: local.saveRetryDelay)
    }

    /// How often writes awaited by `put --wait` are pushed again to the peers that lack them:
    /// a typical member's retransmission timeout (`RoundTripTimes`), at least
    /// `replicaRepairInterval`: sooner, the first push's acknowledgements could not be back.
    var replicaRepairInterval: Duration {
        membership.roundTrips.timeout(for: nil, floor: local.replicaRepairInterval, cap: local.replicaRepairInterval)
    }

    /// Completes the waits that have enough replicas; with `repairing`, fails those past their
    /// deadline and pushes the rest again to the live peers that lack them.
    mutating func checkReplicaWaits(repairing: Bool = false, stopping: Bool = false, at time: NodeTime) -> [NodeEffect] {
        guard !replicaWaits.isEmpty else { return [] }
        // Suspects count: until declared dead they are members that should get the write.
        let peers = replicationMembers(in: [.alive, .suspect])
        let names = peers.map(\.name)
        var out: [NodeEffect] = []
        for (command, wait) in replicaWaits.sorted(by: { $0.key < $1.key }) {
            let holders = replication.holders(of: wait.entries.map(\.version), among: names).sorted()
            let refusers = replication.refusers(of: wait.entries.map(\.version)).filter {
                names.contains($0.key) && !holders.contains($0.key)
            }
            let needed: Int
            switch wait.target {
            case .all: needed = names.count
            case .count(let count): needed = count - 1
            }
            if holders.count >= needed {
                out += finishReplicaWait(command, with: .replicated(holders: holders))
            } else if !refusers.isEmpty, names.count - refusers.count < needed {
                let refusals = refusers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
                let error = NodeError(
                    .replicationRefused,
                    "the write is saved on \(name) and held by \(holders.count + 1) node\(holders.isEmpty ? "" : "s"), but "
                        + "\(refusers.count) refused it, so \(needed + 1) cannot hold it: \(refusals)",
                    hint: "the refusing nodes keep their state without it: check their limits (max key and value size)")
                out += finishReplicaWait(command, with: .failed(error))
            } else if time.now >= wait.deadline || stopping {
                let missing = Set(names).subtracting(holders).sorted()
                let asked = wait.target == .all ? "all \(names.count + 1)" : "the \(needed + 1) asked for"
                let swarm = names.count + 1
                let error = NodeError(
                    .replicationTimeout,
                    "the write is saved on \(name), but only \(holders.count + 1) of \(asked) nodes held it after \(wait.timeout) "
                        + "(\(swarm) live node\(swarm == 1 ? "" : "s") in the swarm)"
                        + (missing.isEmpty ? "" : "; not yet: \(missing.joined(separator: ", "))"),
                    hint: needed + 1 > swarm
                        ? "the swarm has fewer live nodes than --wait asks for: wait for fewer, or for all"
                        : "the write stays and will keep spreading; raise --timeout, or check the missing nodes")
                out += finishReplicaWait(command, with: .failed(error))
            } else if repairing {
                let lacking = Set(names).subtracting(holders)
                let addresses = peers.filter { lacking.contains($0.name) }.map(\.address)
                out += effects(of: replication.pushAgain(wait.entries, to: addresses), at: time)
            }
        }
        return out
    }

    private mutating func finishReplicaWait(_ command: CommandID, with result: CommandResult) -> [NodeEffect] {
        guard let wait = replicaWaits.removeValue(forKey: command) else { return [] }
        replication.stopAwaiting(wait.entries.map(\.version))
        return [.complete(command, result)]
    }

    // MARK: - Join and leave

    /// Joins through `seeds` by push-pull exchanges; the command completes when every seed has
    /// answered or failed: `joined` with how many answered, or `join_failed`. With `retrying`
    /// (start-up) a join that reached no seed is retried with backoff (`retryJoin`) instead.
    public mutating func join(seeds: [NodeAddress], command: CommandID, retrying: Bool = false, at time: NodeTime)
        -> [NodeEffect]
    {
        guard !membership.hasLeft else {
            let error = NodeError(.left, "this node has left the swarm", hint: "restart the agent to rejoin")
            return [.complete(command, .failed(error))]
        }
        let exchanges = membership.join(seeds: seeds, now: time.now).compactMap { directive -> NodeEffect? in
            guard case .pushPull(let address, let state) = directive else { return nil }
            return .pushPull(state, to: address, join: command)
        }
        joins[command] = JoinProgress(seeds: seeds, outstanding: exchanges.count, retrying: retrying)
        return exchanges.isEmpty ? joinAttemptEnded(command, contacted: false, counted: false, at: time) : exchanges
    }

    mutating func joinAttemptEnded(_ command: CommandID, contacted: Bool, counted: Bool = true, at time: NodeTime)
        -> [NodeEffect]
    {
        guard var join = joins[command] else { return [] }
        if counted { join.outstanding -= 1 }
        if contacted { join.contacted += 1 }
        joins[command] = join
        guard join.outstanding <= 0 else { return [] }
        joins[command] = nil
        let seeds = join.seeds.map(\.description).joined(separator: ", ")
        if join.contacted > 0 {
            joinRetryDelay = local.joinRetryInitial
            joinRetryArmed = false
            lastJoinSeeds = join.seeds
            joinFollowUps = 0
            var out: [NodeEffect] = [
                .startTimer(.joinFollowUp, after: membership.settings.joinFollowUpDelay),
                .log(NodeLog(.info, "joined", ["seeds": seeds, "contacted": "\(join.contacted)"])),
                .complete(command, .joined(contacted: join.contacted)),
            ]
            if speaksSerf { out += effects(of: serf.joined()) }
            out += joinedWhileSyncing(at: time)
            return out
        }
        if join.retrying {
            let delay = joinRetryDelay
            joinRetryDelay = min(delay * 2, local.joinRetryMaximum)
            joinRetryArmed = true
            return [
                .log(NodeLog(.warning, "no seed answered; retrying", ["seeds": seeds, "in": "\(delay)"])),
                .startTimer(.joinRetry, after: delay),
            ]
        }
        let error = NodeError(
            .joinFailed, "none of \(seeds.isEmpty ? "the seeds" : seeds) answered",
            hint: "check that an agent runs there, with the same --swarm name")
        return [.complete(command, .failed(error))]
    }

    /// Leaves gracefully: announces it, and completes `command` once the announcement has been
    /// gossiped as often as any broadcast, or after `NodeSettings.leaveTimeout`.
    public mutating func leave(command: CommandID, at time: NodeTime) -> [NodeEffect] {
        var out: [NodeEffect] = []
        if !membership.hasLeft, !announcingLeave {
            out.append(.log(NodeLog(.info, "leaving the swarm")))
            let othersAlive = membership.members.values.contains { $0.name != name && $0.state == .alive }
            if speaksSerf, othersAlive {
                // Serf's order: the leave intent first, memberlist's announcement once it has
                // spread, so Serf agents list this node as left, not failed.
                announcingLeave = true
                out += effects(of: serf.leaving())
                out.append(.startTimer(.leaveAfterIntent, after: membership.settings.gossipInterval * 3))
            } else {
                out += effects(of: membership.leave(now: time.now), at: time)
            }
        }
        if leaveCompleted {
            out.append(.complete(command, .left))
            return out
        }
        leaveWaiters.append(command)
        if !leaveTimerArmed {
            leaveTimerArmed = true
            out.append(.startTimer(.leaveTimeout, after: NodeSettings.leaveTimeout(for: membership.settings)))
        }
        return out
    }

    mutating func completeLeave() -> [NodeEffect] {
        leaveCompleted = true
        let waiters = leaveWaiters
        leaveWaiters = []
        return waiters.map { .complete($0, .left) }
    }

    /// The node is stopping: fail the writes still awaited and save what is queued.
    public mutating func shutDown(at time: NodeTime) -> [NodeEffect] {
        checkReplicaWaits(stopping: true, at: time) + flushSaves()
    }

    // MARK: - Keyring exchange

    /// Runs a keyring operation on every other live Rumor node, after this one answered `local`;
    /// the command completes with every answer (`keyringAnswered` reports each).
    public mutating func rotateKeyring(_ operation: KeyringOperation, local: KeyringFrame, command: CommandID)
        -> [NodeEffect]
    {
        counters.add(.keyringOperations)
        let peers = replicationMembers()
        keyringExchanges[command] = KeyringExchange(asked: peers.count + 1, answers: [name: local])
        let asks = peers.map { NodeEffect.askKeyring(operation, peer: $0.name, at: $0.address, command: command) }
        return asks.isEmpty ? finishKeyringExchange(command) : asks
    }

    /// `peer` answered a keyring request (nil `answer`: it failed, for `failure`).
    public mutating func keyringAnswered(_ answer: KeyringFrame?, failure: String = "", from peer: String, command: CommandID)
        -> [NodeEffect]
    {
        guard var exchange = keyringExchanges[command] else { return [] }
        if let answer {
            exchange.answers[peer] = answer
        } else {
            exchange.failures[peer] = "no answer: \(failure)"
        }
        keyringExchanges[command] = exchange
        guard exchange.answers.count + exchange.failures.count >= exchange.asked else { return [] }
        return finishKeyringExchange(command)
    }

    private mutating func finishKeyringExchange(_ command: CommandID) -> [NodeEffect] {
        guard let exchange = keyringExchanges.removeValue(forKey: command) else { return [] }
        var tally = KeyringTally(
            nodes: exchange.asked, responded: exchange.answers.count, failures: exchange.failures, keys: [:], primaryKeys: [:])
        for (peer, answer) in exchange.answers {
            guard case .response(let held, let error) = answer else { continue }
            if let error { tally.failures[peer] = error }
            for key in held { tally.keys[key, default: 0] += 1 }
            if let primary = held.first { tally.primaryKeys[primary, default: 0] += 1 }
        }
        return [.complete(command, .keyring(tally))]
    }

    // MARK: - Watching

    /// Checks that changes after `sequence` can be followed; returns where to start. From 0 they
    /// always can: a reader that has seen nothing misses nothing in a forgotten key (its
    /// tombstone was collected), so the replay is every key this node still knows.
    /// - Throws: `watch_ahead` beyond the log, `watch_compacted` when some were forgotten.
    public func watchStart(from sequence: UInt64?) throws(NodeError) -> UInt64 {
        let start = sequence ?? changes.last
        guard start <= changes.last else {
            throw NodeError(
                .watchAhead, "seq \(start) is beyond this agent's change log, which ends at \(changes.last)",
                hint: "the agent may have restarted without --data-dir; list again and watch from the seq it returns")
        }
        if start > 0 { try checkResumable(from: start) }
        return start
    }

    func checkResumable(from sequence: UInt64) throws(NodeError) {
        guard sequence >= changes.compactedThrough else {
            throw NodeError(
                .watchCompacted,
                "changes after seq \(sequence) are no longer all known: keys changed up to seq \(changes.compactedThrough) were since forgotten (tombstone grace)",
                hint: "list the keys again and watch from the seq the list returns")
        }
    }

    /// One change a watcher sees: the key's current entry and what happened to it.
    public struct WatchedChange: Sendable, Hashable {
        public enum Kind: String, Sendable {
            case put, delete, expire, depart
        }

        public var entry: Entry
        public var sequence: UInt64
        public var kind: Kind
    }

    /// The latest changes after `sequence` under `prefix` (at most `limit`), and the sequence to
    /// continue from. `replaying`: the watch started from 0 and has not passed what was
    /// forgotten when it started, so forgotten keys do not concern it (see `watchStart`).
    public func watchBatch(after sequence: UInt64, prefix: String, limit: Int = 512, replaying: Bool = false, at time: NodeTime)
        throws(NodeError) -> (changes: [WatchedChange], through: UInt64)
    {
        if !replaying { try checkResumable(from: sequence) }
        let store = replication.store
        let (found, through) = changes.changes(after: sequence, prefix: prefix, limit: limit) { store.sequence(of: $0) }
        let batch = found.compactMap { change -> WatchedChange? in
            guard let entry = replication.store.entries[change.key] else { return nil }
            let kind: WatchedChange.Kind
            if replication.read(change.key, wallMilliseconds: time.wallMilliseconds) != nil {
                kind = .put
            } else if entry.isTombstone {
                kind = .delete
            } else {
                kind = entry.ephemeral && !replication.isRunning(entry.version.writer) ? .depart : .expire
            }
            return WatchedChange(entry: entry, sequence: change.sequence, kind: kind)
        }
        return (batch, through)
    }
}
