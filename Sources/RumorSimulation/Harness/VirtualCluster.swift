import RumorCore
import RumorWire

/// What a driver of a `VirtualCluster` wants to know as the run goes. Every hook has a default
/// that does nothing.
public protocol ClusterObserver {
    /// Events the script schedules (writes, crashes…); `VirtualCluster.run` hands them back.
    associatedtype Script
    /// Node `from` sent a datagram of `size` bytes to `to` (counted whether or not it arrives).
    mutating func sent(_ datagram: Datagram, size: Int, from: Int, to: Int, now: Instant)
    /// Node `from` ran a push-pull exchange with `to`; `reply` is nil when `to` was unreachable.
    mutating func exchanged(_ state: PushPull, reply: PushPull?, from: Int, to: Int, now: Instant)
    /// A datagram reached node `index` (up), which is about to process it.
    mutating func received(_ messages: [NodeMessage], at index: Int, now: Instant)
    /// Node `index` reported a membership event.
    mutating func memberEvent(_ event: MemberEvent, at index: Int, now: Instant)
    /// A command of node `index` completed.
    mutating func completed(_ command: CommandID, _ result: CommandResult, at index: Int, now: Instant)
}

extension ClusterObserver {
    public mutating func sent(_ datagram: Datagram, size: Int, from: Int, to: Int, now: Instant) {}
    public mutating func exchanged(_ state: PushPull, reply: PushPull?, from: Int, to: Int, now: Instant) {}
    public mutating func received(_ messages: [NodeMessage], at index: Int, now: Instant) {}
    public mutating func memberEvent(_ event: MemberEvent, at index: Int, now: Instant) {}
    public mutating func completed(_ command: CommandID, _ result: CommandResult, at index: Int, now: Instant) {}
}

/// N real `Node`s on a virtual clock and a `VirtualNetwork`: the one driver the simulator and
/// the core tests share. Single-threaded and seeded, hence deterministic. Nodes are numbered;
/// node `i` is named `n<i>` and lives at 10.x.y.z:7946 (x.y.z = i).
///
/// Effects are carried out as the agent would: datagrams arrive after a drawn latency unless
/// lost or cut off; push-pull exchanges and stream pings complete at once between reachable
/// nodes; timers fire on the virtual clock (a crashed node's timers die with it).
public struct VirtualCluster<Observer: ClusterObserver> {
    public private(set) var now = Instant.zero
    public private(set) var nodes: [Node] = []
    public private(set) var isUp: [Bool] = []
    /// Why the last write `write` returned nil for was refused.
    public private(set) var lastRefusal: NodeError?
    /// Each node's wall clock (`setClock`): true time unless set.
    public private(set) var clocks: [NodeClock] = []
    public var network = VirtualNetwork()
    public var observer: Observer
    /// The generator behind every fate and every choice a script makes.
    public var random: SeededRandom
    /// Wall clock of the nodes: a fixed epoch plus virtual time (reports stay identical).
    public static var epochMilliseconds: UInt64 { 1_800_000_000_000 }
    private var queue = EventQueue<Event>()
    /// Bumped at each crash: timers armed before it are ignored.
    private var generation: [UInt32] = []
    private var joinSeeds: [[NodeAddress]] = []
    /// Every node's address, made once: a datagram's source is one of them (an address holds
    /// its bytes in an array, an allocation per datagram otherwise).
    private var addresses: [NodeAddress] = []
    private var nextCommand: CommandID = 0

    private enum Event {
        case timer(Int, UInt32, NodeTimer)
        case datagram(to: Int, from: Int, [NodeMessage])
        case script(Observer.Script)
    }

    public init(observer: Observer, seed: UInt64) {
        self.observer = observer
        self.random = SeededRandom(seed: seed)
    }

    public static func address(of index: Int) -> NodeAddress {
        NodeAddress(
            ip: [10, UInt8(truncatingIfNeeded: index >> 16), UInt8(truncatingIfNeeded: index >> 8), UInt8(truncatingIfNeeded: index)],
            port: 7946)
    }

