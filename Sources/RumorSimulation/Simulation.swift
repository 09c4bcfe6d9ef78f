import RumorCore
import RumorWire

/// What to simulate. Every field has a default; `nodes` and `seed` are the usual knobs.
public struct SimulationConfiguration: Sendable, Hashable, Codable {
    /// Nodes in the swarm.
    public var nodes = 1_000
    /// Seed of every random choice: the same seed gives the same report, byte for byte.
    public var seed: UInt64 = 1
    /// Virtual duration, in anti-entropy intervals ("rounds").
    public var rounds = 20
    /// Anti-entropy interval (one round), milliseconds.
    public var roundMilliseconds = 1_000
    /// Push fanout.
    public var fanout = 3
    /// Hop bound of pushes; nil scales it to the swarm (`Replication.hopLimit`).
    public var maximumHops: Int?
    /// Updates written, one every `updateSpacingMilliseconds` from `firstUpdateMilliseconds`
    /// (default: at once, or once every node has joined with `membership`), by random live nodes.
    public var updates = 1
    public var updateSpacingMilliseconds = 100
    public var firstUpdateMilliseconds: Int?
    /// One-way latency: `latencyMinimumMicroseconds` plus an exponential tail of this mean.
    public var latencyMinimumMicroseconds = 200
    public var latencyMeanExtraMicroseconds = 300
    /// Probability that a datagram is lost: membership packets, and replication frames that fit
    /// a packet (larger ones go over TCP, which retransmits).
    public var loss = 0.0
    /// Run the SWIM + Lifeguard machines of every node (their views then choose replication
    /// peers, and failures are detected for real). Without it every node knows every other
    /// node, which is what lets a run reach 100k nodes.
    public var membership = false
    /// Nodes crashed at `crashAtMilliseconds` (chosen at random, never the writers).
    public var crashes = 0
    public var crashAtMilliseconds = 5_000
    /// Crashed nodes come back (state kept, as with --data-dir) after this long; nil = never.
    public var restartAfterMilliseconds: Int?
    /// Fraction of nodes cut off from the rest between `partitionAtMilliseconds` and `healAtMilliseconds`.
    public var partitionFraction = 0.0
    public var partitionAtMilliseconds = 5_000
    public var healAtMilliseconds = 10_000
    /// Fraction of live nodes that crash and restart (after `churnDownMilliseconds`) each round.
    public var churnPerRound = 0.0
    public var churnDownMilliseconds = 3_000

    public init() {}

    /// The first problem with these settings, if any.
    public func validate() throws(SimulationError) {
        func check(_ condition: Bool, _ message: String) throws(SimulationError) {
            if !condition { throw SimulationError(message: message) }
        }
        try check(nodes >= 2 && nodes <= 1_000_000, "nodes must be 2...1,000,000")
        try check(!membership || nodes <= 5_000, "--membership runs one SWIM machine per node and holds N² member records; use at most 5,000 nodes")
        try check(rounds >= 1 && rounds <= 10_000, "rounds must be 1...10,000")
        try check(roundMilliseconds >= 10, "a round must last at least 10 ms")
        try check(fanout >= 1 && fanout <= 64, "fanout must be 1...64")
        try check(updates >= 0 && updates <= 10_000, "updates must be 0...10,000")
        try check(loss >= 0 && loss < 1, "loss must be in [0, 1)")
        try check(crashes >= 0 && crashes < nodes, "crashes must be fewer than the nodes")
        try check(partitionFraction >= 0 && partitionFraction < 1, "the partition fraction must be in [0, 1)")
        try check(churnPerRound >= 0 && churnPerRound < 1, "churn must be in [0, 1)")
        try check(latencyMinimumMicroseconds >= 0 && latencyMeanExtraMicroseconds >= 0, "latencies must not be negative")
    }
}

/// A simulation setting that cannot run.
public struct SimulationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Runs the real `Replication` (and optionally `Membership`) machines of N nodes on a virtual
/// clock and a simulated network. Single-threaded and seeded: deterministic.
public struct Simulation {
    public let configuration: SimulationConfiguration
    private var nodes: [SimulatedNode] = []
    private var addresses: [NodeAddress] = []
    private var queue = EventQueue()
    private var now = Instant.zero
    private var random: SeededRandom
    private var partitioned = false
    private var replicationSettings = ReplicationSettings()

