import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RumorCore
import RumorWire
import ServiceLifecycle

/// A running Rumor node: drives the pure `Membership` machine over real UDP and TCP sockets.
///
/// The actor is the single owner of the membership state. Datagrams and timer expiries arrive
/// through one ordered event stream consumed by `run()`; stream requests and API calls enter
/// through actor methods. Every directive the machine returns is carried out here.
public actor Agent: Service, AgentControl {
    public nonisolated let configuration: AgentConfiguration
    private let logger: Logger
    private let group: EventLoopGroup
    private var packetCodec: PacketCodec
    /// The stream codec, read by the TCP listener's event loops too (so a keyring change
    /// reaches connections being decoded); written only by this actor.
    private let streamCodecBox: NIOLockedValueBox<StreamCodec>
    private var streamCodec: StreamCodec { streamCodecBox.withLockedValue { $0 } }
    /// Where the keyring is saved after each change; nil keeps it in memory.
    private let keyringPath: String?
    /// Where others reach this node; its port is fixed once the sockets are bound.
    public private(set) var advertised: NodeAddress
    private let seed = UInt64.random(in: .min ... .max)
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant

    private var membership: Membership
    private var replication: Replication
    /// The order keys changed here, for watchers (`watch`); saved with the entries.
    private var changes: ChangeLog
    /// Wakes each open watch when the change log grows, by watch id.
    private var watchWakeups: [Int: AsyncStream<Void>.Continuation] = [:]
    private var nextWatch = 0
    private var watchesEnded = false
    /// The durable copy of the key-value state; nil when running in memory (no --data-dir).
    private let storage: EntryStorage?
    /// Replicated state applied but not yet saved: committed together, a few milliseconds
    /// later, so that a burst of pushes costs one transaction rather than one each.
    private var unsaved = UnsavedState()
    private var saveScheduled = false
    /// When the state was last reconciled with a peer (wall milliseconds).
    private var lastSynced: UInt64?
    private var packets: PacketTransport?
    private var listener: StreamListener?
    private var counters = AgentCounters()
    private var leaveWaiters: [CheckedContinuation<Void, Never>] = []
    private var leaveCompleted = false
    private var stopped = false
    /// Per sending host, push-pull state exchanges it may ask of us (each costs a full state
    /// encode and merge): 16 at once, then 8 per second.
    private var pushPullLimiter = RateLimiter(burst: 16, perSecond: 8)
    /// Per sending node, anti-entropy pulls it may ask of us (each costs a digest comparison
    /// and possibly a large answer): 10 at once, then 5 per second (a node pulls about once a
    /// second, plus retries).
    private var pullLimiter = RateLimiter(burst: 10, perSecond: 5)
    /// Peers already warned about, by drop reason (foreign swarm, wrong key…): one line each.
    private var dropWarnings: Set<String> = []
    /// When the UDP socket's rebinding was last logged, and how many rebinds since went unlogged
    /// (a partition can close it hundreds of times a second; the counter has them all).
    private var udpReopenLogged: (at: Instant, since: Int)?
    /// Anti-entropy pulls sent and not yet answered, by peer address, with when they were sent.
    private var pendingPulls: [NodeAddress: Instant] = [:]
    /// The pull-retry timer, cancelled when the pull is answered (an idle node then wakes once
    /// per anti-entropy round, not twice).
    private var pullRetryTimer: Scheduled<Void>?
    /// Puts waiting until enough nodes hold their write (`put --wait`), by id.
    private var replicaWaits: [Int: ReplicaWait] = [:]
    private var nextReplicaWait = 0
    private var replicaWaitTicking = false

    private struct ReplicaWait {
        var entries: [Entry]
        var target: ReplicaTarget
        var timeout: Duration
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<[String], any Error>
    }

    private let events: AsyncStream<Event>
    private let eventSink: AsyncStream<Event>.Continuation

    private enum Event: Sendable {
        case packet([UInt8], SocketAddress)
        case timer(MembershipTimer)
        case antiEntropy
        case pullRetry
    }

    /// Largest stream message accepted (memberlist's `maxPushStateBytes`).
    static let maximumStreamBytes = 20 << 20

    /// Validates the configuration (`AgentConfiguration.validate()`) and prepares the node;
    /// sockets open in `run()`.
    /// - Throws: `AgentError` (`bad_config`, `bad_address`, …) describing the first problem.
    public init(configuration: AgentConfiguration, logger: Logger) throws {
        try configuration.validate()
        if let directory = configuration.dataDirectory {
            try Self.prepareDataDirectory(directory)
        }
        var configuration = configuration
        let keyringPath = configuration.keyringFile ?? configuration.dataDirectory.map { $0 + "/keyring.json" }
        let keyring = try Self.loadKeyring(configuration, path: keyringPath, logger: logger)
        try configuration.validate(encryptionEnabled: keyring.isEnabled)
        if keyring.isEnabled {
            // Leave room for the encryption header and tag in every gossip packet.
            configuration.membership.packetBudget -= GossipCipher.overhead
            configuration.replication.packetPushBytes -= GossipCipher.overhead
        }
        self.keyringPath = keyringPath
        self.configuration = configuration
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup.singleton
        let compression = configuration.membership.enableCompression
        var packetCodec = PacketCodec(label: configuration.swarm, keyring: keyring, compression: compression)
        var streamCodec = StreamCodec(
            label: configuration.swarm, keyring: keyring, compression: compression, maximumMessageSize: Self.maximumStreamBytes)
        packetCodec.verifyIncoming = configuration.encryptionVerifiesIncoming
        packetCodec.verifyOutgoing = configuration.encryptionVerifiesOutgoing
        streamCodec.verifyIncoming = configuration.encryptionVerifiesIncoming
        streamCodec.verifyOutgoing = configuration.encryptionVerifiesOutgoing
        self.packetCodec = packetCodec
        self.streamCodecBox = NIOLockedValueBox(streamCodec)
        self.advertised = try Self.advertisedAddress(for: configuration)
        self.origin = clock.now
        self.membership = Membership(
            name: configuration.name, address: advertised, meta: configuration.advertisedMeta,
            settings: configuration.membership, seed: seed, now: .zero)
        if let directory = configuration.dataDirectory {
            let storage = try EntryStorage(directory: directory)
            var saved: EntryStorage.Saved
            var lastSynced: UInt64?
            do {
                saved = try storage.load()
                lastSynced = try storage.lastSynced()
            } catch {
                throw AgentError(
                    code: .storageFailed, message: "cannot read the saved state in \(directory): \(error)",
                    hint: "move the damaged state.sqlite away to start empty; peers will resend the data")
            }
            let probe = Replication(localName: configuration.name, settings: configuration.replication, seed: 0)
            let wall = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
            if let synced = lastSynced, probe.isStale(lastSyncedMilliseconds: synced, wallMilliseconds: wall) {
                // Tombstones this state never saw may be forgotten by now: merging it could bring
                // deleted keys back. Start empty and let anti-entropy resend the live state.
                logger.warning(
                    "saved state is older than the tombstone grace period; discarding it and resyncing",
                    metadata: ["lastSyncedSecondsAgo": "\((wall - synced) / 1000)", "keys": "\(saved.store.entries.count)"])
                saved.changes.reset()
                try storage.reset(compactedThrough: saved.changes.compactedThrough)
                saved.store = KeyValueStore()
                lastSynced = nil
            }
            self.storage = storage
            self.lastSynced = lastSynced
            self.changes = saved.changes
            self.replication = Replication(
                localName: configuration.name, settings: configuration.replication, seed: seed &+ 1, restoring: saved.store)
        } else {
            self.storage = nil
            self.changes = ChangeLog()
            self.replication = Replication(localName: configuration.name, settings: configuration.replication, seed: seed &+ 1)
        }
        (self.events, self.eventSink) = AsyncStream.makeStream(of: Event.self)
    }

    // MARK: - Service

    /// Opens the sockets, joins the seeds, and runs until graceful shutdown, which leaves the
    /// swarm (bounded) before returning.
    public func run() async throws {
        try await openSockets()
        logger.info(
            "rumor agent started",
            metadata: [
                "name": "\(configuration.name)", "address": "\(advertised)",
                "swarm": "\(configuration.swarm.isEmpty ? "-" : configuration.swarm)",
            ])
        execute(membership.start(now: now))
        execute(replication.start())
        if !configuration.seeds.isEmpty {
            Task { await self.joinAtStart() }
        }
        let events = self.events
        await withGracefulShutdownHandler {
            for await event in events {
                self.handle(event)
            }
        } onGracefulShutdown: {
            Task { await self.shutdown() }
        }
        // Cancelled without a graceful shutdown: stop at once, like a crash, but free the ports.
        await closeSockets()
    }

    private func closeSockets() async {
        stopped = true
        saveUnsaved()
        finishWatches()
        await packets?.close()
        await listener?.close()
        eventSink.finish()
    }

    private func openSockets() async throws {
        let sink = eventSink
        do {
            let packets = try await PacketTransport.bind(
                host: configuration.bindHost, port: configuration.bindPort, group: group,
                onReopen: { [weak self] error in Task { await self?.udpReopened(after: error) } }
            ) { bytes, sender in
                sink.yield(.packet(bytes, sender))
            }
            self.packets = packets
            // Port 0 asks the system for a free port; TCP then takes the same one.
            let port = packets.localAddress?.port ?? configuration.bindPort
            if configuration.bindPort == 0, configuration.advertisePort == nil, let port16 = UInt16(exactly: port) {
                advertised.port = port16
                membership = Membership(
                    name: configuration.name, address: advertised, meta: configuration.advertisedMeta,
                    settings: configuration.membership, seed: seed, now: now)
            }
            let codecBox = streamCodecBox
            listener = try await StreamListener.bind(
                host: configuration.bindHost, port: port, group: group,
                timeout: .nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped),
                maximumBytes: Self.maximumStreamBytes,
                decode: { bytes in try codecBox.withLockedValue { $0 }.decode(bytes) },
                onRequest: { [weak self] request, peer in await self?.answer(request, from: peer) },
                onFailure: { [weak self] error, peer in Task { await self?.streamFailed(error, from: peer) } })
        } catch {
            await packets?.close()
            throw AgentError(
                code: .bindFailed,
                message: "cannot bind \(configuration.bindHost):\(configuration.bindPort): \(error)",
                hint: "is another agent using this port? pick another with --bind HOST:PORT")
        }
    }

    /// Leaves gracefully (if not already), closes the sockets and ends `run()`.
    private func shutdown() async {
        guard !stopped else { return }
        if !membership.hasLeft {
            try? await leave()
        }
        await closeSockets()
        logger.info("rumor agent stopped")
    }

    private func joinAtStart() async {
        var delay = Duration.seconds(1)
        while !stopped, !membership.hasLeft {
            let contacted = (try? await join(configuration.seeds)) ?? 0
            if contacted > 0 { return }
            logger.warning("no seed answered; retrying", metadata: ["seeds": "\(configuration.seeds)", "in": "\(delay)"])
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(30))
        }
    }

    // MARK: - AgentControl

    public func members() async -> [MemberSnapshot] {
        membership.members.values
            .sorted { $0.name < $1.name }
            .map { member in
                MemberSnapshot(
                    name: member.name, address: member.address.description, state: member.state.description,
                    incarnation: member.incarnation, meta: String(decoding: member.meta, as: UTF8.self),
                    protocolVersion: member.versions.protocolCurrent)
            }
    }

    public func info() async -> AgentInfo {
        var counts = ["alive": 0, "suspect": 0, "dead": 0, "left": 0]
        for member in membership.members.values {
            counts[member.state.description, default: 0] += 1
        }
        return AgentInfo(
            name: configuration.name, address: advertised.description, swarm: configuration.swarm, members: counts,
            healthScore: membership.healthScore, incarnation: membership.localMember.incarnation,
            left: leaveCompleted, uptimeSeconds: Double((clock.now - origin).nanosecondsClamped) / 1e9,
            encryption: encryptionMode, counters: counters.values)
    }

    /// `off`, `on`, or the step of a move to encryption this node is in (see `AgentInfo.encryption`).
    private var encryptionMode: String {
        if !packetCodec.keyring.isEnabled { return "off" }
        if !packetCodec.verifyOutgoing { return "sending-plaintext" }
        if !packetCodec.verifyIncoming { return "accepting-plaintext" }
        return "on"
    }

    public func join(_ seeds: [String]) async throws -> Int {
        guard !membership.hasLeft else {
            throw AgentError(
                code: .left, message: "this node has left the swarm", hint: "restart the agent to rejoin")
        }
        var addresses: [NodeAddress] = []
        for seed in seeds {
            addresses.append(try NodeAddress.resolve(seed, defaultPort: 7946))
        }
        let directives = membership.join(seeds: addresses, now: now)
        let contacted = await withTaskGroup(of: Bool.self) { group in
            for directive in directives {
                guard case .pushPull(let address, let state) = directive else { continue }
                group.addTask { await self.pushPull(with: address, state: state) }
            }
            var count = 0
            for await answered in group where answered { count += 1 }
            return count
        }
        guard contacted > 0 else {
            throw AgentError(
                code: .joinFailed, message: "none of \(seeds.joined(separator: ", ")) answered",
                hint: "check that an agent runs there, with the same --swarm name")
        }
        logger.info("joined", metadata: ["seeds": "\(seeds)", "contacted": "\(contacted)"])
        return contacted
    }

    public func leave() async throws {
        if !membership.hasLeft {
            logger.info("leaving the swarm")
            execute(membership.leave(now: now))
        }
        guard !leaveCompleted else { return }
        // Wait for the announcement to be gossiped, at most a few gossip rounds' worth.
        let limit = max(Duration.seconds(3), configuration.membership.gossipInterval * 10)
        let timeout = Task {
            try? await Task.sleep(for: limit)
            self.completeLeave()
        }
        await withCheckedContinuation { continuation in
            if leaveCompleted {
                continuation.resume()
            } else {
                leaveWaiters.append(continuation)
            }
        }
        timeout.cancel()
    }

    private func completeLeave() {
        leaveCompleted = true
        let waiters = leaveWaiters
        leaveWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    // MARK: - Events

    private var now: Instant {
        Instant(nanoseconds: (clock.now - origin).nanosecondsClamped)
    }

    private func handle(_ event: Event) {
        switch event {
        case .packet(let bytes, let sender):
            receivePacket(bytes, from: sender)
        case .timer(let timer):
            guard !stopped else { return }
            execute(membership.timerFired(timer, now: now))
        case .antiEntropy:
            guard !stopped else { return }
            execute(replication.antiEntropyTimerFired(peers: replicationPeers, wallMilliseconds: wallMilliseconds))
        case .pullRetry:
            guard !stopped else { return }
            execute(replication.pullRetryTimerFired(peers: replicationPeers))
        }
    }

    private func receivePacket(_ bytes: [UInt8], from sender: SocketAddress) {
        counters.add("packets_received")
        counters.add("bytes_received", UInt64(bytes.count))
        guard let from = NodeAddress(sender) else { return }
        let decoded: DecodedPacket
        do {
            decoded = try packetCodec.decode(bytes)
        } catch {
            dropped(error, from: sender)
            return
        }
        if decoded.truncatedParts > 0 { counters.add("dropped_truncated_parts", UInt64(decoded.truncatedParts)) }
        let timestamp = now
        for message in decoded.messages {
            execute(membership.receive(message, from: from, now: timestamp))
        }
    }

    /// Answers one stream request; returns the encoded reply.
    private func answer(_ request: StreamMessage, from peer: SocketAddress?) -> [UInt8]? {
        counters.add("streams_received")
        switch request {
        case .pushPull(let remote):
            guard let from = peer.flatMap(NodeAddress.init) else { return nil }
            guard pushPullLimiter.allow(peer?.ipAddress ?? "?", now: now) else {
                counters.add("rate_limited_push_pull")
                return nil
            }
            let (reply, directives) = membership.receivePushPull(remote, from: from, now: now)
            execute(directives)
            return streamCodec.encode(.pushPull(reply))
        case .ping(let ping):
            guard ping.target.isEmpty || ping.target == configuration.name else {
                return streamCodec.encode(.error("ping for \(ping.target) reached \(configuration.name)"))
            }
            return streamCodec.encode(.ack(Ack(sequenceNumber: ping.sequenceNumber)))
        case .user(let payload):
            guard let from = peer.flatMap(NodeAddress.init) else { return nil }
            if ReplicationCodec.isFrame(payload) {
                return answerReplication(payload, from: from, viaStream: true)
            }
            if KeyringCodec.isFrame(payload) {
                return answerKeyring(payload, from: from)
            }
            execute(membership.receive(.user(payload), from: from, now: now))
            return nil
        case .ack, .error:
            return nil
        }
    }

    private func udpReopened(after error: any Error) {
        counters.add("udp_socket_reopened")
        if let logged = udpReopenLogged, now - logged.at < .seconds(10) {
            udpReopenLogged?.since += 1
            return
        }
        logger.warning(
            "the gossip UDP socket closed on a send error and was bound again (a firewall rule refusing sends?)",
            metadata: ["error": "\(error)", "times_since_last_logged": "\((udpReopenLogged?.since ?? 0) + 1)"])
        udpReopenLogged = (now, 0)
    }

    /// For tests: makes the UDP socket close as a fatal send error would.
    func simulateUDPFailure() async {
        await packets?.simulateFatalError()
    }

    private func streamFailed(_ error: Error, from peer: SocketAddress?) {
        if let wireError = error as? WireError {
            dropped(wireError, from: peer)
        } else {
            counters.add("streams_failed")
            logger.debug("stream failed", metadata: ["peer": "\(peer.map { "\($0)" } ?? "?")", "error": "\(error)"])
        }
    }

    private func dropped(_ error: Error, from peer: SocketAddress?) {
        let reason = (error as? WireError).map(dropReason) ?? "malformed"
        counters.add("dropped_\(reason)")
        Counter(label: "rumor_packets_dropped", dimensions: [("reason", reason)]).increment()
        let peerText = peer.map { "\($0)" } ?? "?"
        let warnings = [
            "label": "ignoring packets from another swarm",
            "decrypt": "ignoring traffic no installed key decrypts (wrong key?)",
            "not_encrypted": "ignoring unencrypted traffic (this swarm is encrypted)",
            "encrypted": "ignoring encrypted traffic (this node has no keyring; start it with --encrypt)",
        ]
        if let warning = warnings[reason] {
            // Once per peer and reason: a foreign swarm or a misconfigured node would otherwise
            // flood the log. The counters keep counting.
            let host = peer?.ipAddress ?? peerText
            if dropWarnings.insert("\(reason) \(host)").inserted {
                logger.warning(
                    "\(warning)", metadata: ["peer": "\(peerText)", "swarm": "\(configuration.swarm)", "error": "\(error)"])
            }
        } else {
            logger.debug("dropped malformed input", metadata: ["peer": "\(peerText)", "error": "\(error)"])
        }
    }

    // MARK: - Directives

    private func execute(_ directives: [MembershipDirective]) {
        for directive in directives {
            switch directive {
            case .send(let address, let messages, let checksum):
                guard let target = address.socketAddress, let packets, !stopped else { continue }
                let bytes = packetCodec.encode(messages, checksum: checksum)
                packets.send(bytes, to: target)
                counters.add("packets_sent")
                counters.add("bytes_sent", UInt64(bytes.count))
            case .startTimer(let timer, let delay):
                let sink = eventSink
                group.next().scheduleTask(in: .nanoseconds(max(0, delay.nanosecondsClamped))) {
                    sink.yield(.timer(timer))
                }
            case .pushPull(let address, let state):
                Task { await self.pushPull(with: address, state: state) }
            case .streamPing(let address, let ping, let deadline):
                Task { await self.streamPing(ping, to: address, deadline: deadline) }
            case .deliver(let payload, let sender):
                counters.add("user_messages_received")
                if ReplicationCodec.isFrame(payload) { _ = answerReplication(payload, from: sender, viaStream: false) }
            case .event(let event):
                report(event)
            case .conflict(let existing, let claimed):
                counters.add("name_conflicts")
                logger.warning(
                    "name conflict: another node claims a known name",
                    metadata: [
                        "name": "\(existing.name)", "known": "\(existing.address)", "claimed": "\(claimed.address)",
                    ])
            case .leaveCompleted:
                completeLeave()
            }
        }
    }

    /// Runs one push-pull exchange; returns whether the peer answered.
    private func pushPull(with address: NodeAddress, state: PushPull) async -> Bool {
        guard let target = address.socketAddress else { return false }
        let codec = streamCodec
        do {
            let answer = try await StreamClient.exchange(
                codec.encode(.pushPull(state)), with: target, group: group,
                timeout: .nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped),
                maximumBytes: Self.maximumStreamBytes, decode: { try codec.decode($0) })
            guard case .pushPull(let remote) = answer else {
                counters.add("push_pull_failed")
                return false
            }
            counters.add("push_pull_completed")
            execute(membership.receivePushPullReply(remote, from: address, now: now))
            return true
        } catch {
            counters.add("push_pull_failed")
            if let wireError = error as? WireError { dropped(wireError, from: target) }
            logger.debug("push-pull failed", metadata: ["peer": "\(address)", "error": "\(error)"])
            return false
        }
    }

    private func streamPing(_ ping: Ping, to address: NodeAddress, deadline: Instant) async {
        guard let target = address.socketAddress else { return }
        let remaining = deadline - now
        guard remaining > .zero else { return }
        let codec = streamCodec
        let contacted: Bool
        do {
            let answer = try await StreamClient.exchange(
                codec.encode(.ping(ping)), with: target, group: group,
                timeout: .nanoseconds(remaining.nanosecondsClamped), maximumBytes: 1 << 16,
                decode: { try codec.decode($0) })
            if case .ack(let ack) = answer, ack.sequenceNumber == ping.sequenceNumber {
                contacted = true
            } else {
                contacted = false
            }
        } catch {
            contacted = false
        }
        membership.streamPingFinished(sequence: ping.sequenceNumber, contacted: contacted, now: now)
    }

    private func report(_ event: MemberEvent) {
        let member = event.member
        let visibilityChanged: [Entry]
        switch event.kind {
        case .failed, .left: visibilityChanged = replication.writer(member.name, isLive: false)
        case .joined, .recovered: visibilityChanged = replication.writer(member.name, isLive: true)
        case .updated, .suspected, .reaped: visibilityChanged = []
        }
        touch(visibilityChanged)
        counters.add("member_events_\(event.kind.rawValue)")
        Counter(label: "rumor_member_events", dimensions: [("kind", event.kind.rawValue)]).increment()
        let metadata: Logger.Metadata = [
            "member": "\(member.name)", "address": "\(member.address)", "incarnation": "\(member.incarnation)",
        ]
        switch event.kind {
        case .joined: logger.info("member joined", metadata: metadata)
        case .updated: logger.info("member updated", metadata: metadata)
        case .suspected: logger.info("member suspected", metadata: metadata)
        case .recovered: logger.info("member recovered", metadata: metadata)
        case .failed: logger.warning("member failed", metadata: metadata)
        case .left: logger.info("member left", metadata: metadata)
        case .reaped: logger.debug("member reaped", metadata: metadata)
        }
    }

    // MARK: - Replication

    /// Addresses of the live members that replicate the key-value state.
    private var replicationPeers: [NodeAddress] {
        replicationMembers().map(\.address)
    }

    private var wallMilliseconds: UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }

    /// Handles a replication frame from `sender`; returns the encoded stream reply, if any.
    /// `sender` is where a datagram came from (the peer's gossip socket), or the client end of
    /// a stream (an ephemeral port: replies then go to the member's advertised address).
    private func answerReplication(_ payload: [UInt8], from sender: NodeAddress, viaStream: Bool) -> [UInt8]? {
        let frame: ReplicationFrame
        do {
            frame = try ReplicationCodec.decode(payload)
        } catch {
            dropped(error, from: sender.socketAddress)
            return nil
        }
        switch frame {
        case .push(let entries, let hops, let acknowledge, let after):
            counters.add("replication_pushes_received")
            execute(
                replication.receivePush(
                    entries, hops: hops, acknowledge: acknowledge, after: after, from: sender,
                    wallMilliseconds: wallMilliseconds, peers: replicationPeers))
            return nil
        case .pullRequest(let peer, let digest, let held):
            guard pullLimiter.allow(sender.description, now: now) else {
                counters.add("rate_limited_pull")
                return nil
            }
            counters.add("replication_pulls_answered")
            let answer = replication.answerPull(digest: digest, held: held, from: peer)
            checkReplicaWaits()
            // A datagram's source is the requester's socket, right even when our view of its
            // address is stale (it restarted on a new port).
            let replyTo = viaStream ? membership.members[peer]?.address ?? sender : sender
            send(
                .pullAnswer(from: configuration.name, entries: answer.entries, digest: answer.digest, held: answer.held),
                to: replyTo)
            return nil
        case .acknowledgement(let peer, let versions):
            counters.add("replication_acknowledgements_received")
            replication.receiveAcknowledgement(versions, from: peer)
            checkReplicaWaits()
            return nil
        case .pullAnswer(let peer, let entries, let digest, let held):
            receivePullAnswer(from: peer, at: viaStream ? nil : sender, entries: entries, digest: digest, held: held)
            return nil
        }
    }

    private func execute(_ directives: [ReplicationDirective]) {
        for directive in directives {
            switch directive {
            case .push(let entries, let hops, let acknowledge, let after, let address):
                counters.add("replication_pushes_sent")
                send(.push(entries: entries, hops: hops, acknowledge: acknowledge, after: after), to: address)
            case .acknowledge(let versions, let writer):
                guard let member = membership.members[writer], member.state == .alive else { continue }
                counters.add("replication_acknowledgements_sent")
                send(.acknowledgement(from: configuration.name, versions: versions), to: member.address)
            case .pull(let address, let digest, let held):
                // A datagram when it fits (most rounds exchange a few hundred bytes); the answer
                // comes back the same way, or over a stream when it is large.
                let timestamp = now
                pendingPulls = pendingPulls.filter { timestamp - $0.value < .seconds(10) }
                pendingPulls[address] = timestamp
                counters.add("replication_pulls_sent")
                send(.pullRequest(from: configuration.name, digest: digest, held: held), to: address)
            case .sendDelta(let entries, let digest, let address):
                counters.add("replication_deltas_sent")
                send(.pullAnswer(from: configuration.name, entries: entries, digest: digest, held: [:]), to: address)
            case .startPullRetryTimer(let delay):
                let sink = eventSink
                pullRetryTimer?.cancel()
                pullRetryTimer = group.next().scheduleTask(in: .nanoseconds(max(0, delay.nanosecondsClamped))) {
                    sink.yield(.pullRetry)
                }
            case .startAntiEntropyTimer(let delay):
                let sink = eventSink
                group.next().scheduleTask(in: .nanoseconds(max(0, delay.nanosecondsClamped))) {
                    sink.yield(.antiEntropy)
                }
            case .applied(let entries):
                counters.add("replication_entries_applied", UInt64(entries.count))
                persist(entries, sequences: recordChanges(entries.map(\.key)), digest: [:])
            case .expired(let entries):
                counters.add("values_expired", UInt64(entries.count))
                touch(entries)
            case .forgot(let keys):
                counters.add("tombstones_collected", UInt64(keys.count))
                for key in keys { changes.forget(key) }
                saveUnsaved()
                do {
                    try storage?.forget(keys, compactedThrough: changes.compactedThrough)
                } catch {
                    counters.add("storage_errors")
                    logger.error("cannot delete collected tombstones", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Sends a one-way replication frame: in a UDP packet when small, else over a stream.
    private func send(_ frame: ReplicationFrame, to address: NodeAddress) {
        guard let target = address.socketAddress, let packets, !stopped else { return }
        let bytes = ReplicationCodec.encode(frame)
        if bytes.count <= replication.settings.packetPushBytes {
            let packet = packetCodec.encode([.user(bytes)], compress: false)
            packets.send(packet, to: target)
            counters.add("packets_sent")
            counters.add("bytes_sent", UInt64(packet.count))
        } else {
            let message = streamCodec.encode(.user(bytes), compress: false)
            let timeout = TimeAmount.nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped)
            let group = self.group
            Task {
                do {
                    try await StreamClient.send(message, to: target, group: group, timeout: timeout)
                } catch {
                    self.count("replication_send_failed")
                }
            }
        }
    }

    private func count(_ name: String) {
        counters.add(name)
    }

    /// Gives each changed key the next change-log sequence number and wakes the watchers.
    private func recordChanges(_ keys: some Sequence<String>) -> [String: UInt64] {
        var sequences: [String: UInt64] = [:]
        for key in keys { sequences[key] = changes.record(key) }
        if !sequences.isEmpty {
            for wake in watchWakeups.values { wake.yield() }
        }
        return sequences
    }

    /// Records entries whose visibility changed without a write (expired, writer left or back).
    private func touch(_ entries: [Entry]) {
        guard !entries.isEmpty else { return }
        let sequences = recordChanges(entries.map(\.key))
        saveUnsaved()
        do {
            try storage?.touch(sequences)
        } catch {
            counters.add("storage_errors")
            logger.error("cannot save change-log positions", metadata: ["error": "\(error)"])
        }
    }

    /// Queues remote state for saving within `saveDelay`. Losing it in a crash loses nothing
    /// that matters: the writer has it durably and anti-entropy offers it again after a restart.
    private func persist(_ entries: [Entry], sequences: [String: UInt64], digest: [String: HybridTimestamp]) {
        guard storage != nil, !(entries.isEmpty && digest.isEmpty) else { return }
        unsaved.add(entries, sequences: sequences, digest: digest)
        guard !saveScheduled else { return }
        saveScheduled = true
        Task {
            try? await Task.sleep(for: Self.saveDelay)
            self.saveUnsaved()
        }
    }

    /// How long applied remote state may wait to be saved.
    static let saveDelay = Duration.milliseconds(5)

    /// Commits the queued remote state in one transaction; a failure is logged and counted
    /// (the data is still in memory and anti-entropy offers it again after a restart).
    private func saveUnsaved() {
        saveScheduled = false
        guard let storage, !unsaved.isEmpty else { return }
        let pending = unsaved
        unsaved = UnsavedState()
        do {
            try storage.save(Array(pending.entries.values), sequences: pending.sequences, digest: pending.digest)
        } catch {
            counters.add("storage_errors")
            logger.error("cannot save replicated state", metadata: ["error": "\(error)"])
        }
    }

    /// A pull answer from `peer` arrived: ours if we asked (then push the rest back and note
    /// the sync), else the push half of an exchange `peer` started.
    private func receivePullAnswer(
        from peer: String, at source: NodeAddress?, entries: [Entry], digest: [String: HybridTimestamp],
        held: [String: [HybridTimestamp]]
    ) {
        var address = membership.members[peer]?.address
        if let source, pendingPulls[source] != nil { address = source }
        let solicited = address.map { pendingPulls.removeValue(forKey: $0) != nil } ?? false
        counters.add(solicited ? "replication_pulls_completed" : "replication_deltas_received")
        if solicited {
            pullRetryTimer?.cancel()
            pullRetryTimer = nil
        }
        execute(
            replication.receivePullAnswer(
                entries: entries, digest: digest, held: held, from: peer, replyingTo: solicited ? address : nil,
                wallMilliseconds: wallMilliseconds))
        persist([], sequences: [:], digest: replication.store.digest)
        checkReplicaWaits()
        guard solicited else { return }
        let synced = wallMilliseconds
        lastSynced = synced
        saveUnsaved()
        do {
            try storage?.recordSync(at: synced)
        } catch {
            counters.add("storage_errors")
        }
    }

    // MARK: - Key-value operations

    public func put(
        key: String, value: [UInt8], timeToLive: Duration?, ephemeral: Bool, replicas: ReplicaTarget?, timeout: Duration
    ) async throws -> EntrySnapshot {
        let write = Replication.Write(key: key, value: value, timeToLive: timeToLive, ephemeral: ephemeral)
        let entries = try self.write([write], awaitingReplicas: replicas != nil)
        var snapshot = EntrySnapshot(entries[0])
        if let replicas {
            snapshot.replicas = [configuration.name] + (try await awaitReplicas(of: entries, target: replicas, timeout: timeout))
        }
        return snapshot
    }

    public func delete(key: String) async throws -> EntrySnapshot {
        try write(key: key, value: nil, timeToLive: nil, ephemeral: false)
    }

    public func putBatch(_ writes: [Replication.Write]) async throws -> Int {
        try write(writes).count
    }

    private func write(key: String, value: [UInt8]?, timeToLive: Duration?, ephemeral: Bool) throws -> EntrySnapshot {
        EntrySnapshot(try write([Replication.Write(key: key, value: value, timeToLive: timeToLive, ephemeral: ephemeral)])[0])
    }

    /// Writes locally, saves durably, then replicates; returns once the commit is done.
    private func write(_ writes: [Replication.Write], awaitingReplicas: Bool = false) throws -> [Entry] {
        guard !membership.hasLeft else {
            throw AgentError(code: .left, message: "this node has left the swarm", hint: "restart the agent to write")
        }
        let entries: [Entry]
        let directives: [ReplicationDirective]
        do {
            (entries, directives) = try replication.write(
                writes, wallMilliseconds: wallMilliseconds, peers: replicationPeers, awaitingReplicas: awaitingReplicas)
        } catch {
            throw AgentError(error)
        }
        let sequences = recordChanges(entries.map(\.key))
        // Durable before acknowledged: the put returns only after the commit (of anything
        // queued before it, then of the write).
        saveUnsaved()
        do {
            if let last = entries.last {
                try storage?.save(entries, sequences: sequences, digest: [configuration.name: last.version.timestamp])
            }
        } catch {
            counters.add("storage_errors")
            throw AgentError(
                code: .storageFailed, message: "the write could not be saved: \(error)",
                hint: "check the disk behind --data-dir; the value is held in memory only")
        }
        execute(directives)
        return entries
    }

    // MARK: - Waiting for replicas

    /// Members that replicate the state, other than this node, in one of `states`.
    private func replicationMembers(in states: Set<MemberState> = [.alive]) -> [Member] {
        membership.members.values.filter { member in
            member.name != configuration.name && states.contains(member.state)
                && String(decoding: member.meta, as: UTF8.self).split(separator: ",")
                    .contains(Substring(AgentConfiguration.replicationMarker))
        }
    }

    /// Waits until `target` nodes hold `entries`; returns the peers that do. Every 200 ms the
    /// writes are pushed again, straight to the live peers not known to hold them.
    private func awaitReplicas(of entries: [Entry], target: ReplicaTarget, timeout: Duration) async throws -> [String] {
        let id = nextReplicaWait
        nextReplicaWait += 1
        let deadline = clock.now + timeout
        return try await withCheckedThrowingContinuation { continuation in
            replicaWaits[id] = ReplicaWait(
                entries: entries, target: target, timeout: timeout, deadline: deadline, continuation: continuation)
            checkReplicaWaits()
            if !replicaWaits.isEmpty, !replicaWaitTicking {
                replicaWaitTicking = true
                Task { await self.tickReplicaWaits() }
            }
        }
    }

    private func tickReplicaWaits() async {
        while !replicaWaits.isEmpty {
            try? await Task.sleep(for: .milliseconds(200))
            checkReplicaWaits(repairing: true)
        }
        replicaWaitTicking = false
    }

    /// Completes the waits that have enough replicas; with `repairing`, fails those past their
    /// deadline and pushes the rest again to the peers that lack them.
    private func checkReplicaWaits(repairing: Bool = false) {
        guard !replicaWaits.isEmpty else { return }
        // Suspects count: until declared dead they are members that should get the write.
        let peers = replicationMembers(in: [.alive, .suspect])
        let names = peers.map(\.name)
        for (id, wait) in replicaWaits {
            let versions = wait.entries.map(\.version)
            let holders = replication.holders(of: versions, among: names).sorted()
            let needed: Int
            switch wait.target {
            case .all: needed = names.count
            case .count(let count): needed = count - 1
            }
            if holders.count >= needed {
                finishReplicaWait(id, with: .success(holders))
            } else if clock.now >= wait.deadline || stopped {
                let missing = Set(names).subtracting(holders).sorted()
                let total = wait.target == .all ? names.count + 1 : needed + 1
                finishReplicaWait(
                    id,
                    with: .failure(
                        AgentError(
                            code: .replicationTimeout,
                            message:
                                "the write is saved on \(configuration.name), but only \(holders.count + 1) of \(total) nodes had it after \(wait.timeout)"
                                + (missing.isEmpty ? "" : " (not yet: \(missing.joined(separator: ", ")))"),
                            hint: "the write stays and will keep spreading; raise --timeout, or check the missing nodes")))
            } else if repairing {
                let lacking = Set(names).subtracting(holders)
                let addresses = peers.filter { lacking.contains($0.name) }.map(\.address)
                execute(replication.pushAgain(wait.entries, to: addresses))
            }
        }
    }

    private func finishReplicaWait(_ id: Int, with result: Result<[String], any Error>) {
        guard let wait = replicaWaits.removeValue(forKey: id) else { return }
        replication.stopAwaiting(wait.entries.map(\.version))
        wait.continuation.resume(with: result)
    }

    public func get(key: String) async -> EntrySnapshot? {
        replication.read(key, wallMilliseconds: wallMilliseconds).map(EntrySnapshot.init)
    }

    public func status() async -> StateStatus {
        let (values, tombstones) = replication.store.counts
        let wall = wallMilliseconds
        return StateStatus(
            values: values, tombstones: tombstones,
            digest: replication.store.digest.mapValues(\.description),
            lastSyncedMillisecondsAgo: lastSynced.map { wall > $0 ? wall - $0 : 0 }, durable: storage != nil,
            seq: changes.last, peerLagMilliseconds: replication.peerLagMilliseconds)
    }

    public func list(prefix: String) async -> EntryList {
        let entries = replication.list(prefix: prefix, wallMilliseconds: wallMilliseconds).map { entry in
            var snapshot = EntrySnapshot(entry)
            snapshot.seq = changes.sequence(of: entry.key)
            return snapshot
        }
        return EntryList(entries: entries, seq: changes.last)
    }

    // MARK: - Watching

    public func watch(prefix: String, from: UInt64?) async throws -> AsyncThrowingStream<[EntrySnapshot], any Error> {
        let start = from ?? changes.last
        guard start <= changes.last else {
            throw AgentError(
                code: .watchAhead,
                message: "seq \(start) is beyond this agent's change log, which ends at \(changes.last)",
                hint: "the agent may have restarted without --data-dir; list again and watch from the seq it returns")
        }
        try checkResumable(from: start)
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = nextWatch
        nextWatch += 1
        if watchesEnded {
            wake.finish()
        } else {
            watchWakeups[id] = wake
            wake.onTermination = { [weak self] _ in Task { await self?.forgetWatch(id) } }
        }
        counters.add("watches_opened")
        let session = WatchSession(agent: self, prefix: prefix, cursor: start, wakeups: wakeups)
        return AsyncThrowingStream { try await session.next() }
    }

    public func endWatches() async {
        finishWatches()
    }

    private func finishWatches() {
        watchesEnded = true
        let wakeups = watchWakeups
        watchWakeups = [:]
        for wake in wakeups.values { wake.finish() }
    }

    private func forgetWatch(_ id: Int) {
        watchWakeups[id] = nil
    }

    private func checkResumable(from sequence: UInt64) throws {
        guard sequence >= changes.compactedThrough else {
            throw AgentError(
                code: .watchCompacted,
                message: "changes after seq \(sequence) are no longer all known: keys changed up to seq \(changes.compactedThrough) were since forgotten (tombstone grace)",
                hint: "list the keys again and watch from the seq the list returns")
        }
    }

    /// The latest changes after `sequence` under `prefix` (a bounded batch), as watchers see
    /// them, and the sequence number to continue from.
    func watchBatch(after sequence: UInt64, prefix: String) throws -> (changes: [EntrySnapshot], through: UInt64) {
        try checkResumable(from: sequence)
        let (found, through) = changes.changes(after: sequence, prefix: prefix, limit: 512)
        let wall = wallMilliseconds
        let snapshots = found.compactMap { change -> EntrySnapshot? in
            guard let entry = replication.store.entries[change.key] else { return nil }
            var snapshot = EntrySnapshot(entry)
            snapshot.seq = change.sequence
            if replication.read(change.key, wallMilliseconds: wall) != nil {
                snapshot.change = "put"
            } else {
                snapshot.value = nil
                snapshot.valueBase64 = nil
                snapshot.deleted = true
                snapshot.change =
                    entry.isTombstone
                    ? "delete" : entry.ephemeral && replication.departedWriters.contains(entry.version.origin) ? "depart" : "expire"
            }
            return snapshot
        }
        return (snapshots, through)
    }

    /// The metadata announced to others: the operator's `--meta` plus the replication marker.
    // MARK: - Keyring

    public func keyring(_ operation: KeyringOperation) async throws -> KeyringReport {
        guard packetCodec.keyring.isEnabled else {
            throw AgentError(
                code: .encryptionDisabled, message: "this node does not encrypt gossip, so it has no keyring",
                hint: "start every agent with --encrypt KEY (make one with `rumor keygen`) to encrypt the swarm")
        }
        guard packetCodec.verifyIncoming else {
            throw AgentError(
                code: .encryptionMigrating,
                message: "this node still accepts plaintext gossip, so keyring requests could be forged or read",
                hint: "finish the move to encryption first: restart every agent without --encrypt-verify-incoming false")
        }
        counters.add("keyring_operations")
        let local = applyKeyring(operation)
        if case .response(_, let error?) = local {
            throw AgentError(code: .badKey, message: error, hint: "nothing changed on any node; list the keys with `rumor keys list`")
        }
        var answers: [String: KeyringFrame] = [configuration.name: local]
        let peers = replicationMembers().filter { $0.name != configuration.name }
        let request = streamCodec.encode(.user(KeyringCodec.encode(.request(operation))), compress: false)
        let codec = streamCodec
        let group = self.group
        let timeout = TimeAmount.nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped)
        var failures: [String: String] = [:]
        await withTaskGroup(of: (String, Result<KeyringFrame, any Error>).self) { tasks in
            for peer in peers {
                guard let target = peer.address.socketAddress else { continue }
                tasks.addTask {
                    do {
                        let answer = try await StreamClient.exchange(
                            request, with: target, group: group, timeout: timeout, maximumBytes: 1 << 16,
                            decode: { try codec.decode($0) })
                        guard case .user(let payload) = answer, KeyringCodec.isFrame(payload) else {
                            throw AgentError(code: .badAnswer, message: "not a keyring answer", hint: "")
                        }
                        return (peer.name, .success(try KeyringCodec.decode(payload)))
                    } catch {
                        return (peer.name, .failure(error))
                    }
                }
            }
            for await (name, result) in tasks {
                switch result {
                case .success(let frame): answers[name] = frame
                case .failure(let error): failures[name] = "no answer: \(error)"
                }
            }
        }
        var keys: [String: Int] = [:]
        var primaryKeys: [String: Int] = [:]
        for (name, answer) in answers {
            guard case .response(let held, let error) = answer else { continue }
            if let error { failures[name] = error }
            for key in held { keys[KeyText.encode(key), default: 0] += 1 }
            if let primary = held.first { primaryKeys[KeyText.encode(primary), default: 0] += 1 }
        }
        let report = KeyringReport(
            nodes: peers.count + 1, responded: answers.count, failures: failures, keys: keys, primaryKeys: primaryKeys)
        guard failures.isEmpty else {
            throw AgentError(
                code: .keyringPartial,
                message: "\(failures.count) of \(report.nodes) nodes did not apply it: "
                    + failures.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; "),
                hint: "fix or wait for those nodes and run the same command again (it is idempotent)")
        }
        return report
    }

    /// A keyring request from another node. Answered only when this node requires encryption, so
    /// the request came encrypted and the answer goes back encrypted.
    private func answerKeyring(_ payload: [UInt8], from sender: NodeAddress) -> [UInt8]? {
        let frame: KeyringFrame
        do {
            frame = try KeyringCodec.decode(payload)
        } catch {
            dropped(error, from: sender.socketAddress)
            return nil
        }
        guard case .request(let operation) = frame else { return nil }
        let answer: KeyringFrame
        if !packetCodec.keyring.isEnabled {
            answer = .response(keys: [], error: "this node does not encrypt gossip")
        } else if !packetCodec.verifyIncoming {
            answer = .response(keys: [], error: "this node still accepts plaintext gossip (moving to encryption)")
        } else {
            counters.add("keyring_requests_answered")
            answer = applyKeyring(operation)
        }
        return streamCodec.encode(.user(KeyringCodec.encode(answer)), compress: false)
    }

    /// Changes the keyring (both codecs and the file) and answers with the keys now installed.
    private func applyKeyring(_ operation: KeyringOperation) -> KeyringFrame {
        var keyring = packetCodec.keyring
        do {
            switch operation {
            case .list: break
            case .install(let key): try keyring.install(key)
            case .use(let key): try keyring.use(key)
            case .remove(let key): try keyring.remove(key)
            }
        } catch {
            return .response(keys: packetCodec.keyring.keys, error: "\(error)")
        }
        if keyring != packetCodec.keyring {
            if let keyringPath {
                do {
                    try KeyringFile.save(keyring, to: keyringPath)
                } catch {
                    logger.error("cannot save the keyring", metadata: ["error": "\(error)"])
                    return .response(keys: packetCodec.keyring.keys, error: "cannot save the keyring: \(error)")
                }
            }
            packetCodec.keyring = keyring
            streamCodecBox.withLockedValue { $0.keyring = keyring }
            logger.notice("keyring changed", metadata: ["operation": "\(operation.name)", "keys": "\(keyring.keys.count)"])
        }
        return .response(keys: keyring.keys, error: nil)
    }

    /// The keyring to start with: the saved one if any, else `--encrypt`'s key (saved then).
    private static func loadKeyring(_ configuration: AgentConfiguration, path: String?, logger: Logger) throws -> Keyring {
        if let path, let saved = try KeyringFile.load(path) {
            if let key = configuration.encryptionKey, !saved.keys.contains(key) {
                logger.warning(
                    "--encrypt is ignored: the saved keyring (which holds rotations) does not contain that key",
                    metadata: ["keyring": "\(path)"])
            }
            return saved
        }
        guard let key = configuration.encryptionKey else { return Keyring() }
        let keyring: Keyring
        do {
            keyring = try Keyring(keys: [key])
        } catch {
            throw AgentError(code: .badConfig, message: "--encrypt: \(error)", hint: "make a key with `rumor keygen`")
        }
        if let path { try KeyringFile.save(keyring, to: path) }
        return keyring
    }

    // MARK: - Configuration helpers

    /// Creates the data directory (owner-only) if needed and checks that it is writable, so a
    /// bad `--data-dir` fails at start-up rather than at the first write.
    private static func prepareDataDirectory(_ path: String) throws {
        let files = FileManager.default
        do {
            try files.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw AgentError(
                code: .badConfig, message: "cannot create data directory \(path): \(error.localizedDescription)",
                hint: "pass a writable --data-dir")
        }
        guard files.isWritableFile(atPath: path) else {
            throw AgentError(
                code: .badConfig, message: "data directory \(path) is not writable", hint: "pass a writable --data-dir")
        }
    }

    /// The address announced to others: `--advertise` if given, the bind address if specific,
    /// else the first non-loopback IPv4 address of this host (127.0.0.1 when there is none).
    private static func advertisedAddress(for configuration: AgentConfiguration) throws -> NodeAddress {
        let port = configuration.advertisePort ?? configuration.bindPort
        guard let port16 = UInt16(exactly: port) else { throw AgentError.badAddress("\(port)") }
        if let host = configuration.advertiseHost {
            return try NodeAddress.resolve("\(host):\(port16)", defaultPort: Int(port16))
        }
        let bind = configuration.bindHost
        if bind != "0.0.0.0", bind != "::", !bind.isEmpty {
            return try NodeAddress.resolve(bind.contains(":") ? "[\(bind)]:\(port16)" : "\(bind):\(port16)", defaultPort: port)
        }
        let devices = (try? System.enumerateDevices()) ?? []
        for device in devices {
            guard let address = device.address, case .v4 = address, let node = NodeAddress(address),
                node.ip.first != 127
            else { continue }
            return NodeAddress(ip: node.ip, port: port16)
        }
        return NodeAddress(ip: [127, 0, 0, 1], port: port16)
    }
}

/// Named counters reported by `rumor info` (and mirrored to swift-metrics).
struct AgentCounters: Sendable {
    private(set) var values: [String: UInt64] = [:]

    mutating func add(_ name: String, _ amount: UInt64 = 1) {
        values[name, default: 0] &+= amount
    }
}

/// The counter suffix for a dropped packet or stream: `dropped_<reason>`.
func dropReason(_ error: WireError) -> String {
    if case .labelMismatch = error.code { return "label" }
    return "\(error.code)"
}

/// One open watch: pulls batches of changes from the agent as the consumer asks for them, and
/// sleeps until the change log grows when there are none, so a slow reader costs no buffering.
private actor WatchSession {
    let agent: Agent
    let prefix: String
    var cursor: UInt64
    var wakeups: AsyncStream<Void>.AsyncIterator

    init(agent: Agent, prefix: String, cursor: UInt64, wakeups: AsyncStream<Void>) {
        self.agent = agent
        self.prefix = prefix
        self.cursor = cursor
        self.wakeups = wakeups.makeAsyncIterator()
    }

    /// The next batch of changes; nil once the agent ends the watch (shutting down).
    func next() async throws -> [EntrySnapshot]? {
        while true {
            let (batch, through) = try await agent.watchBatch(after: cursor, prefix: prefix)
            cursor = through
            if !batch.isEmpty { return batch }
            var iterator = wakeups
            let woken: Void? = await iterator.next(isolation: self)
            wakeups = iterator
            if woken == nil { return nil }
        }
    }
}

/// Applied remote state not yet saved: the latest entry per key, their change-log positions,
/// and the highest digest values.
struct UnsavedState {
    var entries: [String: Entry] = [:]
    var sequences: [String: UInt64] = [:]
    var digest: [String: HybridTimestamp] = [:]

    var isEmpty: Bool { entries.isEmpty && digest.isEmpty }

    mutating func add(_ applied: [Entry], sequences: [String: UInt64], digest: [String: HybridTimestamp]) {
        for entry in applied { entries[entry.key] = entry }
        self.sequences.merge(sequences) { max($0, $1) }
        self.digest.merge(digest) { max($0, $1) }
    }
}