    public static func index(of address: NodeAddress) -> Int {
        address.packedIPv4.map { Int($0 >> 16 & 0xff_ffff) } ?? -1
    }

    public static func name(of index: Int) -> String { "n\(index)" }

    public static func index(ofName name: String) -> Int { Int(name.dropFirst()) ?? -1 }

    /// True time: the epoch plus virtual time.
    public var time: NodeTime {
        NodeTime(now: now, wallMilliseconds: Self.epochMilliseconds + UInt64(max(0, now.nanoseconds / 1_000_000)))
    }

    /// The time as node `index` reads it: true time on the monotonic clock, its own wall clock.
    public func time(of index: Int) -> NodeTime {
        let wall = Int64(Self.epochMilliseconds) + now.nanoseconds / 1_000_000 + clocks[index].offset(at: now)
        return NodeTime(now: now, wallMilliseconds: UInt64(max(0, wall)))
    }

    /// Steps node `index`'s wall clock to `offsetMilliseconds` from true time, now, drifting by
    /// `drift` ms per second from there.
    public mutating func setClock(of index: Int, offsetMilliseconds: Int64, drift: Double = 0) {
        clocks[index].set(offsetMilliseconds: offsetMilliseconds, drift: drift, at: now)
    }

    // MARK: - Script

    /// Adds node `nodes.count` (not started).
    @discardableResult
    public mutating func add(settings: NodeSettings, seeds: NodeSeeds) -> Int {
        let index = nodes.count
        clocks.append(NodeClock())
        addresses.append(Self.address(of: index))
        nodes.append(
            Node(name: Self.name(of: index), address: addresses[index], settings: settings, seeds: seeds, at: time(of: index)))
        isUp.append(true)
        generation.append(0)
        joinSeeds.append([])
        return index
    }

    /// Starts node `index`'s timers.
    /// - Parameter joining: it will join peers (it is `syncing` until its first sync).
    public mutating func start(_ index: Int, firstAntiEntropyAfter: Duration? = nil, joining: Bool = false) {
        let effects = nodes[index].start(at: time(of: index), firstAntiEntropyAfter: firstAntiEntropyAfter, joining: joining)
        execute(effects, at: index)
    }

    /// Node `index` joins through `seeds` (retrying with backoff until one answers).
    public mutating func join(_ index: Int, through seeds: [Int]) {
        joinSeeds[index] = seeds.map { Self.address(of: $0) }
        joinSeeds(index)
    }

    /// Node `index` joins through its seeds, retrying until one answers (also a `retryJoin`).
    private mutating func joinSeeds(_ index: Int) {
        nextCommand += 1
        execute(nodes[index].join(seeds: joinSeeds[index], command: nextCommand, retrying: true, at: time(of: index)), at: index)
    }

    /// Writes at node `index`; nil when the node refuses (it left, or the write is invalid).
    @discardableResult
    public mutating func write(_ writes: [Replication.Write], at index: Int, awaiting: ReplicaTarget? = nil, timeout: Duration = .seconds(5))
        -> (entries: [Entry], command: CommandID?)?
    {
        nextCommand += 1
        let request = awaiting.map { Node.ReplicaWaitRequest(target: $0, timeout: timeout, command: nextCommand) }
        let outcome: Node.WriteOutcome
        do {
            outcome = try nodes[index].write(writes, awaiting: request, at: time(of: index))
        } catch {
            lastRefusal = error
            return nil
        }
        execute(outcome.effects, at: index)
        return (outcome.entries, request?.command)
    }

    /// Node `index` leaves gracefully; returns the command that completes when it has.
    @discardableResult
    public mutating func leave(_ index: Int) -> CommandID {
        nextCommand += 1
        execute(nodes[index].leave(command: nextCommand, at: time(of: index)), at: index)
        return nextCommand
    }