    // Measurements.
    private var updateKeys: [String: Int] = [:]
    private var writtenAt: [Instant] = []
    private var informedAt: [[Int64]] = []  // per update, per node: ns after the write, or -1
    private var copies: [Int] = []
    private var messages = 0
    private var bytes = 0
    private var membershipMessages = 0
    private var membershipBytes = 0
    private var crashedAt: [Int: Instant] = [:]
    private var firstDetection: [Int: Instant] = [:]
    private var detections: [Int: Set<Int>] = [:]
    private var allDetected: [Int: Instant] = [:]
    private var falsePositives = 0

    public init(_ configuration: SimulationConfiguration) throws(SimulationError) {
        try configuration.validate()
        self.configuration = configuration
        random = SeededRandom(seed: configuration.seed)
        replicationSettings.fanout = configuration.fanout
        replicationSettings.maximumHops = configuration.maximumHops
        replicationSettings.antiEntropyInterval = .milliseconds(configuration.roundMilliseconds)
    }

    static func address(of index: Int) -> NodeAddress {
        NodeAddress(ip: [10, UInt8(truncatingIfNeeded: index >> 16), UInt8(truncatingIfNeeded: index >> 8), UInt8(truncatingIfNeeded: index)], port: 7946)
    }

    static func index(of address: NodeAddress) -> Int {
        address.ip.count == 4 ? Int(address.ip[1]) << 16 | Int(address.ip[2]) << 8 | Int(address.ip[3]) : -1
    }

    static func name(of index: Int) -> String { "n\(index)" }

    static func index(ofName name: String) -> Int { Int(name.dropFirst()) ?? -1 }

    /// Runs the whole scenario; `progress` is called with the fraction of virtual time done.
    public mutating func run(progress: (Double) -> Void = { _ in }) -> SimulationReport {
        setUp()
        let end = Instant(nanoseconds: Int64(configuration.rounds) * Int64(configuration.roundMilliseconds) * 1_000_000)
        var reported = -1
        while let event = queue.pop(), event.time <= end {
            now = event.time
            handle(event.kind)
            let percent = Int(now.nanoseconds * 100 / max(1, end.nanoseconds))
            if percent != reported {
                reported = percent
                progress(Double(percent) / 100)
            }
        }
        now = end
        progress(1)
        return report()
    }

    // MARK: - Set-up

    private mutating func setUp() {
        let count = configuration.nodes
        addresses = (0..<count).map(Self.address(of:))
        nodes.reserveCapacity(count)
        for index in 0..<count {
            let replication = Replication(
                localName: Self.name(of: index), settings: replicationSettings, seed: mix(configuration.seed, UInt64(index), 1))
            nodes.append(SimulatedNode(replication: replication))
        }
        let roundNanoseconds = Int64(configuration.roundMilliseconds) * 1_000_000
        for index in 0..<count {
            // Anti-entropy timers start at random phases, as on real nodes.
            schedule(.antiEntropy(index), at: Instant(nanoseconds: Int64.random(in: 0..<roundNanoseconds, using: &random)))
        }
        if configuration.membership { startMembership() }
        let first = configuration.firstUpdateMilliseconds ?? (configuration.membership ? count + 3 * configuration.roundMilliseconds : 0)
        for update in 0..<configuration.updates {
            let at = Int64(first) + Int64(update) * Int64(configuration.updateSpacingMilliseconds)
            schedule(.write(update), at: Instant(nanoseconds: at * 1_000_000))
        }
        writtenAt = Array(repeating: .zero, count: configuration.updates)
        informedAt = Array(repeating: [], count: configuration.updates)
        copies = Array(repeating: 0, count: configuration.updates)
        if configuration.crashes > 0 {
            schedule(.crashSome, at: Instant(nanoseconds: Int64(configuration.crashAtMilliseconds) * 1_000_000))
        }
        if configuration.partitionFraction > 0 {
            schedule(.partition(true), at: Instant(nanoseconds: Int64(configuration.partitionAtMilliseconds) * 1_000_000))
            schedule(.partition(false), at: Instant(nanoseconds: Int64(configuration.healAtMilliseconds) * 1_000_000))
        }
        if configuration.churnPerRound > 0 {
            schedule(.churn, at: Instant(nanoseconds: roundNanoseconds))
        }
    }

