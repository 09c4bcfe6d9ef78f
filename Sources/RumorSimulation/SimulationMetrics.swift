import RumorCore

/// What a simulation measures as it runs: when each tracked update reached each node, payload
/// copies, traffic, and failure detection.
struct SimulationMetrics: ClusterObserver {
    typealias Script = Simulation.Script

    var updateKeys: [String: Int] = [:]
    var writtenAt: [Instant]
    /// Per update, the node that wrote it.
    var writers: [Int]
    var informedAt: [[Int64]]  // per update, per node: ns after the write, or -1
    var copies: [Int]
    var messages = 0
    var bytes = 0
    /// Bytes of acknowledgement frames: the broadcast tree's confirmations (and `--wait` acks).
    var acknowledgementBytes = 0
    var membershipMessages = 0
    var membershipBytes = 0
    /// Traffic from `steadyFrom` on (after the warm-up), when set.
    var steadyFrom: Instant?
    var steady = (messages: 0, bytes: 0, membershipMessages: 0, membershipBytes: 0)
    /// Push-pull exchanges offered to crashed nodes (reconnect attempts at dead addresses).
    var exchangesWithCrashed = 0
    var steadyExchangesWithCrashed = 0
    /// Membership bytes and messages each node sent (datagrams, and its side of push-pulls).
    var bytesSent: [Int]
    var messagesSent: [Int]
    /// When every live node first listed every other alive after the joins, and after the heal.
    var wholeAfterJoin: Instant?
    var wholeAfterHeal: Instant?
    /// Nodes up now.
    var live = 0
    var crashedAt: [Int: Instant] = [:]
    var firstDetection: [Int: Instant] = [:]
    var detections: [Int: Set<Int>] = [:]
    var allDetected: [Int: Instant] = [:]
    var falsePositives = 0
    /// Nodes restarted.
    var restarts = 0
    /// Nodes whose clocks were set wrong (`clockSkewFraction`), and writes refused by a fenced
    /// writer (each then tried at the next node).
    var skewed: Set<Int> = []
    var refusedWrites = 0
    /// Per update, the version its writer gave it; the updates acknowledged (written, and held
    /// by `writeAcknowledgements` other nodes when that is set); the wait of each update.
    var written: [Int: Version] = [:]
    var acknowledged: Set<Int> = []
    var writeCommands: [CommandID: Int] = [:]
    /// Per update not yet acknowledged (without membership), how many more nodes must receive it.
    var holdersAwaited: [Int: Int] = [:]

    init(updates: Int, nodes: Int) {
        bytesSent = Array(repeating: 0, count: nodes)
        messagesSent = Array(repeating: 0, count: nodes)
        writtenAt = Array(repeating: .zero, count: updates)
        writers = Array(repeating: 0, count: updates)
        informedAt = Array(repeating: [], count: updates)
        copies = Array(repeating: 0, count: updates)
    }

    mutating func track(_ update: Int, key: String, writer: Int, nodes: Int, now: Instant) {
        updateKeys[key] = update
        writtenAt[update] = now
        writers[update] = writer
        informedAt[update] = Array(repeating: -1, count: nodes)
        informedAt[update][writer] = 0
    }

    mutating func sent(_ datagram: Datagram, size: Int, from: Int, to: Int, now: Instant) {
        let steady = steadyFrom.map { now >= $0 } ?? false
        switch datagram {
        case .membership:
            membershipMessages += 1
            membershipBytes += size
            bytesSent[from] += size
            messagesSent[from] += 1
            if steady {
                self.steady.membershipMessages += 1
                self.steady.membershipBytes += size
            }
        case .replication(let frame):
            messages += 1
            bytes += size
            if case .acknowledgement = frame { acknowledgementBytes += size }
            if steady {
                self.steady.messages += 1
                self.steady.bytes += size
            }
        }
    }

    mutating func exchanged(_ state: PushPull, reply: PushPull?, from: Int, to: Int, now: Instant) {
        // About 60 bytes per member record (name, address, meta, versions).
        let request = state.nodes.count * 60
        let answer = (reply?.nodes.count ?? 0) * 60
        membershipMessages += 2
        membershipBytes += request + answer
        if steadyFrom.map({ now >= $0 }) ?? false {
            steady.membershipMessages += 2
            steady.membershipBytes += request + answer
        }
        bytesSent[from] += request
        messagesSent[from] += 1
        if reply != nil {
            bytesSent[to] += answer
            messagesSent[to] += 1
        }
        if crashedAt[to] != nil {
            exchangesWithCrashed += 1
            if steadyFrom.map({ now >= $0 }) ?? false { steadyExchangesWithCrashed += 1 }
        }
    }