    /// Node `index` stops at once; its state stays for a `restart`.
    public mutating func crash(_ index: Int) {
        guard isUp[index] else { return }
        isUp[index] = false
        generation[index] &+= 1
    }

    /// The state node `index` would restart from now (what `--data-dir` holds).
    public func savedState(of index: Int) -> SavedState {
        let node = nodes[index]
        return SavedState(store: node.replication.store, changes: node.changes, lastSynced: node.lastSynced)
    }

    /// Node `index` comes back as a new process with new seeds, and starts; it rejoins through
    /// `seeds` when given.
    /// - Parameter restoring: the state it starts from: what it held when it stopped (the
    ///   default, as with a current `--data-dir`), an earlier `savedState` (a stale copy), or
    ///   an empty `SavedState()` (no data dir).
    public mutating func restart(_ index: Int, seeds: NodeSeeds, restoring: SavedState? = nil, joining through: [Int] = []) {
        guard !isUp[index] else { return }
        let old = nodes[index]
        let saved = restoring ?? savedState(of: index)
        nodes[index] = Node(
            name: old.name, address: Self.address(of: index), settings: old.settings, seeds: seeds, restoring: saved,
            at: time(of: index))
        isUp[index] = true
        start(index, joining: !through.isEmpty)
        if !through.isEmpty { join(index, through: through) }
    }

    /// Schedules a script event; `run` returns it when it is due.
    public mutating func schedule(_ script: Observer.Script, at time: Instant) {
        queue.push(time: time, event: .script(script))
    }

    // MARK: - Running

    /// Runs node events until the next script event due by `limit` (returned, with the clock at
    /// its time) or until `limit` (nil, with the clock at `limit`).
    public mutating func run(until limit: Instant) -> Observer.Script? {
        while let next = queue.nextTime, next <= limit {
            let (time, event) = queue.pop()!
            now = time
            switch event {
            case .script(let script):
                return script
            case .timer(let index, let armed, let timer):
                guard isUp[index], generation[index] == armed else { continue }
                execute(nodes[index].timerFired(timer, at: self.time(of: index)), at: index)
            case .datagram(let index, let from, let messages):
                guard isUp[index] else { continue }
                observer.received(messages, at: index, now: now)
                execute(nodes[index].receive(messages, from: addresses[from], at: self.time(of: index)), at: index)
            }
        }
        now = max(now, limit)
        return nil
    }

    /// Runs for `duration`, dropping script events (for clusters scripted by hand).
    public mutating func run(for duration: Duration) {
        let limit = now + duration
        while run(until: limit) != nil {}
    }

    /// Runs in 10 ms steps until `condition` holds; returns the time it took, or nil at `limit`.
    public mutating func run(within limit: Duration, until condition: (Self) -> Bool) -> Duration? {
        let start = now
        while now - start < limit {
            if condition(self) { return now - start }
            run(for: .milliseconds(10))
        }
        return condition(self) ? now - start : nil
    }

    // MARK: - Effects

    private mutating func execute(_ effects: [NodeEffect], at index: Int) {
        for effect in effects {
            switch effect {
            case .send(let datagram, let address):
                send(datagram, from: index, to: Self.index(of: address))
            case .pushPull(let state, let address, let command):
                exchange(state, from: index, to: Self.index(of: address), join: command)
            case .catchUp(let request, let address):
                catchUp(request, from: Self.index(of: address), to: index)
            case .streamPing(let ping, let address, _):
                let target = Self.index(of: address)
                let contacted = target >= 0 && target < nodes.count && isUp[target] && network.isReachable(index, target)
                nodes[index].streamPingFinished(sequence: ping.sequenceNumber, contacted: contacted, at: time(of: index))
            case .askKeyring(_, let peer, _, let command):
                let effects = nodes[index].keyringAnswered(nil, failure: "not simulated", from: peer, command: command)
                execute(effects, at: index)
            case .startTimer(let timer, let delay):
                queue.push(time: now + delay, event: .timer(index, generation[index], timer))
            case .memberEvent(let event):
                observer.memberEvent(event, at: index, now: now)
            case .complete(let command, let result):
                observer.completed(command, result, at: index, now: now)
            case .retryJoin:
                joinSeeds(index)
            case .store, .changesRecorded, .log, .probeAnswered, .ready:
                break
            case .serfBroadcast, .serfDirect, .userEvent, .serfRelay, .serfForward, .query, .keyQuery, .queryAnswered, .queryEnded:
                break  // Serf's layer (intents, events, queries) is not simulated
            }
        }
    }