    private mutating func startMembership() {
        var settings = MembershipSettings.lan
        settings.probeInterval = .milliseconds(configuration.roundMilliseconds)
        for index in nodes.indices {
            var machine = Membership(
                name: Self.name(of: index), address: addresses[index], settings: settings,
                seed: mix(configuration.seed, UInt64(index), 2), now: now)
            let start = machine.start(now: now)
            nodes[index].membership = machine
            apply(start, at: index)
        }
        // Everyone joins through node 0, one node per millisecond.
        for index in 1..<nodes.count {
            schedule(.join(index), at: Instant(nanoseconds: Int64(index) * 1_000_000))
        }
    }

    // MARK: - Events

    private mutating func handle(_ kind: EventKind) {
        switch kind {
        case .antiEntropy(let index):
            guard nodes[index].isUp else { return }
            let peers = peers(of: index)
            let wall = wallMilliseconds
            apply(nodes[index].replication.antiEntropyTimerFired(peers: peers, wallMilliseconds: wall), at: index)
        case .pullRetry(let index):
            guard nodes[index].isUp else { return }
            let peers = peers(of: index)
            apply(nodes[index].replication.pullRetryTimerFired(peers: peers), at: index)
        case .replication(let to, let message):
            deliver(message, to: to)
        case .membershipTimer(let index, let timer):
            guard nodes[index].isUp else { return }
            let directives = nodes[index].membership!.timerFired(timer, now: now)
            apply(directives, at: index)
        case .membershipMessage(let to, let message, let from):
            guard nodes[to].isUp else { return }
            let directives = nodes[to].membership!.receive(message, from: addresses[from], now: now)
            apply(directives, at: to)
        case .join(let index):
            guard nodes[index].isUp else { return }
            let directives = nodes[index].membership!.join(seeds: [addresses[0]], now: now)
            apply(directives, at: index)
        case .write(let update):
            write(update)
        case .crashSome:
            crashSome()
        case .restart(let index):
            restart(index)
        case .partition(let on):
            partitioned = on
        case .churn:
            churn()
        }
    }

    private mutating func write(_ update: Int) {
        var writer = Int.random(in: 0..<nodes.count, using: &random)
        while !nodes[writer].isUp { writer = (writer + 1) % nodes.count }
        let key = "update/\(update)"
        updateKeys[key] = update
        writtenAt[update] = now
        informedAt[update] = Array(repeating: -1, count: nodes.count)
        informedAt[update][writer] = 0
        let peers = peers(of: writer)
        guard
            let (_, directives) = try? nodes[writer].replication.write(
                key: key, value: Array("value \(update)".utf8), wallMilliseconds: wallMilliseconds, peers: peers)
        else { return }
        apply(directives, at: writer)
    }

    private mutating func deliver(_ message: ReplicationMessage, to index: Int) {
        guard nodes[index].isUp else { return }
        let wall = wallMilliseconds
        switch message {
        case .push(let entries, let hops, let after, let from):
            count(entries)
            let directives = nodes[index].replication.receivePush(
                entries, hops: hops, after: after, from: addresses[from], wallMilliseconds: wall, peers: peers(of: index))
            apply(directives, at: index)
        case .pullRequest(let digest, let held, let from):
            let answer = nodes[index].replication.answerPull(digest: digest, held: held, from: Self.name(of: from))
            send(
                .pullAnswer(entries: answer.entries, digest: answer.digest, held: answer.held, from: index, solicited: true),
                to: from, from: index)
        case .pullAnswer(let entries, let digest, let held, let from, let solicited):
            count(entries)
            let directives = nodes[index].replication.receivePullAnswer(
                entries: entries, digest: digest, held: held, from: Self.name(of: from),
                replyingTo: solicited ? addresses[from] : nil, wallMilliseconds: wall)
            apply(directives, at: index)
        }
    }