    /// Counts payload copies of tracked updates delivered to a node (pushes and pull answers
    /// that arrive, redundant ones included; lost ones and catch-up pages are not counted), and
    /// notes when it first holds each: the first copy a node gets is news it applies (every
    /// simulated write is valid).
    mutating func received(_ messages: [NodeMessage], at index: Int, now: Instant) {
        guard !updateKeys.isEmpty else { return }
        for message in messages {
            let entries: [Entry]
            switch message {
            case .replication(.push(let pushed, _, _, _)): entries = pushed
            case .replication(.pullAnswer(_, _, let answered, _, _, _)): entries = answered
            default: continue
            }
            for entry in entries {
                guard let update = updateKeys[entry.key] else { continue }
                copies[update] += 1
                if informedAt[update][index] < 0 {
                    informedAt[update][index] = (now - writtenAt[update]).nanosecondsClamped
                    if let awaited = holdersAwaited[update] {
                        holdersAwaited[update] = awaited > 1 ? awaited - 1 : nil
                        if awaited == 1 { acknowledged.insert(update) }
                    }
                }
            }
        }
    }

    mutating func completed(_ command: CommandID, _ result: CommandResult, at index: Int, now: Instant) {
        guard let update = writeCommands.removeValue(forKey: command) else { return }
        if case .replicated = result { acknowledged.insert(update) }
    }

    mutating func memberEvent(_ event: MemberEvent, at observer: Int, now: Instant) {
        guard event.kind == .failed else { return }
        let subject = VirtualCluster<Self>.index(ofName: event.member.name)
        guard crashedAt[subject] != nil else {
            falsePositives += 1
            return
        }
        if firstDetection[subject] == nil { firstDetection[subject] = now }
        detections[subject, default: []].insert(observer)
        if allDetected[subject] == nil, detections[subject]!.count >= live {
            allDetected[subject] = now
        }
    }
}

extension Simulation {