    private mutating func send(_ datagram: Datagram, from source: Int, to target: Int) {
        guard target >= 0, target < nodes.count, target != source else { return }
        let size: Int
        let messages: [NodeMessage]
        let isPacket: Bool
        switch datagram {
        case .membership(let list, _):
            size = list.reduce(0) { $0 + $1.estimatedWireSize }
            messages = list.map(NodeMessage.membership)
            isPacket = true
        case .replication(let frame):
            // As in the agent: frames that fit a packet go by UDP (and may be lost), larger ones
            // by TCP. 28 bytes of IP and UDP headers (TCP framing is similar).
            size = ReplicationCodec.encodedSize(frame) + 28
            messages = [.replication(frame)]
            isPacket = size <= nodes[source].replication.settings.packetPushBytes + 28
        }
        observer.sent(datagram, size: size, from: source, to: target, now: now)
        guard network.isReachable(source, target), !isPacket || !network.drawLoss(using: &random) else { return }
        let arrival = now + network.drawLatency(from: source, to: target, using: &random)
        queue.push(time: arrival, event: .datagram(to: target, from: source, messages))
    }

    /// A catch-up stream, delivered at once: every page `target` serves, merged by `source` in order.
    private mutating func catchUp(_ request: ReplicationFrame, from target: Int, to source: Int) {
        var completed = false
        if case .catchUpRequest(let peer, let digest, let held) = request, target >= 0, target < nodes.count, isUp[target],
            network.isReachable(source, target)
        {
            let (serving, effects) = nodes[target].catchUpRequested(
                from: peer, digest: digest, held: held, sender: Self.address(of: source), at: time(of: target))
            execute(effects, at: target)
            if var serving {
                while !serving.isFinished {
                    let frame = nodes[target].nextCatchUpPage(&serving)
                    guard case .catchUpPage(let page) = frame else { break }
                    observer.sent(.replication(frame), size: ReplicationCodec.encodedSize(frame) + 28, from: target, to: source, now: now)
                    execute(nodes[source].catchUpPageArrived(page, from: Self.address(of: target), at: time(of: source)), at: source)
                    completed = page.isLast
                }
            }
        }
        _ = nodes[source].catchUpEnded(completed: completed)
    }

    private mutating func exchange(_ state: PushPull, from source: Int, to target: Int, join: CommandID?) {
        let reachable = target >= 0 && target < nodes.count && isUp[target] && network.isReachable(source, target)
        var reply: PushPull?
        if reachable {
            let answer = nodes[target].answer(.pushPull(state), from: Self.address(of: source), at: time(of: target))
            execute(answer.effects, at: target)
            if case .pushPull(let state) = answer.reply { reply = state }
        }
        observer.exchanged(state, reply: reply, from: source, to: target, now: now)
        let effects = nodes[source].pushPullFinished(reply, with: Self.address(of: target), join: join, at: time(of: source))
        execute(effects, at: source)
    }
}

/// An observer that keeps every membership event and command result (for scripted tests).
public struct EventLog: ClusterObserver {
    public typealias Script = Never
    public var events: [(at: Instant, seenBy: Int, event: MemberEvent)] = []
    public var results: [CommandID: CommandResult] = [:]

    public init() {}

    public mutating func memberEvent(_ event: MemberEvent, at index: Int, now: Instant) {
        events.append((now, index, event))
    }

    public mutating func completed(_ command: CommandID, _ result: CommandResult, at index: Int, now: Instant) {
        results[command] = result
    }
}