    /// Counts payload copies of the tracked updates delivered to a node.
    private mutating func count(_ entries: [Entry]) {
        for entry in entries {
            if let update = updateKeys[entry.key] { copies[update] += 1 }
        }
    }

    private mutating func crashSome() {
        var chosen = Set<Int>()
        while chosen.count < configuration.crashes {
            chosen.insert(Int.random(in: 0..<nodes.count, using: &random))
        }
        for index in chosen.sorted() { crash(index) }
    }

    private mutating func crash(_ index: Int) {
        guard nodes[index].isUp else { return }
        nodes[index].isUp = false
        crashedAt[index] = now
        if let after = configuration.restartAfterMilliseconds {
            schedule(.restart(index), at: now + .milliseconds(after))
        }
    }

    private mutating func restart(_ index: Int) {
        guard !nodes[index].isUp else { return }
        nodes[index].isUp = true
        crashedAt[index] = nil
        schedule(.antiEntropy(index), at: now + .milliseconds(configuration.roundMilliseconds))
        if configuration.membership {
            var settings = MembershipSettings.lan
            settings.probeInterval = .milliseconds(configuration.roundMilliseconds)
            var machine = Membership(
                name: Self.name(of: index), address: addresses[index], settings: settings,
                seed: mix(configuration.seed, UInt64(index), now.nanoseconds.magnitude), now: now)
            let start = machine.start(now: now)
            nodes[index].membership = machine
            nodes[index].peersValid = false
            apply(start, at: index)
            let seed = index == 0 ? 1 : 0
            apply(nodes[index].membership!.join(seeds: [addresses[seed]], now: now), at: index)
        }
    }

    private mutating func churn() {
        let live = nodes.indices.filter { nodes[$0].isUp }
        let count = Int((Double(live.count) * configuration.churnPerRound).rounded())
        for _ in 0..<count {
            let index = live[Int.random(in: 0..<live.count, using: &random)]
            guard nodes[index].isUp else { continue }
            nodes[index].isUp = false
            schedule(.restart(index), at: now + .milliseconds(configuration.churnDownMilliseconds))
        }
        schedule(.churn, at: now + .milliseconds(configuration.roundMilliseconds))
    }

    // MARK: - Directives

    private mutating func apply(_ directives: [ReplicationDirective], at index: Int) {
        for directive in directives {
            switch directive {
            case .push(let entries, let hops, _, let after, let to):
                send(.push(entries: entries, hops: hops, after: after, from: index), to: Self.index(of: to), from: index)
            case .pull(let from, let digest, let held):
                send(.pullRequest(digest: digest, held: held, from: index), to: Self.index(of: from), from: index)
            case .sendDelta(let entries, let digest, let to):
                send(
                    .pullAnswer(entries: entries, digest: digest, held: [:], from: index, solicited: false),
                    to: Self.index(of: to), from: index)
            case .startAntiEntropyTimer(let delay):
                schedule(.antiEntropy(index), at: now + delay)
            case .startPullRetryTimer(let delay):
                schedule(.pullRetry(index), at: now + delay)
            case .applied(let entries):
                for entry in entries {
                    guard let update = updateKeys[entry.key], informedAt[update][index] < 0 else { continue }
                    informedAt[update][index] = (now - writtenAt[update]).nanosecondsClamped
                }
            case .acknowledge, .expired, .forgot:
                break
            }
        }
    }

