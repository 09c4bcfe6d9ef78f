import Logging
import RumorCore
import RumorWire

/// What the local API asks of the agent (`AgentControl`): reads come straight from the node,
/// commands go through it.
extension Agent {
    public func members() async -> [MemberSnapshot] {
        let time = time
        let membership = node.membership
        return membership.members.values
            .sorted { $0.name < $1.name }
            .map { member in
                let isLocal = member.name == membership.localName
                return Self.snapshot(
                    member, clockOffset: node.clockOffsets.offset(of: member.name, at: time),
                    coordinate: membership.coordinate(of: member.name),
                    rtt: isLocal ? (membership.coordinates == nil ? nil : Duration.zero)
                        : membership.estimatedRoundTrip(from: membership.localName, to: member.name))
            }
    }

    static func snapshot(
        _ member: Member, clockOffset: ClockOffsets.Offset? = nil, coordinate: NetworkCoordinate? = nil, rtt: Duration? = nil
    ) -> MemberSnapshot {
        MemberSnapshot(
            name: member.name, address: member.address.description, state: member.state.description,
            incarnation: member.incarnation, tags: NodeTags.decode(member.meta) ?? [:],
            protocolVersion: member.versions.protocolCurrent, clockOffset: clockOffset, coordinate: coordinate, rtt: rtt)
    }

    public func coordinate(of name: String?) async throws -> NodeCoordinateSnapshot {
        let name = name ?? node.membership.localName
        return NodeCoordinateSnapshot(node: name, coordinate: CoordinateSnapshot(try knownCoordinate(of: name)))
    }

    public func roundTrip(from: String, to: String?) async throws -> RoundTripEstimate {
        let to = to ?? node.membership.localName
        let first = try knownCoordinate(of: from)
        let second = try knownCoordinate(of: to)
        guard first.isCompatible(with: second) else {
            throw AgentError(
                code: .noCoordinate, message: "the coordinates of \(from) and \(to) have different dimensionalities",
                hint: "every node of a swarm must use the same Vivaldi settings (Serf's: 8 dimensions)")
        }
        return RoundTripEstimate(from: from, to: to, rtt: first.distance(to: second))
    }

    /// The coordinate of member `name`, or the error saying why there is none.
    private func knownCoordinate(of name: String) throws(AgentError) -> NetworkCoordinate {
        let membership = node.membership
        guard membership.members[name] != nil else {
            throw AgentError(code: .unknownNode, message: "no member is named '\(name)'", hint: "list members with `rumor members`")
        }
        guard membership.coordinates != nil else {
            throw AgentError(
                code: .noCoordinate, message: "this agent keeps no network coordinates",
                hint: "the agent runs with --disable-coordinates (disable_coordinates = true); start it without to estimate round trips")
        }
        guard let coordinate = membership.coordinate(of: name) else {
            throw AgentError(
                code: .noCoordinate, message: "no network coordinate is known for '\(name)' yet",
                hint: "a coordinate arrives with the member's first ack to this node's probes (about one probe interval per member); plain memberlist nodes, and agents run with --disable-coordinates, send none")
        }
        return coordinate
    }

    public func sendEvent(name: String, payload: [UInt8], coalesce: Bool, nodes: [String]?) async throws -> UserEventSnapshot {
        do {
            let (event, effects) = try node.sendEvent(name: name, payload: payload, coalesce: coalesce, targets: nodes)
            counters.add("user_events_sent")
            execute(effects)
            return UserEventSnapshot(event)
        } catch {
            throw AgentError(error)
        }
    }

    public nonisolated func monitor(level: String) async throws -> AsyncStream<String> {
        guard let level = Logger.Level(rawValue: level.lowercased()) else {
            throw AgentError(
                code: .badRequest, message: "unknown log level '\(level)'", hint: "use trace, debug, info, notice, warning or error")
        }
        guard let logMonitor else {
            throw AgentError(code: .badRequest, message: "this agent's log is not monitored", hint: "run the agent with `rumor agent`")
        }
        return logMonitor.lines(from: level)
    }

    public func events() async -> AsyncStream<UserEventSnapshot> {
        let (id, stream, continuation) = eventHub.open()
        continuation.onTermination = { [weak self] _ in Task { await self?.closeEvents(id) } }
        return stream
    }

    private func closeEvents(_ id: Int) {
        eventHub.close(id)
    }

