import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RumorCore
import RumorWire
import ServiceLifecycle

/// A running Rumor node: the pure `Node` driven over real UDP and TCP sockets.
///
/// The actor is a thin shell and the node's single owner: bytes in → decode → `node.<input>`
/// → carry out the returned effects. Datagrams, stream requests and timers arrive through one
/// ordered event stream consumed by `run()`; API calls enter through actor methods.
public actor Agent: Service, AgentControl {
    public nonisolated let configuration: AgentConfiguration
    let logger: Logger
    let group: EventLoopGroup
    /// The codecs, read by the TCP listener's event loops too (so a keyring change reaches
    /// connections being decoded); written only by this actor.
    let codecBox: NIOLockedValueBox<GossipCodec>
    var codec: GossipCodec { codecBox.withLockedValue { $0 } }
    /// Where the keyring is saved after each change; nil keeps it in memory.
    let keyringPath: String?
    /// Where others reach this node; its port is fixed once the sockets are bound.
    public private(set) var advertised: NodeAddress
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant

    var node: Node
    /// This change log's epoch: watchers' seqs are comparable only within it (see `CleanStop`).
    nonisolated let changeLogEpoch: String
    /// The durable copy of the key-value state; nil when running in memory (no --data-dir).
    let storage: EntryStorage?
    var counters = AgentCounters()
    var logThrottle = LogThrottle()
    var storageHealth = StorageHealth()
    /// Prometheus metrics (`GET /metrics`).
    public nonisolated let metrics = AgentMetrics()
    /// Open watches, woken when the change log grows.
    var watches = Subscribers<Void>(buffering: .bufferingNewest(1))
    /// Open `rumor events` streams.
    var eventHub = Subscribers<UserEventSnapshot>(buffering: .bufferingNewest(1024))
    /// Batches bursts of events for the handlers, as Serf's agent does.
    var coalescer = HandlerCoalescer()
    /// When a flush of `coalescer` is scheduled for.
    var coalescerFlushAt: Instant?
    /// The answers of this node's queries still collecting, by query.
    var queryAnswers: [QueryID: AsyncStream<SerfQueryResponse>.Continuation] = [:]
    /// The `--event-handler` scripts; nil without any.
    let handlers: EventHandlers?
    /// The log, live, for `rumor monitor`; nil when the process logs without one.
    nonisolated let logMonitor: LogMonitor?
    /// Commands the node will complete (`NodeEffect.complete`), by id.
    private var pending: [CommandID: CheckedContinuation<CommandResult, Never>] = [:]
    private var nextCommand: CommandID = 0
    /// Where gossip travels (UDP/TCP or Pilot); set once `run()` has opened it.
    private(set) var transport: (any GossipTransport)?
    /// Finds the swarm's nodes by name (`--discover`).
    var discovery: SwarmDiscovery?
    /// What `run()` waits for between opening its sockets and announcing itself; nil: nothing.
    private let startGate: StartGate?
    private(set) var stopped = false
    /// Readiness waiters and the start announcement (`Agent+Readiness.swift`).
    var readyWaiters: [CommandID: CheckedContinuation<Void, Never>] = [:]
    var startup = StartupAnnouncement()

    private let events: AsyncStream<Event>
    private let eventSink: AsyncStream<Event>.Continuation

    private enum Event: Sendable {
        case packet([UInt8], NodeAddress)
        case stream(StreamMessage, NodeAddress?, CheckedContinuation<[UInt8]?, Never>)
        case timer(NodeTimer)
    }

    /// Validates the configuration and prepares the node (loading its saved state); sockets
    /// open in `run()`.
    /// - Parameter startGate: what `run()` waits for before it joins (the local API listening).
    /// - Throws: `AgentError` (`bad_config`, `bad_address`, `storage_failed`…) describing the
    ///   first problem.
    public init(configuration: AgentConfiguration, logger: Logger, logMonitor: LogMonitor? = nil, startGate: StartGate? = nil) throws {
        try configuration.validate()
        if let directory = configuration.dataDirectory {
            try AgentStartup.prepareDataDirectory(directory, resync: configuration.resync, logger: logger)
        }
        var configuration = configuration
        let keyringPath = configuration.keyringFile ?? configuration.dataDirectory.map { $0 + "/keyring.json" }
        let keyring = try AgentStartup.loadKeyring(configuration, path: keyringPath, logger: logger)
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
        self.codecBox = NIOLockedValueBox(GossipCodec(configuration: configuration, keyring: keyring))
        self.advertised = try AgentStartup.advertisedAddress(for: configuration)
        self.origin = clock.now
        self.logMonitor = logMonitor
        self.startGate = startGate
        self.handlers = configuration.eventHandlers.isEmpty
            ? nil : EventHandlers(specs: configuration.eventHandlers, timeout: configuration.handlerTimeout, logger: logger)
        let time = NodeTime(now: .zero, wallMilliseconds: Self.wallMilliseconds)
        var saved = SavedState()
        if let directory = configuration.dataDirectory {
            let storage = try EntryStorage(directory: directory)
            saved = try AgentStartup.loadState(
                from: storage, directory: directory, settings: configuration.replication,
                wallMilliseconds: time.wallMilliseconds, logger: logger)
            self.storage = storage
            let stop = CleanStop.take(from: directory, lastSeq: saved.changes.last)
            let epoch = stop?.epoch ?? CleanStop.newEpoch()
            self.changeLogEpoch = epoch
            saved.expiryReportedThrough = stop?.expiryReportedThrough
            if stop == nil, saved.changes.last > 0 {
                logger.info(
                    "the previous agent did not stop cleanly: the change log takes a new epoch (watchers resume by version)",
                    metadata: ["epoch": "\(epoch)"])
            }
        } else {
            self.storage = nil
            self.changeLogEpoch = CleanStop.newEpoch()
        }
        var membership = configuration.membership
        membership.versions = configuration.gossipProtocol.versions
        // What peers may name for this node to send to: its socket's family, no subnet broadcast.
        if configuration.transport == .udp { membership.addressRule = AddressRule.forSocket(boundTo: configuration.bindHost) }
        var settings = NodeSettings(membership: membership, replication: configuration.replication)
        settings.tagFormat = configuration.gossipProtocol.tagFormat
        // Network coordinates in acks, as Serf (Go memberlist nodes ignore ack payloads).
        if !configuration.disableCoordinates { settings.coordinateCodec = SerfCoordinateCodec() }
        settings.durable = storage != nil
        settings.readyTimeout = configuration.readyTimeout
        let seed = UInt64.random(in: .min ... .max)
        self.node = Node(
            name: configuration.name, address: advertised, tags: configuration.tags, settings: settings,
            seeds: NodeSeeds(membership: seed, replication: seed &+ 1), restoring: saved, at: time)
        (self.events, self.eventSink) = AsyncStream.makeStream(of: Event.self)
        MemoryTrim.now()
    }

    // MARK: - Service

    /// Opens the sockets, waits for `startGate` (the local API listening), joins the seeds, and
    /// runs until graceful shutdown, which leaves the swarm (bounded) before returning.
    /// - Throws: `BindFailure` when a gossip socket cannot listen, before anything was sent.
    public func run() async throws {
        try await openSockets()
        // Nothing is announced before the API listens: a node that joined and then could not
        // serve its API would stay in others' member lists as a phantom.
        if let startGate, await !startGate.wait() {
            await closeSockets()
            return
        }
        if configuration.discover { try await openDiscovery() }
        logger.info(
            "rumor agent started",
            metadata: [
                "name": "\(configuration.name)", "address": "\(advertised)",
                "swarm": "\(configuration.swarm.isEmpty ? "-" : configuration.swarm)",
            ])
        execute(node.start(at: time, joining: !configuration.seeds.isEmpty || configuration.discover))
        nodeStarted()
        if !configuration.seeds.isEmpty { joinSeeds() }
        if let discovery { browse(discovery) }
        let events = self.events
        let trimming = Task.detached { await MemoryTrim.periodically() }
        defer { trimming.cancel() }
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

    private func openSockets() async throws {
        let sink = eventSink
        let codecBox = self.codecBox
        let handlers = TransportHandlers(
            onPacket: { bytes, sender in sink.yield(.packet(bytes, sender)) },
            onRequest: { [weak self] request, peer, writer in
                guard let self else { return }
                if Self.isCatchUpRequest(request) {
                    await self.serveCatchUp(request, from: peer, writer: writer)
                } else if let reply = await self.queue(request, from: peer) {
                    try? await writer.write(reply)
                }
            },
            onFailure: { [weak self] error, peer in Task { await self?.streamFailed(error, from: peer) } },
            onRecovered: { [weak self] error in Task { await self?.transportRecovered(after: error) } },
            replyToFailure: { error in Self.failureReply(to: error, codec: codecBox.withLockedValue { $0 }) })
        let decode: StreamDecoder = { bytes in try codecBox.withLockedValue { $0 }.streams.decode(bytes) }
        if configuration.transport == .pilot {
            let settings = PilotTransport.Settings(
                socketPath: configuration.pilotSocket, port: configuration.pilotPort, swarm: configuration.swarm,
                streamTimeout: .nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped),
                maximumStreamBytes: GossipCodec.maximumStreamBytes)
            let transport = try await PilotTransport.start(settings: settings, group: group, decode: decode, handlers: handlers, logger: logger)
            self.transport = transport
            advertised = transport.boundAddress
            node.readdress(advertised, at: time)
            return
        }
        let transport: any GossipTransport = try await SocketTransport.bind(
            host: configuration.bindHost, port: configuration.bindPort, group: group,
            streamTimeout: .nanoseconds(configuration.membership.streamTimeout.nanosecondsClamped),
            maximumStreamBytes: GossipCodec.maximumStreamBytes,
            decode: decode, handlers: handlers)
        self.transport = transport
        // Announced only once both sockets listen, so no one is sent to a closed port.
        let bound = await transport.boundAddress
        if configuration.bindPort == 0, configuration.advertisePort == nil {
            advertised.port = bound.port
            node.readdress(advertised, at: time)
        }
    }

    private func closeSockets() async {
        stopped = true
        execute(node.shutDown(at: time))
        if let storage, !storageHealth.failing {
            // Every change is saved: the next start may keep this epoch (watchers resume by seq).
            do {
                try CleanStop(
                    epoch: changeLogEpoch, expiryReportedThrough: node.replication.expiryReportedThrough, lastSeq: node.changes.last
                ).save(in: storage.directory)
            } catch {
                logger.warning("cannot record the clean stop; watchers will resume by version after the restart: \(error)")
            }
        }
        let stopping = NodeError(.left, "the agent is stopping", hint: "restart the agent")
        for (_, continuation) in pending { continuation.resume(returning: .failed(stopping)) }
        pending = [:]
        wakeReadyWaiters()
        watches.endAll()
        eventHub.endAll()
        await transport?.close()
        await discovery?.close()
        eventSink.finish()
    }

    /// Leaves gracefully (if not already), closes the sockets and ends `run()`.
    private func shutdown() async {
        guard !stopped else { return }
        if !node.membership.hasLeft {
            try? await leave()
        }
        await closeSockets()
        logger.info("rumor agent stopped")
    }

    /// Joins the configured seeds, retrying with backoff (the node's `joinRetry` timer) until one
    /// answers. Seeds are resolved again on each attempt (DNS and Pilot lookups change); one that
    /// does not resolve is logged and left out of that attempt.
    private func joinSeeds() {
        guard let transport else { return }
        Task {
            var seeds: [NodeAddress] = []
            for seed in configuration.seeds {
                do {
                    seeds += try await transport.resolveSeed(seed)
                } catch {
                    let reason = (error as? AgentError).map { "\($0.message) (\($0.hint))" } ?? "\(error)"
                    logger.error("cannot reach seed \(seed): \(reason)")
                }
            }
            guard !stopped else { return }
            execute(node.join(seeds: seeds, command: newCommandID(), retrying: true, at: time))
        }
    }

    /// A fresh ID for a command the node completes later (`NodeEffect.complete`).
    func newCommandID() -> CommandID {
        nextCommand += 1
        return nextCommand
    }

    // MARK: - Inputs

    var time: NodeTime {
        NodeTime(now: Instant(nanoseconds: (clock.now - origin).nanosecondsClamped), wallMilliseconds: Self.wallMilliseconds)
    }

    static var wallMilliseconds: UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }

    private func handle(_ event: Event) {
        switch event {
        case .packet(let bytes, let sender):
            receivePacket(bytes, from: sender)
        case .stream(let request, let peer, let reply):
            reply.resume(returning: stopped ? nil : answer(request, from: peer))
        case .timer(let timer):
            guard !stopped else { return }
            execute(node.timerFired(timer, at: time))
        }
    }

    private func receivePacket(_ bytes: [UInt8], from sender: NodeAddress) {
        counters.add("packets_received")
        counters.add("bytes_received", UInt64(bytes.count))
        let decoded: (messages: [NodeMessage], truncatedParts: Int, badFrames: [WireError])
        do {
            decoded = try codec.decodePacket(bytes)
        } catch {
            dropped(error, from: sender)
            return
        }
        if decoded.truncatedParts > 0 { counters.add("dropped_truncated_parts", UInt64(decoded.truncatedParts)) }
        for error in decoded.badFrames { dropped(error, from: sender) }
        execute(node.receive(decoded.messages, from: sender, at: time))
    }

    /// Hands a stream request to the run loop, in order with datagrams and timers; returns the
    /// encoded reply (nil: none, or the agent has stopped).
    private nonisolated func queue(_ request: StreamMessage, from peer: NodeAddress?) async -> [UInt8]? {
        await withCheckedContinuation { reply in
            if case .terminated = eventSink.yield(.stream(request, peer, reply)) {
                reply.resume(returning: nil)
            }
        }
    }

    /// Answers one stream request; returns the encoded reply.
    private func answer(_ message: StreamMessage, from peer: NodeAddress?) -> [UInt8]? {
        counters.add("streams_received")
        guard let from = peer else { return nil }
        if case .user(let payload) = message, KeyringCodec.isFrame(payload) {
            return answerKeyring(payload, from: from)
        }
        let request: StreamRequest
        do {
            guard let decoded = try codec.request(message) else { return nil }
            request = decoded
        } catch {
            dropped(error, from: peer)
            return nil
        }
        let (reply, effects) = node.answer(request, from: from, at: time)
        execute(effects)
        guard case .pushPull(var state) = reply else { return reply.map { codec.encode($0) } }
        if case .pushPull(let remote) = request { mergeSerfState(remote.userState, joining: false, from: from) }
        state.userState = serfUserState
        return codec.encode(.pushPull(state))
    }

    // MARK: - Commands

    /// Starts a command the node completes later, and waits for its result.
    func command(_ start: (inout Node, CommandID, NodeTime) -> [NodeEffect]) async -> CommandResult {
        let id = newCommandID()
        let effects = start(&node, id, time)
        return await withCheckedContinuation { continuation in
            pending[id] = continuation
            execute(effects)
        }
    }

    /// Carries out a local write: saves it durably (the write is acknowledged only after the
    /// commit), then its effects; with `awaiting`, returns the result of the replica wait.
    func write(_ writes: [Replication.Write], awaiting replicas: (ReplicaTarget, Duration)? = nil) async throws
        -> (entries: [Entry], result: CommandResult?)
    {
        // A node that started writes once it has synced with a peer in reach (`writesAwaitSync`),
        // at most `ready_timeout` after its start.
        while node.writesAwaitSync { _ = await readiness(waitingUpTo: .milliseconds(100)) }
        let id = newCommandID()
        let request = replicas.map { Node.ReplicaWaitRequest(target: $0.0, timeout: $0.1, command: id) }
        let prepared: Node.PreparedWrite
        do {
            prepared = try node.prepareWrite(writes, at: time)
        } catch {
            throw AgentError(error)
        }
        if let save = prepared.save, let storage {
            // Saved before it is applied: a write the disk refuses is never seen, anywhere.
            do {
                try storage.apply(save)
                storageHealth.succeeded(directory: storage.directory, logger: logger)
            } catch {
                node.abandonWrite(prepared)
                counters.add("storage_errors")
                storageHealth.failed(error, saving: "a local write", directory: storage.directory, logger: logger)
                throw StorageHealth.writeError(error, directory: storage.directory)
            }
        }
        let outcome = node.commitWrite(prepared, awaiting: request, at: time)
        if let save = prepared.save { node.saved(save) }
        guard request != nil else {
            execute(outcome.effects)
            return (outcome.entries, nil)
        }
        let result = await withCheckedContinuation { continuation in
            pending[id] = continuation
            execute(outcome.effects)
        }
        return (outcome.entries, result)
    }

    // MARK: - Effects

    /// Carries out the node's effects, in order: the one executor of node effects on real sockets.
    func execute(_ effects: [NodeEffect]) {
        for effect in effects {
            switch effect {
            case .send(let datagram, let address):
                send(datagram, to: address)
            case .pushPull(let state, let address, let command):
                Task { await self.pushPull(state, with: address, join: command) }
            case .catchUp(let request, let address):
                Task { await self.receiveCatchUp(request, from: address) }
            case .streamPing(let ping, let address, let deadline):
                Task { await self.streamPing(ping, to: address, deadline: deadline) }
            case .askKeyring(let operation, let peer, let address, let command):
                Task { await self.askKeyring(operation, peer: peer, at: address, command: command) }
            case .startTimer(let timer, let delay):
                let sink = eventSink
                group.next().scheduleTask(in: .nanoseconds(max(0, delay.nanosecondsClamped))) {
                    sink.yield(.timer(timer))
                }
            case .store(let write):
                store(write)
            case .changesRecorded:
                watches.publish(())
            case .memberEvent(let event):
                Counter(label: "rumor_member_events", dimensions: [("kind", event.kind.rawValue)]).increment()
                if handlers != nil, let type = HandlerEvent.memberType(event.kind) {
                    feedHandlers(.member(type: type, members: [Self.snapshot(event.member)], selfName: node.name, selfTags: node.tags))
                }
            case .complete(let command, let result):
                pending.removeValue(forKey: command)?.resume(returning: result)
            case .log(let line):
                logger.log(level: line.level.logLevel, "\(line.message)", metadata: line.metadata.mapValues { .string($0) })
            case .retryJoin:
                if !stopped { joinSeeds() }
            case .probeAnswered(let roundTrip):
                metrics.probeSeconds.record(roundTrip)
            case .ready:
                becameReady()
            case .serfBroadcast(let message):
                execute(node.queueSerfBroadcast(SerfCodec.encode(message), at: time))
            case .serfDirect(let message, let addresses):
                let bytes = SerfCodec.encode(message)
                if case .queryResponse(let response) = message, bytes.count > SerfQueries.sizeLimit {
                    counters.add("query_responses_too_large")
                    logger.warning(
                        "query response not sent: it exceeds Serf's limit",
                        metadata: ["bytes": "\(bytes.count)", "limit": "\(SerfQueries.sizeLimit)", "query": "\(QueryID(time: response.time, id: response.id))"])
                    continue
                }
                for address in addresses { send(.membership([.user(bytes)], checksum: false), to: address) }
            case .serfRelay(let message, let destination, let destinationName, let relays):
                let relay = SerfRelay(destination: destination, destinationName: destinationName, message: SerfCodec.encode(message))
                let bytes = SerfCodec.encode(.relay(relay))
                guard bytes.count <= SerfQueries.sizeLimit else { continue }
                for address in relays { send(.membership([.user(bytes)], checksum: false), to: address) }
            case .serfForward(let bytes, let address):
                counters.add("serf_relays_forwarded")
                send(.membership([.user(bytes)], checksum: false), to: address)
            case .query(let query):
                counters.add("queries_delivered")
                eventHub.publish(UserEventSnapshot(query: query))
                let id = QueryID(query)
                handlers?.handle(.query(query, self: (node.name, node.tags))) { [weak self] output in
                    Task { await self?.respond(to: id, with: output) }
                }
            case .keyQuery(let query):
                answerKeyQuery(query)
            case .queryAnswered(let query, let response):
                queryAnswers[query]?.yield(response)
            case .queryEnded(let query):
                queryAnswers.removeValue(forKey: query)?.finish()
            case .userEvent(let event):
                counters.add("user_events_delivered")
                eventHub.publish(UserEventSnapshot(event))
                if handlers != nil { feedHandlers(.user(event, self: (node.name, node.tags))) }
            }
        }
    }

    private func store(_ write: StorageWrite) {
        guard let storage else { return }
        do {
            try storage.apply(write)
            node.saved(write)
            storageHealth.succeeded(directory: storage.directory, logger: logger)
        } catch {
            counters.add("storage_errors")
            storageHealth.failed(error, saving: "replicated state (\(write.kind))", directory: storage.directory, logger: logger)
            // Kept in memory and tried again, so the digest on disk never passes the entries on disk.
            execute(node.saveFailed(write, at: time))
        }
    }
}