    private mutating func apply(_ directives: [MembershipDirective], at index: Int) {
        for directive in directives {
            switch directive {
            case .send(let to, let messages, _):
                let target = Self.index(of: to)
                membershipMessages += 1
                membershipBytes += messages.reduce(0) { $0 + $1.estimatedWireSize }
                guard target >= 0, target < nodes.count, reachable(index, target), !lost() else { continue }
                let arrival = now + latency()
                for message in messages {
                    schedule(.membershipMessage(to: target, message, from: index), at: arrival)
                }
            case .startTimer(let timer, let delay):
                schedule(.membershipTimer(index, timer), at: now + delay)
            case .pushPull(let to, let state):
                let target = Self.index(of: to)
                membershipMessages += 2
                membershipBytes += 2 * state.nodes.count * 60
                guard target >= 0, target < nodes.count, nodes[target].isUp, reachable(index, target) else { continue }
                let (reply, remote) = nodes[target].membership!.receivePushPull(state, from: addresses[index], now: now)
                apply(remote, at: target)
                let local = nodes[index].membership!.receivePushPullReply(reply, from: to, now: now)
                apply(local, at: index)
            case .streamPing(let to, let ping, _):
                let target = Self.index(of: to)
                let contacted = target >= 0 && target < nodes.count && nodes[target].isUp && reachable(index, target)
                nodes[index].membership!.streamPingFinished(sequence: ping.sequenceNumber, contacted: contacted, now: now)
            case .event(let event):
                nodes[index].peersValid = false
                record(event, seenBy: index)
            case .deliver, .conflict, .leaveCompleted:
                break
            }
        }
    }

    private mutating func record(_ event: MemberEvent, seenBy observer: Int) {
        guard event.kind == .failed else { return }
        let subject = Self.index(ofName: event.member.name)
        guard let crashed = crashedAt[subject] else {
            falsePositives += 1
            return
        }
        if firstDetection[subject] == nil { firstDetection[subject] = now }
        _ = crashed
        detections[subject, default: []].insert(observer)
        let live = nodes.indices.count { nodes[$0].isUp }
        if allDetected[subject] == nil, detections[subject]!.count >= live {
            allDetected[subject] = now
        }
    }

    // MARK: - Network

    private mutating func send(_ message: ReplicationMessage, to target: Int, from source: Int) {
        guard target >= 0, target < nodes.count, target != source else { return }
        messages += 1
        let size = message.wireSize(from: Self.name(of: source))
        bytes += size
        // As in the agent: frames that fit a packet go by UDP (and may be lost), larger ones by TCP.
        let datagram = size <= replicationSettings.packetPushBytes + 28
        guard reachable(source, target), !datagram || !lost() else { return }
        schedule(.replication(to: target, message), at: now + latency())
    }

    private func reachable(_ a: Int, _ b: Int) -> Bool {
        guard partitioned else { return true }
        let cut = Int(Double(nodes.count) * configuration.partitionFraction)
        return (a < cut) == (b < cut)
    }

    private mutating func lost() -> Bool {
        configuration.loss > 0 && Double.random(in: 0..<1, using: &random) < configuration.loss
    }

    private mutating func latency() -> Duration {
        let mean = Double(configuration.latencyMeanExtraMicroseconds)
        let uniform = Double.random(in: Double.ulpOfOne..<1, using: &random)
        let tail = mean > 0 ? -mean * Self.naturalLog(uniform) : 0
        return .microseconds(configuration.latencyMinimumMicroseconds) + .nanoseconds(Int64(tail * 1_000))
    }

    /// ln(x) for 0 < x ≤ 1 without Foundation: argument reduction by powers of two, then the
    /// atanh series (ample precision for latency draws).
    static func naturalLog(_ x: Double) -> Double {
        var mantissa = x
        var exponent = 0.0
        while mantissa < 0.5 {
            mantissa *= 2
            exponent -= 1
        }
        let y = (mantissa - 1) / (mantissa + 1)
        let y2 = y * y
        var term = y
        var sum = 0.0
        var n = 1.0
        while abs(term / n) > 1e-12 {
            sum += term / n
            term *= y2
            n += 2
        }
        return 2 * sum + exponent * 0.693_147_180_559_945_3
    }

    private mutating func peers(of index: Int) -> [NodeAddress] {
        guard configuration.membership, let view = nodes[index].membership else { return addresses }
        if !nodes[index].peersValid {
            nodes[index].peers = view.members.values
                .filter { $0.state == .alive && $0.name != view.localMember.name }
                .map(\.address)
                .sorted { Self.index(of: $0) < Self.index(of: $1) }
            nodes[index].peersValid = true
        }
        return nodes[index].peers
    }

