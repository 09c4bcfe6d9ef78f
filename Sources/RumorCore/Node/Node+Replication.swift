extension Node {
    // MARK: - Replication frames

    /// A replication frame from `sender`: where a datagram came from (the peer's gossip socket),
    /// or the client end of a stream (an ephemeral port: replies then go to the member's
    /// advertised address).
    mutating func receive(_ frame: ReplicationFrame, from sender: NodeAddress, viaStream: Bool, at time: NodeTime)
        -> [NodeEffect]
    {
        switch frame {
        case .push(let entries, let relay, let acknowledge, let after):
            counters.add(.replicationPushesReceived)
            let peers = replicationPeers()
            return effects(
                of: replication.receivePush(
                    entries, relay: relay, acknowledge: acknowledge, after: after, from: sender, viaStream: viaStream,
                    wallMilliseconds: time.wallMilliseconds, peers: peers, now: time.now, roundTrips: membership.roundTrips),
                at: time)
        case .pullRequest(let peer, let digest, let held, let fingerprint, let complete):
            guard pullLimiter.allow(sender, now: time.now) else {
                let burst = local.limits.pullBurst, rate = local.limits.pullPerSecond
                return refused(
                    .rateLimitedPull, "refusing an anti-entropy pull: its node is over the rate limit", peer: sender,
                    limit: "\(burst) at once, \(rate)/s per node")
            }
            counters.add(.replicationPullsAnswered)
            var out = checkReplicaWaits(at: time)
            // A datagram's source is the requester's socket, right even when our view of its
            // address is stale (it restarted on a new port).
            let replyTo = viaStream ? membership.members[peer]?.address ?? sender : sender
            let reply: ReplicationFrame
            let heldBack =
                complete
                ? .zero
                : treeDeliveryTime()
            switch replication.answerPull(
                digest: digest, held: held, fingerprint: fingerprint, from: peer, wallMilliseconds: time.wallMilliseconds,
                heldBack: heldBack)
            {
            case .complete(let entries, let digest, let held):
                reply = .pullAnswer(
                    from: name, wallMilliseconds: time.wallMilliseconds, entries: entries, digest: digest, held: held,
                    fingerprint: replication.store.fingerprint)
            case .partial(let page):
                counters.add(.catchUpPagesSent)
                reply = .catchUpPage(page)
            }
            out.append(.send(.replication(reply), to: replyTo))
            return out
        case .acknowledgement(let peer, let versions):
            counters.add(.replicationAcknowledgementsReceived)
            replication.receiveAcknowledgement(versions, from: peer)
            if !viaStream, let first = versions.first,
                let roundTrip = replication.relayConfirmed(first, by: sender, now: time.now)
            {
                membership.roundTrips.record(roundTrip, to: sender)
            }
            return checkReplicaWaits(at: time)
        case .pullAnswer(let peer, let wall, let entries, let digest, let held, let fingerprint):
            return receivePullAnswer(
                from: peer, wallMilliseconds: wall, at: viaStream ? nil : sender, entries: entries, digest: digest, held: held,
                fingerprint: fingerprint, time: time)
        case .refusal(let peer, let versions, let reason):
            replication.receiveRefusal(versions, reason: reason, from: peer)
            return checkReplicaWaits(at: time)
        case .event(let peer, let id, let event):
            return receiveDirectEvent(event, from: peer, id: id)
        case .queryResponse(let response):
            return effects(of: serf.queries.receive(response, now: time.now), at: time)
        case .catchUpPage(let page):
            // The first page of a large delta: a pull answer, or the push half of an exchange.
            counters.add(.catchUpPagesReceived)
            guard let address = answerer(page.from, at: viaStream ? nil : sender) else { return [] }
            if let pull = pendingPulls.removeValue(forKey: address) {
                counters.add(.replicationPullsCompleted)
                recordRoundTrip(of: pull, to: address, at: time)
            }
            return merged(
                replication.receiveCatchUpPage(page, from: address, inCatchUp: false, wallMilliseconds: time.wallMilliseconds),
                at: time)
        case .catchUpRequest:
            // Served over its own stream (`catchUpRequested`), never as a datagram.
            return []
        }
    }

    // MARK: - Catch-up

    /// `peer` asks over a stream for every page of what it lacks: the state to hand to
    /// `nextCatchUpPage` until its last page, or nil with the refusal (rate limit) to carry out.
    public mutating func catchUpRequested(
        from peer: String, digest: Digest, held: HeldWrites, sender: NodeAddress,
        at time: NodeTime
    ) -> (serving: Replication.CatchUpServing?, effects: [NodeEffect]) {
        guard pullLimiter.allow(sender, now: time.now) else {
            let burst = local.limits.pullBurst, rate = local.limits.pullPerSecond
            return (nil, refused(.rateLimitedPull, "refusing a catch-up: its node is over the rate limit", peer: sender,
                limit: "\(burst) at once, \(rate)/s per node"))
        }
        counters.add(.catchUpsServed)
        return (Replication.CatchUpServing(peer: peer, digest: digest, held: held), [])
    }

    /// The next page of a catch-up this node serves, as a frame to write.
    public mutating func nextCatchUpPage(_ serving: inout Replication.CatchUpServing) -> ReplicationFrame {
        counters.add(.catchUpPagesSent)
        return .catchUpPage(replication.nextCatchUpPage(&serving))
    }

    /// A page of the catch-up this node asked `peer` for arrived. The last one completes a sync.
    public mutating func catchUpPageArrived(_ page: CatchUpPage, from peer: NodeAddress, at time: NodeTime) -> [NodeEffect] {
        counters.add(.catchUpPagesReceived)
        let out = merged(
            replication.receiveCatchUpPage(page, from: peer, inCatchUp: true, wallMilliseconds: time.wallMilliseconds), at: time)
        return page.isLast ? out + synced(at: time) + syncedForReadiness(with: page.from, at: time) : out
    }

    /// The catch-up stream ended, after its last page (`completed`) or not (a lost connection, a
    /// bad page): the next anti-entropy round resumes from the digest the pages advanced.
    /// Returns what it received.
    public mutating func catchUpEnded(completed: Bool) -> Replication.CatchUpProgress? {
        counters.add(completed ? .catchUpsCompleted : .catchUpsInterrupted)
        return replication.catchUpEnded()
    }

    /// A pull answer from `peer` arrived: ours if we asked (then push the rest back and note the
    /// sync), else the push half of an exchange `peer` started.
    private mutating func receivePullAnswer(
        from peer: String, wallMilliseconds: UInt64, at source: NodeAddress?, entries: [Entry], digest: Digest,
        held: HeldWrites, fingerprint: UInt64?, time: NodeTime
    ) -> [NodeEffect] {
        let address = answerer(peer, at: source)
        let pull = address.flatMap { pendingPulls.removeValue(forKey: $0) }
        let solicited = pull != nil
        counters.add(solicited ? .replicationPullsCompleted : .replicationDeltasReceived)
        var clock: [NodeEffect] = []
        if let pull, let address {
            clockOffsets.record(peer: peer, peerWallMilliseconds: wallMilliseconds, sentAt: pull.sentAt, at: time)
            clock = updateClockFence(at: time)
            recordRoundTrip(of: pull, to: address, at: time)
        }
        let out = clock + merged(
            replication.receivePullAnswer(
                entries: entries, digest: digest, held: held, fingerprint: fingerprint, from: peer,
                replyingTo: solicited ? address : nil,
                wallMilliseconds: time.wallMilliseconds,
                heldBack: treeDeliveryTime()),
            at: time)
        return solicited ? out + synced(at: time) + syncedForReadiness(with: peer, at: time) : out
    }

    /// `Replication.treeDeliveryTime` for the swarm as it is, kept while the member count and
    /// the network's round trip (to the millisecond) stay the same: every pull answer asks.
    mutating func treeDeliveryTime() -> Duration {
        let members = replicationPeers().count + 1
        let estimate = membership.roundTrips.network
        let network = UInt64(estimate?.smoothedMicroseconds ?? 0) / 1_000 << 32 | UInt64(estimate?.variationMicroseconds ?? 0) / 1_000
        if let cached = deliveryTimeCache, cached.members == members, cached.network == network { return cached.time }
        let time = Replication.treeDeliveryTime(members: members, roundTrips: membership.roundTrips, settings: replication.settings)
        deliveryTimeCache = (members, network, time)
        return time
    }

    /// The answer to `pull` arrived from `address`: a round-trip sample, unless the pull went
    /// to it more than once (Karn's rule: the answer could be to either).
    private mutating func recordRoundTrip(of pull: PendingPull, to address: NodeAddress, at time: NodeTime) {
        guard !pull.resent else { return }
        membership.roundTrips.record(time.now - pull.sentAt, to: address)
    }

    /// Where the answer of `peer` came from: the datagram's `source` when we pulled from it
    /// (right even when our view of its address is stale), else its member address.
    private func answerer(_ peer: String, at source: NodeAddress?) -> NodeAddress? {
        if let source, pendingPulls[source] != nil { return source }
        return membership.members[peer]?.address
    }

    /// Carries out what merging remote state asked for, queues the digest it advanced for
    /// saving, and completes the replica waits it satisfied.
    private mutating func merged(_ directives: [ReplicationDirective], at time: NodeTime) -> [NodeEffect] {
        var out = effects(of: directives, at: time)
        out += queueSave([], sequences: [:], digest: replication.store.digest)
        out += checkReplicaWaits(at: time)
        return out
    }

    /// A pull or a catch-up we asked for completed: the state is reconciled as of now (saved
    /// with everything it brought).
    private mutating func synced(at time: NodeTime) -> [NodeEffect] {
        lastSynced = time.wallMilliseconds
        guard local.durable else { return [] }
        return flushSaves() + [.store(.synced(atMilliseconds: time.wallMilliseconds))]
    }

    mutating func effects(of directives: [ReplicationDirective], at time: NodeTime) -> [NodeEffect] {
        var out: [NodeEffect] = []
        out.reserveCapacity(directives.count)
        for directive in directives {
            switch directive {
            case .push(let entries, let relay, let acknowledge, let after, let address):
                counters.add(.replicationPushesSent)
                let frame = ReplicationFrame.push(entries: entries, relay: relay, acknowledge: acknowledge, after: after)
                out.append(.send(.replication(frame), to: address))
            case .confirmRelay(let version, let address):
                counters.add(.replicationRelaysConfirmed)
                out.append(.send(.replication(.acknowledgement(from: name, versions: [version])), to: address))
            case .startRelayTimer(let delay):
                out.append(.startTimer(.relayRetry, after: delay))
            case .noAnswer(let peer):
                membership.roundTrips.noAnswer(from: peer)
            case .acknowledge(let versions, let writer):
                guard let member = membership.members[writer], member.state == .alive else { continue }
                counters.add(.replicationAcknowledgementsSent)
                out.append(.send(.replication(.acknowledgement(from: name, versions: versions)), to: member.address))
            case .pull(let address, let digest, let held):
                let lifetime = local.pendingPullLifetime
                if pendingPulls.values.contains(where: { time.now - $0.sentAt >= lifetime }) {
                    pendingPulls = pendingPulls.filter { time.now - $0.value.sentAt < lifetime }
                }
                // Asked again before it answered: the answer times neither ask (and the clock
                // sample keeps the first send, the larger error bound).
                if pendingPulls[address] != nil {
                    pendingPulls[address]!.resent = true
                } else {
                    pendingPulls[address] = PendingPull(sentAt: time.now)
                }
                counters.add(.replicationPullsSent)
                // Until the first sync, everything: reads then see every write acknowledged before.
                let request = ReplicationFrame.pullRequest(
                    from: name, digest: digest, held: held, fingerprint: replication.store.fingerprint,
                    complete: !readiness.isReady)
                out.append(.send(.replication(request), to: address))
            case .sendDelta(let entries, let digest, let address):
                counters.add(.replicationDeltasSent)
                let delta = ReplicationFrame.pullAnswer(
                    from: name, wallMilliseconds: time.wallMilliseconds, entries: entries, digest: digest, held: [:])
                out.append(.send(.replication(delta), to: address))
            case .sendPage(let page, let address):
                counters.add(.catchUpPagesSent)
                out.append(.send(.replication(.catchUpPage(page)), to: address))
            case .catchUp(let address, let digest, let held):
                out.append(.catchUp(.catchUpRequest(from: name, digest: digest, held: held), from: address))
            case .startPullRetryTimer(let delay):
                out.append(.startTimer(.pullRetry, after: delay))
            case .startAntiEntropyTimer(let delay):
                out.append(.startTimer(.antiEntropy, after: delay))
            case .applied(let entries):
                counters.add(.replicationEntriesApplied, entries.count)
                let sequences = recordChanges(entries.lazy.map(\.key))
                out.append(.changesRecorded)
                out += queueSave(entries, sequences: sequences, digest: [:])
            case .refused(let versions, let reason, let sender, let tellWriters):
                if counters.addPassingPowerOfTwo(.replicationEntriesRefused, versions.count) {
                    out.append(
                        .log(
                            NodeLog(
                                .warning, "refused entries from a peer", ["from": sender, "entries": "\(versions.count)",
                                    "reason": reason, "refused_so_far": "\(counters[.replicationEntriesRefused])"])))
                }
                guard tellWriters else { continue }
                for (writer, versions) in Dictionary(grouping: versions, by: \.writer.name) {
                    guard let member = membership.members[writer], member.state == .alive else { continue }
                    out.append(.send(.replication(.refusal(from: name, versions: versions, reason: reason)), to: member.address))
                }
            case .expired(let entries):
                counters.add(.valuesExpired, entries.count)
                out += touch(entries)
            case .forgot(let keys):
                counters.add(.tombstonesCollected, keys.count)
                changes.forgot(through: replication.store.forgottenThrough)
                if local.durable {
                    out += flushSaves()
                    out.append(.store(.forget(keys, compactedThrough: changes.compactedThrough)))
                }
            }
        }
        return out
    }

    // MARK: - Change log and saving

    /// Gives each changed key the next change-log sequence number.
    mutating func recordChanges(_ keys: some Sequence<String>) -> [String: UInt64] {
        var sequences: [String: UInt64] = [:]
        for key in keys {
            let sequence = changes.record(key)
            replication.store.setSequence(sequence, of: key)
            sequences[key] = sequence
        }
        if changes.needsCompaction(liveKeys: replication.store.entries.count) {
            let store = replication.store
            changes.compact { store.sequence(of: $0) }
        }
        return sequences
    }

    /// Records entries whose visibility changed without a write (expired, writer left or back).
    mutating func touch(_ entries: [Entry]) -> [NodeEffect] {
        guard !entries.isEmpty else { return [] }
        let sequences = recordChanges(entries.map(\.key))
        var out: [NodeEffect] = [.changesRecorded]
        if local.durable {
            out += flushSaves()
            out.append(.store(.touch(sequences)))
        }
        return out
    }

    /// Queues remote state for saving within `saveDelay`. Losing it in a crash loses nothing that
    /// matters: the writer has it durably and anti-entropy offers it again after a restart.
    mutating func queueSave(
        _ entries: [Entry], sequences: [String: UInt64], digest: Digest, after delay: Duration? = nil
    ) -> [NodeEffect] {
        guard local.durable, !(entries.isEmpty && digest.isEmpty) else { return [] }
        unsaved.add(entries, sequences: sequences, digest: digest)
        guard !saveTimerArmed else { return [] }
        saveTimerArmed = true
        return [.startTimer(.save, after: delay ?? local.saveDelay)]
    }

    /// Saves the queued remote state in one write (nothing when none is queued).
    public mutating func flushSaves() -> [NodeEffect] {
        guard !unsaved.isEmpty else { return [] }
        let batch = unsaved
        unsaved = SaveBatch()
        return [.store(batch.write)]
    }
}