    public func updateTags(set: [String: String], delete: [String]) async throws -> MemberSnapshot {
        var tags = node.tags
        for key in Node.reservedTagKeys { tags[key] = nil }
        for key in delete { tags[key] = nil }
        tags.merge(set) { $1 }
        do {
            execute(try node.setTags(tags, at: time))
        } catch {
            throw AgentError(error)
        }
        logger.info("tags changed", metadata: ["tags": "\(tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))"])
        return Self.snapshot(node.membership.localMember)
    }

    public func info() async -> AgentInfo {
        var counts = ["alive": 0, "suspect": 0, "dead": 0, "left": 0]
        for member in node.membership.members.values {
            counts[member.state.description, default: 0] += 1
        }
        return AgentInfo(
            name: configuration.name, address: advertised.description, swarm: configuration.swarm, members: counts,
            healthScore: node.membership.healthScore, incarnation: node.membership.localMember.incarnation,
            left: node.leaveCompleted, uptimeSeconds: Double(time.now.nanoseconds) / 1e9,
            encryption: codec.encryptionMode,
            counters: counters.values.merging(node.counters.values) { $0 + $1 }.merging(handlers?.counts.withLockedValue { $0 } ?? [:]) { $0 + $1 },
            clock: ClockSnapshot(node.clockVerdict(at: time)))
    }

    public func join(_ seeds: [String]) async throws -> Int {
        guard let transport else {
            throw AgentError(code: .left, message: "the agent is not running", hint: "start the agent")
        }
        var addresses: [NodeAddress] = []
        for seed in seeds {
            addresses += try await transport.resolveSeed(seed)
        }
        switch await command({ node, id, time in node.join(seeds: addresses, command: id, at: time) }) {
        case .joined(let contacted): return contacted
        case .failed(let error): throw AgentError(error)
        default: return 0
        }
    }

    public func leave() async throws {
        if case .failed(let error) = await command({ node, id, time in node.leave(command: id, at: time) }) {
            throw AgentError(error)
        }
    }

    public func put(
        key: String, value: [UInt8], timeToLive: Duration?, ephemeral: Bool, replicas: ReplicaTarget?, timeout: Duration
    ) async throws -> EntrySnapshot {
        let started = ContinuousClock.now
        defer { metrics.putSeconds.record(ContinuousClock.now - started) }
        let write = Replication.Write(key: key, value: value, timeToLive: timeToLive, ephemeral: ephemeral)
        return try await written(write, replicas: replicas, timeout: timeout, started: started)
    }

    public func delete(key: String, replicas: ReplicaTarget?, timeout: Duration) async throws -> EntrySnapshot {
        try await written(Replication.Write(key: key, value: nil), replicas: replicas, timeout: timeout, started: ContinuousClock.now)
    }

    /// Makes one write, waiting for `replicas` if asked.
    private func written(_ write: Replication.Write, replicas: ReplicaTarget?, timeout: Duration, started: ContinuousClock.Instant)
        async throws -> EntrySnapshot
    {
        let (entries, result) = try await self.write([write], awaiting: replicas.map { ($0, timeout) })
        var snapshot = EntrySnapshot(entries[0])
        switch result {
        case .replicated(let holders):
            snapshot.replicas = [configuration.name] + holders
            metrics.waitSeconds.record(ContinuousClock.now - started)
        case .failed(let error): throw AgentError(error)
        default: break
        }
        return snapshot
    }

    public func putBatch(_ writes: [Replication.Write]) async throws -> Int {
        try await write(writes).entries.count
    }

    public func get(key: String) async -> EntrySnapshot? {
        node.read(key, at: time).flatMap { withValues([$0]).first }.map(EntrySnapshot.init)
    }

    public func metricsText() async -> String {
        metrics.scrape(info: await info(), status: await status(), members: await members())
    }

    /// Per live replicating peer, how the states compared at the last exchange.
    private func peerSyncStatus(wallMilliseconds wall: UInt64) -> [String: PeerSyncStatus] {
        var peers: [String: PeerSyncStatus] = [:]
        for member in node.replicationMembers() {
            let ago = { (at: UInt64) in wall > at ? wall - at : 0 }
            peers[member.name] =
                switch node.replication.peerSync[member.name] {
                case .inSync(let at): PeerSyncStatus(state: .inSync, millisecondsAgo: ago(at))
                case .differs(let lacks, let at) where lacks > 0: PeerSyncStatus(state: .behind, versions: lacks, millisecondsAgo: ago(at))
                case .differs(_, let at): PeerSyncStatus(state: .ahead, millisecondsAgo: ago(at))
                case nil: PeerSyncStatus(state: .neverSynced)
                }
        }
        return peers
    }