    private var wallMilliseconds: UInt64 {
        // A fixed epoch keeps hybrid timestamps, hence reports, identical across runs.
        1_800_000_000_000 + UInt64(now.nanoseconds / 1_000_000)
    }

    private mutating func schedule(_ kind: EventKind, at time: Instant) {
        queue.push(time: time, kind: kind)
    }

    // MARK: - Report

    private func report() -> SimulationReport {
        let roundNanoseconds = Double(configuration.roundMilliseconds) * 1e6
        var updates: [SimulationReport.Update] = []
        for update in 0..<configuration.updates where !informedAt[update].isEmpty {
            // Nodes that were up at the end are the ones that should know.
            var times = nodes.indices.filter { nodes[$0].isUp }.map { informedAt[update][$0] }
            let total = times.count
            times = times.filter { $0 >= 0 }.sorted()
            func reach(_ fraction: Double) -> Double? {
                let needed = Int((Double(total) * fraction).rounded(.up))
                guard needed >= 1, times.count >= needed else { return nil }
                return Double(times[needed - 1]) / 1e6
            }
            let milliseconds = [0.5, 0.99, 0.999, 1.0].map(reach)
            updates.append(
                SimulationReport.Update(
                    informed: times.count, live: total,
                    millisecondsTo50: milliseconds[0], millisecondsTo99: milliseconds[1],
                    millisecondsTo999: milliseconds[2], millisecondsTo100: milliseconds[3],
                    roundsTo50: milliseconds[0].map { ($0 * 1e6 / roundNanoseconds).rounded(.up) },
                    roundsTo99: milliseconds[1].map { ($0 * 1e6 / roundNanoseconds).rounded(.up) },
                    roundsTo999: milliseconds[2].map { ($0 * 1e6 / roundNanoseconds).rounded(.up) },
                    roundsTo100: milliseconds[3].map { ($0 * 1e6 / roundNanoseconds).rounded(.up) },
                    copiesPerNode: Double(copies[update]) / Double(nodes.count)))
        }
        let seconds = Double(configuration.rounds) * Double(configuration.roundMilliseconds) / 1000
        let perNodeSecond = 1 / (Double(nodes.count) * seconds)
        var failures: SimulationReport.Failures?
        if configuration.membership {
            let crashed = crashedAt.keys.sorted()
            let first = crashed.compactMap { index in firstDetection[index].map { Double(($0 - crashedAt[index]!).nanosecondsClamped) / 1e6 } }
            let all = crashed.compactMap { index in allDetected[index].map { Double(($0 - crashedAt[index]!).nanosecondsClamped) / 1e6 } }
            failures = SimulationReport.Failures(
                crashed: crashed.count, detected: first.count, allAware: all.count,
                firstDetectionMilliseconds: SimulationReport.Summary(first), allAwareMilliseconds: SimulationReport.Summary(all),
                falsePositives: falsePositives)
        }
        return SimulationReport(
            configuration: configuration,
            updates: updates,
            curve: curve(),
            replicationMessagesPerNodePerSecond: Double(messages) * perNodeSecond,
            replicationBytesPerNodePerSecond: Double(bytes) * perNodeSecond,
            membershipMessagesPerNodePerSecond: Double(membershipMessages) * perNodeSecond,
            membershipBytesPerNodePerSecond: Double(membershipBytes) * perNodeSecond,
            failures: failures)
    }

    /// Fraction of live nodes informed against time since the write, averaged over updates, at
    /// 200 points up to the moment the last node was informed.
    private func curve() -> [SimulationReport.Point] {
        let live = nodes.indices.filter { nodes[$0].isUp }
        let tracked = informedAt.filter { !$0.isEmpty }
        guard !tracked.isEmpty, !live.isEmpty else { return [] }
        let sorted = tracked.map { times in live.map { times[$0] }.filter { $0 >= 0 }.sorted() }
        let last = sorted.compactMap(\.last).max() ?? 0
        let steps = 200
        return (0...steps).map { step in
            let time = Int64(Double(last) * Double(step) / Double(steps))
            let fraction =
                sorted.reduce(0.0) { sum, times in
                    sum + Double(Self.countAtOrBefore(time, in: times)) / Double(live.count)
                } / Double(sorted.count)
            return SimulationReport.Point(milliseconds: Double(time) / 1e6, informed: fraction)
        }
    }