    func report() -> SimulationReport {
        let roundNanoseconds = Double(configuration.roundMilliseconds) * 1e6
        var updates: [SimulationReport.Update] = []
        let liveNodes = cluster.isUp.indices.filter { cluster.isUp[$0] }
        var limits: [Int: PhysicalLimit] = [:]  // by writer
        var allExact = true
        for update in 0..<configuration.updates where !cluster.observer.informedAt[update].isEmpty {
            let writer = cluster.observer.writers[update]
            let limit =
                limits[writer]
                ?? PhysicalLimit(writer: writer, targets: liveNodes, nodes: configuration.nodes, network: cluster.network)
            limits[writer] = limit
            allExact = allExact && limit.isExact
            // Nodes that were up at the end are the ones that should know.
            var times = cluster.isUp.indices.filter { cluster.isUp[$0] }.map { cluster.observer.informedAt[update][$0] }
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
                    copiesPerNode: Double(cluster.observer.copies[update]) / Double(configuration.nodes),
                    limitMilliseconds: Double(limit.floor.nanosecondsClamped) / 1e6,
                    directSendMilliseconds: Double(limit.directSend.nanosecondsClamped) / 1e6))
        }
        let seconds = Double(configuration.rounds) * Double(configuration.roundMilliseconds) / 1000
        let perNodeSecond = 1 / (Double(configuration.nodes) * seconds)
        var failures: SimulationReport.Failures?
        if configuration.membership {
            let crashed = cluster.observer.crashedAt.keys.sorted()
            let first = crashed.compactMap { index in cluster.observer.firstDetection[index].map { Double(($0 - cluster.observer.crashedAt[index]!).nanosecondsClamped) / 1e6 } }
            let all = crashed.compactMap { index in cluster.observer.allDetected[index].map { Double(($0 - cluster.observer.crashedAt[index]!).nanosecondsClamped) / 1e6 } }
            failures = SimulationReport.Failures(
                crashed: crashed.count, detected: first.count, allAware: all.count,
                firstDetectionMilliseconds: SimulationReport.Summary(first), allAwareMilliseconds: SimulationReport.Summary(all),
                falsePositives: cluster.observer.falsePositives,
                pushPullsToCrashedPerSecond: crashedPerSecond(),
                pushPullsToCrashedPerSecondAfterWarmup: crashedPerSecond(afterWarmup: true))
        }
        return SimulationReport(
            configuration: configuration,
            updates: updates,
            physicalLimit: SimulationReport.Limits(updates, exact: allExact),
            curve: curve(),
            replicationMessagesPerNodePerSecond: Double(cluster.observer.messages) * perNodeSecond,
            replicationBytesPerNodePerSecond: Double(cluster.observer.bytes) * perNodeSecond,
            acknowledgementBytesPerNodePerUpdate: configuration.updates == 0
                ? 0 : Double(cluster.observer.acknowledgementBytes) / Double(configuration.nodes * configuration.updates),
            membershipMessagesPerNodePerSecond: Double(cluster.observer.membershipMessages) * perNodeSecond,
            membershipBytesPerNodePerSecond: Double(cluster.observer.membershipBytes) * perNodeSecond,
            failures: failures,
            steadyState: steadyState(),
            swarm: swarm(),
            endState: endState(), clocks: clocks())
    }

    /// Which nodes ended beyond the clock bound and which fenced; nil when no clock was skewed.
    private func clocks() -> SimulationReport.Clocks? {
        guard configuration.clockSkewFraction > 0 else { return nil }
        let live = cluster.isUp.indices.filter { cluster.isUp[$0] }
        let bound = Int64(cluster.nodes[0].settings.replication.maximumClockOffset.nanosecondsClamped / 1_000_000)
        let beyond = Set(live.filter { abs(cluster.clocks[$0].offset(at: cluster.now)) > bound })
        let fenced = Set(live.filter { cluster.nodes[$0].clockVerdict(at: cluster.time(of: $0)).isFenced })
        return SimulationReport.Clocks(
            skewed: cluster.observer.skewed.count, beyondBound: beyond.count, fenced: fenced.count,
            fencedWithinBound: fenced.subtracting(beyond).count, beyondBoundNotFenced: beyond.subtracting(fenced).count,
            refusedWrites: cluster.observer.refusedWrites)
    }

    /// Whether the live nodes ended equal and holding every acknowledged write.
    private func endState() -> SimulationReport.EndState {
        let live = cluster.isUp.indices.filter { cluster.isUp[$0] }
        let metrics = cluster.observer
        let lost = metrics.acknowledged.filter { update in
            guard let version = metrics.written[update] else { return false }
            return live.contains { index in
                let held = cluster.nodes[index].replication.store.entries["update/\(update)"]?.version
                return held.map { $0 < version } ?? true
            }
        }
        return SimulationReport.EndState(
            restarts: metrics.restarts, acknowledgedWrites: metrics.acknowledged.count, acknowledgedWritesLost: lost.count,
            distinctStates: Set(live.map { cluster.nodes[$0].replication.store.fingerprint }).count)
    }

    /// Push-pull offers each crashed node received per second while it was down (reconnect
    /// attempts at a dead address); nil without crashes.
    private func crashedPerSecond(afterWarmup: Bool = false) -> Double? {
        let end = Int64(configuration.rounds) * Int64(configuration.roundMilliseconds) * 1_000_000
        let from = afterWarmup ? (cluster.observer.steadyFrom?.nanoseconds ?? .max) : 0
        guard from < end else { return nil }
        let down = cluster.observer.crashedAt.values.reduce(0.0) { $0 + Double(end - max(from, $1.nanoseconds)) / 1e9 }
        let offers = afterWarmup ? cluster.observer.steadyExchangesWithCrashed : cluster.observer.exchangesWithCrashed
        return down > 0 ? Double(offers) / down : nil
    }

    /// How the membership came together; nil without `--membership`.
    private func swarm() -> SimulationReport.Swarm? {
        guard configuration.membership else { return nil }
        let metrics = cluster.observer
        let heal = Instant(nanoseconds: Int64(configuration.healAtMilliseconds) * 1_000_000)
        return SimulationReport.Swarm(
            wholeAfterJoinMilliseconds: metrics.wholeAfterJoin.map { Double($0.nanoseconds) / 1e6 },
            wholeAfterHealMilliseconds: metrics.wholeAfterHeal.map { Double(($0 - heal).nanosecondsClamped) / 1e6 },
            seedBytesSent: metrics.bytesSent[0],
            averageBytesSent: Double(metrics.bytesSent.reduce(0, +)) / Double(configuration.nodes),
            seedMessagesSent: metrics.messagesSent[0],
            averageMessagesSent: Double(metrics.messagesSent.reduce(0, +)) / Double(configuration.nodes))
    }

    /// Traffic after the warm-up, per node per second; nil without a warm-up.
    private func steadyState() -> SimulationReport.Traffic? {
        guard let warmup = configuration.warmupRounds else { return nil }
        let seconds = Double(configuration.rounds - warmup) * Double(configuration.roundMilliseconds) / 1000
        let scale = 1 / (Double(configuration.nodes) * seconds)
        let steady = cluster.observer.steady
        return SimulationReport.Traffic(
            afterRounds: warmup, replicationMessagesPerNodePerSecond: Double(steady.messages) * scale,
            replicationBytesPerNodePerSecond: Double(steady.bytes) * scale,
            membershipMessagesPerNodePerSecond: Double(steady.membershipMessages) * scale,
            membershipBytesPerNodePerSecond: Double(steady.membershipBytes) * scale)
    }

    /// Fraction of live nodes informed against time since the write, averaged over updates, at
    /// 200 points up to the moment the last node was informed.
    private func curve() -> [SimulationReport.Point] {
        let live = cluster.isUp.indices.filter { cluster.isUp[$0] }
        let tracked = cluster.observer.informedAt.filter { !$0.isEmpty }
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