    public func status() async -> StateStatus {
        let (values, tombstones) = node.replication.store.counts
        let wall = time.wallMilliseconds
        return StateStatus(
            values: values, tombstones: tombstones,
            digest: Dictionary(node.replication.store.digest.map { ("\($0.key)", $0.value.description) }, uniquingKeysWith: { $1 }),
            lastSyncedMillisecondsAgo: node.lastSynced.map { wall > $0 ? wall - $0 : 0 }, durable: storage != nil,
            seq: node.changes.last, peers: peerSyncStatus(wallMilliseconds: wall),
            catchUp: node.replication.catchUp.map { progress in
                CatchUpStatus(
                    peer: "\(progress.peer)", pages: progress.pages, receivedEntries: progress.receivedEntries,
                    receivedBytes: progress.receivedBytes, remainingEntries: progress.remainingEntries,
                    remainingBytes: progress.remainingBytes,
                    elapsedSeconds: Double(wall > progress.startedAtMilliseconds ? wall - progress.startedAtMilliseconds : 0) / 1000)
            })
    }

    public func list(prefix: String) async -> EntryList {
        let entries = withValues(node.replication.list(prefix: prefix, wallMilliseconds: time.wallMilliseconds)).map { entry in
            var snapshot = EntrySnapshot(entry)
            snapshot.seq = node.replication.store.sequence(of: entry.key)
            return snapshot
        }
        return EntryList(entries: entries, seq: node.changes.last, epoch: changeLogEpoch)
    }

    // MARK: - Watching

    public func watch(prefix: String, from: UInt64?, epoch: String?) async throws -> WatchOpening {
        if let epoch, epoch != changeLogEpoch, from != nil {
            throw AgentError(
                code: .watchEpochChanged,
                message: "this agent's change log is a new one (epoch \(changeLogEpoch), not \(epoch)): it restarted without its log (no --data-dir, or after a crash), so seq \(from ?? 0) names no change here",
                hint: "watch from 0 and skip the keys whose version (timestamp, origin) and change you already processed; `rumor watch` does this itself when it reconnects")
        }
        let start: UInt64
        do {
            start = try node.watchStart(from: from)
        } catch {
            throw AgentError(error)
        }
        let (id, wakeups, wake) = watches.open()
        wake.onTermination = { [weak self] _ in Task { await self?.closeWatch(id) } }
        counters.add("watches_opened")
        let session = WatchSession(
            agent: self, prefix: prefix, cursor: start, replayingThrough: start == 0 ? node.changes.compactedThrough : 0, wakeups: wakeups)
        return WatchOpening(
            epoch: changeLogEpoch, position: node.changes.last, changes: AsyncThrowingStream { try await session.next() })
    }

    public func endWatches() async {
        watches.endAll()
    }

    private func closeWatch(_ id: Int) {
        watches.close(id)
    }

    /// The latest changes after `sequence` under `prefix` (a bounded batch), as watchers see
    /// them, and the sequence number to continue from.
    func watchBatch(after sequence: UInt64, prefix: String, replaying: Bool) throws -> (changes: [EntrySnapshot], through: UInt64) {
        let batch: (changes: [Node.WatchedChange], through: UInt64)
        do {
            batch = try node.watchBatch(after: sequence, prefix: prefix, replaying: replaying, at: time)
        } catch {
            throw AgentError(error)
        }
        // Only puts show a value: load those (the rest read as deleted).
        let loaded = Dictionary(
            withValues(batch.changes.filter { $0.kind == .put }.map(\.entry)).map { ($0.key, $0) }, uniquingKeysWith: { $1 })
        let snapshots = batch.changes.map { change in
            var snapshot = EntrySnapshot(change.entry.isValueOnDisk ? loaded[change.entry.key] ?? change.entry : change.entry)
            snapshot.seq = change.sequence
            snapshot.change = change.kind.rawValue
            snapshot.epoch = changeLogEpoch
            if change.kind != .put {
                snapshot.value = nil
                snapshot.valueBase64 = nil
                snapshot.deleted = true
            }
            return snapshot
        }
        return (snapshots, batch.through)
    }
}