    static func countAtOrBefore(_ value: Int64, in sorted: [Int64]) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// One node of the simulation: the real protocol machines plus whether it runs.
struct SimulatedNode {
    var replication: Replication
    var membership: Membership?
    var isUp = true
    /// Replication peers from the membership view, rebuilt after membership events.
    var peers: [NodeAddress] = []
    var peersValid = false
}

/// Replication traffic in flight; sizes are those of the real frames.
enum ReplicationMessage {
    case push(entries: [Entry], hops: Int, after: HybridTimestamp?, from: Int)
    case pullRequest(digest: [String: HybridTimestamp], held: [String: [HybridTimestamp]], from: Int)
    case pullAnswer(
        entries: [Entry], digest: [String: HybridTimestamp], held: [String: [HybridTimestamp]], from: Int, solicited: Bool)

    func wireSize(from name: String) -> Int {
        let frame: ReplicationFrame
        switch self {
        case .push(let entries, let hops, let after, _): frame = .push(entries: entries, hops: hops, acknowledge: false, after: after)
        case .pullRequest(let digest, let held, _): frame = .pullRequest(from: name, digest: digest, held: held)
        case .pullAnswer(let entries, let digest, let held, _, _):
            frame = .pullAnswer(from: name, entries: entries, digest: digest, held: held)
        }
        return ReplicationCodec.encodedSize(frame) + 28  // IP + UDP headers (streams: TCP framing is similar)
    }
}

enum EventKind {
    case antiEntropy(Int)
    case pullRetry(Int)
    case replication(to: Int, ReplicationMessage)
    case membershipTimer(Int, MembershipTimer)
    case membershipMessage(to: Int, Message, from: Int)
    case join(Int)
    case write(Int)
    case crashSome
    case restart(Int)
    case partition(Bool)
    case churn
}

/// A binary min-heap of events by (time, insertion order): ties resolve in the order scheduled,
/// which keeps runs deterministic. The heap holds plain (time, order, slot) triples; the events
/// themselves wait in a slab, so sifting moves no reference-counted payloads.
struct EventQueue {
    struct Item {
        var time: Int64
        var order: UInt64
        var slot: Int32
    }

    private var heap: [Item] = []
    private var slab: [EventKind?] = []
    private var freeSlots: [Int32] = []
    private var order: UInt64 = 0

    var count: Int { heap.count }

    mutating func push(time: Instant, kind: EventKind) {
        order += 1
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            slab[Int(free)] = kind
        } else {
            slot = Int32(slab.count)
            slab.append(kind)
        }
        heap.append(Item(time: time.nanoseconds, order: order, slot: slot))
        var child = heap.count - 1
        let item = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(item, heap[parent]) else { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = item
    }

    mutating func pop() -> (time: Instant, kind: EventKind)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            var parent = 0
            let count = heap.count
            while true {
                let left = 2 * parent + 1
                guard left < count else { break }
                var child = left
                if left + 1 < count, Self.before(heap[left + 1], heap[left]) { child = left + 1 }
                guard Self.before(heap[child], last) else { break }
                heap[parent] = heap[child]
                parent = child
            }
            heap[parent] = last
        }
        let kind = slab[Int(top.slot)].take()!
        freeSlots.append(top.slot)
        return (Instant(nanoseconds: top.time), kind)
    }

    private static func before(_ a: Item, _ b: Item) -> Bool {
        a.time < b.time || (a.time == b.time && a.order < b.order)
    }
}

/// SplitMix64 of three values: independent seeds per node and purpose.
func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
    var z = a &+ b &* 0x9E37_79B9_7F4A_7C15 &+ c &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
