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
    /// Updates written, one every `updateSpacingMilliseconds` from `firstUpdateMilliseconds`
    /// (default: at once, or once every node has joined with `membership`), by random live nodes.
    public var updates = 1
    public var updateSpacingMilliseconds = 100
    public var firstUpdateMilliseconds: Int?
    /// One-way latency: `latencyMinimumMicroseconds` plus an exponential tail of this mean.
    public var latencyMinimumMicroseconds = 200
    public var latencyMeanExtraMicroseconds = 300
    /// Regions: base one-way latency between them, µs (`[r][s]`, symmetric; `[r][r]` within
    /// region r), replacing `latencyMinimumMicroseconds`. Nodes are spread evenly over the
    /// regions in a seeded random order. nil: one place.
    public var regionLatencyMicroseconds: [[Int]]?
    /// Mean of the latency tail as a fraction of the pair's base (0.5: a "50 % jitter tail"),
    /// replacing `latencyMeanExtraMicroseconds`; nil: that absolute mean.
    public var jitter: Double?
    /// 0 ≤ a < 1: a pair's base is scaled by 1 + a·u one way and 1 − a·u the other, u uniform
    /// in [−1, 1) from a seeded hash of the pair (its round trip stays twice the base).
    public var asymmetry = 0.0
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
    /// Traffic is also reported for the rounds after this many (the steady state, without the
    /// join phase); nil reports only the whole run.
    public var warmupRounds: Int?
    /// Fraction of live nodes that crash and restart (after `churnDownMilliseconds`) each round.
    public var churnPerRound = 0.0
    public var churnDownMilliseconds = 3_000
    /// The last round in which churn crashes nodes (nil: every round); the rounds after it let
    /// the swarm settle, so the report's end-state checks mean something.
    public var churnUntilRound: Int?
    /// What a restarted node starts from.
    public var restartState = RestartState.kept
    /// A write counts as acknowledged once this many other nodes hold it: with `membership` the
    /// writer waits for them (`put --wait N+1`); without it (no member list to count) the
    /// observer counts the nodes that received it. 0: acknowledged when written locally.
    public var writeAcknowledgements = 0
    /// Fraction of nodes whose wall clock goes wrong at `clockSkewAtMilliseconds`: each is set
    /// to a random offset within ±`clockSkewMaximumMilliseconds`, drifting up to ±0.05 ms/s, and
    /// steps once more to another random offset at a random time in the run's second half.
    public var clockSkewFraction = 0.0
    public var clockSkewMaximumMilliseconds = 7_200_000
    public var clockSkewAtMilliseconds = 5_000

    /// What a restarted node starts from.
    public enum RestartState: String, Sendable, Hashable, Codable, CaseIterable {
        /// Everything it held when it stopped (a current `--data-dir`).
        case kept
        /// Nothing (no data dir).
        case empty
        /// What it held a few rounds before it stopped (a stale copy of a data dir).
        case stale
        /// Each restart draws one of the three.
        case mixed
    }

    public init() {}

    /// The first problem with these settings, if any.
    public func validate() throws(SimulationError) {
        func check(_ condition: Bool, _ message: String) throws(SimulationError) {
            if !condition { throw SimulationError(message: message) }
        }
        try check(nodes >= 2 && nodes <= 1_000_000, "nodes must be 2...1,000,000")
        try check(!membership || nodes <= 5_000, "--membership runs one SWIM machine per node and holds N² member records; use at most 5,000 nodes")
        try check(rounds >= 1 && rounds <= 10_000, "rounds must be 1...10,000")
        try check(warmupRounds.map { $0 >= 0 && $0 < rounds } ?? true, "the warm-up must be shorter than the run")
        try check(roundMilliseconds >= 10, "a round must last at least 10 ms")
        try check(fanout >= 1 && fanout <= 64, "fanout must be 1...64")
        try check(updates >= 0 && updates <= 10_000, "updates must be 0...10,000")
        try check(loss >= 0 && loss < 1, "loss must be in [0, 1)")
        try check(crashes >= 0 && crashes < nodes, "crashes must be fewer than the nodes")
        try check(partitionFraction >= 0 && partitionFraction < 1, "the partition fraction must be in [0, 1)")
        try check(churnPerRound >= 0 && churnPerRound < 1, "churn must be in [0, 1)")
        try check(writeAcknowledgements >= 0 && writeAcknowledgements < nodes, "write acknowledgements must be 0...nodes-1")
        try check(clockSkewFraction >= 0 && clockSkewFraction < 1, "the clock-skew fraction must be in [0, 1)")
        try check(clockSkewFraction == 0 || membership, "clock offsets are measured between members: --clock-skew needs --membership")
        try check(clockSkewMaximumMilliseconds >= 0, "the clock skew must not be negative")
        try check(latencyMinimumMicroseconds >= 0 && latencyMeanExtraMicroseconds >= 0, "latencies must not be negative")
        if let matrix = regionLatencyMicroseconds {
            try check(matrix.count >= 1 && matrix.count <= 26, "regions must be 1...26")
            try check(matrix.allSatisfy { $0.count == matrix.count }, "the region latency matrix must be square")
            try check(matrix.allSatisfy { $0.allSatisfy { $0 >= 0 } }, "region latencies must not be negative")
            try check(
                matrix.indices.allSatisfy { r in matrix.indices.allSatisfy { matrix[r][$0] == matrix[$0][r] } },
                "region latencies are symmetric (use asymmetry for links that differ by direction)")
        }
        try check(jitter.map { $0 >= 0 && $0 <= 100 } ?? true, "jitter must be 0...10,000 %")
        try check(asymmetry >= 0 && asymmetry < 1, "asymmetry must be in [0, 1)")
    }
}

/// A simulation setting that cannot run.
public struct SimulationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Runs N real `Node`s (replication, and with `membership` SWIM + Lifeguard) on the shared
/// `VirtualCluster`, scripted by a `SimulationConfiguration`, and measures dissemination and
/// failure detection. Single-threaded and seeded: deterministic.
public struct Simulation {
    public let configuration: SimulationConfiguration
    var cluster: VirtualCluster<SimulationMetrics>

    /// What the scenario does, and when.
    enum Script {
        case join(Int)
        case write(Int)
        case crashSome
        case restart(Int)
        case partition(Bool)
        case churn
        /// Keep each live node's state as the stale copy a later restart may start from.
        case snapshot
        /// Check whether every live node lists every other alive (membership runs only).
        case checkWhole(afterHeal: Bool)
        /// Set the clocks of `clockSkewFraction` of the nodes wrong.
        case skewClocks
        /// Step node's clock to another random offset.
        case stepClock(Int)
    }

    /// How often `checkWhole` looks (virtual time).
    static let wholeCheckInterval = 100
    /// How often (in rounds) the stale copies of `RestartState.stale` are taken.
    static let snapshotRounds = 5
    /// Per node, its state as of the last `snapshot` (the stale copy a restart may start from).
    var snapshots: [Int: SavedState] = [:]

    public init(_ configuration: SimulationConfiguration) throws(SimulationError) {
        try configuration.validate()
        self.configuration = configuration
        var metrics = SimulationMetrics(updates: configuration.updates, nodes: configuration.nodes)
        metrics.steadyFrom = configuration.warmupRounds.map {
            Instant(nanoseconds: Int64($0) * Int64(configuration.roundMilliseconds) * 1_000_000)
        }
        cluster = VirtualCluster(observer: metrics, seed: configuration.seed)
        cluster.network.latencyMinimum = .microseconds(configuration.latencyMinimumMicroseconds)
        cluster.network.latencyMeanExtra = .microseconds(configuration.latencyMeanExtraMicroseconds)
        cluster.network.loss = configuration.loss
        cluster.network.jitter = configuration.jitter
        cluster.network.asymmetry = configuration.asymmetry
        cluster.network.asymmetrySeed = mix(configuration.seed, 1, Self.networkSalt)
        if let matrix = configuration.regionLatencyMicroseconds {
            cluster.network.place(
                nodes: configuration.nodes, latency: matrix.map { $0.map { .microseconds($0) } },
                seed: mix(configuration.seed, 0, Self.networkSalt))
        }
    }

    /// Salt of the network's own seeds (placement, asymmetry): they draw nothing from the
    /// cluster's generator, so runs without regions draw exactly as before.
    static let networkSalt: UInt64 = 0x5245_4749_4F4E

    /// Runs the whole scenario; `progress` is called with the fraction of virtual time done.
    public mutating func run(progress: (Double) -> Void = { _ in }) -> SimulationReport {
        setUp()
        let end = Instant(nanoseconds: Int64(configuration.rounds) * Int64(configuration.roundMilliseconds) * 1_000_000)
        let step = max(1, end.nanoseconds / 100)
        var reported = -1
        while true {
            let limit = Instant(nanoseconds: min(end.nanoseconds, (cluster.now.nanoseconds / step + 1) * step))
            if let script = cluster.run(until: limit) {
                perform(script)
                continue
            }
            let percent = Int(cluster.now.nanoseconds * 100 / max(1, end.nanoseconds))
            if percent != reported {
                reported = percent
                progress(Double(percent) / 100)
            }
            if cluster.now >= end { break }
        }
        progress(1)
        return report()
    }

    // MARK: - Set-up

    private var settings: NodeSettings {
        var settings = NodeSettings()
        settings.membership.probeInterval = .milliseconds(configuration.roundMilliseconds)
        settings.replication.fanout = configuration.fanout
        settings.replication.antiEntropyInterval = .milliseconds(configuration.roundMilliseconds)
        if !configuration.membership {
            settings.peers = .fixed((0..<configuration.nodes).map(VirtualCluster<SimulationMetrics>.address(of:)))
        }
        return settings
    }

    private mutating func setUp() {
        let count = configuration.nodes
        let settings = self.settings
        let roundNanoseconds = Int64(configuration.roundMilliseconds) * 1_000_000
        for index in 0..<count {
            let seeds = NodeSeeds(membership: mix(configuration.seed, UInt64(index), 2), replication: mix(configuration.seed, UInt64(index), 1))
            cluster.add(settings: settings, seeds: seeds)
        }
        cluster.observer.live = count
        for index in 0..<count {
            // Anti-entropy timers start at random phases, as on real nodes.
            let phase = Int64.random(in: 0..<roundNanoseconds, using: &cluster.random)
            cluster.start(index, firstAntiEntropyAfter: .nanoseconds(phase))
        }
        if configuration.membership {
            // Everyone joins through node 0, one node per millisecond.
            for index in 1..<count {
                schedule(.join(index), atMilliseconds: index)
            }
            schedule(.checkWhole(afterHeal: false), atMilliseconds: Self.wholeCheckInterval)
        }
        let first = configuration.firstUpdateMilliseconds ?? (configuration.membership ? count + 3 * configuration.roundMilliseconds : 0)
        for update in 0..<configuration.updates {
            schedule(.write(update), atMilliseconds: first + update * configuration.updateSpacingMilliseconds)
        }
        if configuration.crashes > 0 { schedule(.crashSome, atMilliseconds: configuration.crashAtMilliseconds) }
        if configuration.partitionFraction > 0 {
            schedule(.partition(true), atMilliseconds: configuration.partitionAtMilliseconds)
            schedule(.partition(false), atMilliseconds: configuration.healAtMilliseconds)
        }
        if configuration.churnPerRound > 0 { schedule(.churn, atMilliseconds: configuration.roundMilliseconds) }
        if configuration.restartState != .kept { schedule(.snapshot, atMilliseconds: configuration.roundMilliseconds / 2) }
        if configuration.clockSkewFraction > 0 { schedule(.skewClocks, atMilliseconds: configuration.clockSkewAtMilliseconds) }
    }

    private mutating func schedule(_ script: Script, atMilliseconds milliseconds: Int) {
        cluster.schedule(script, at: Instant(nanoseconds: Int64(milliseconds) * 1_000_000))
    }

    // MARK: - Scenario

    private mutating func perform(_ script: Script) {
        switch script {
        case .join(let index):
            if cluster.isUp[index] { cluster.join(index, through: [0]) }
        case .write(let update):
            write(update)
        case .crashSome:
            var chosen = Set<Int>()
            while chosen.count < configuration.crashes {
                chosen.insert(Int.random(in: 0..<configuration.nodes, using: &cluster.random))
            }
            for index in chosen.sorted() { crash(index, measured: true) }
        case .restart(let index):
            restart(index)
        case .partition(let on):
            if on {
                let cut = Int(Double(configuration.nodes) * configuration.partitionFraction)
                cluster.network.partition(nodes: configuration.nodes) { $0 < cut ? 1 : 0 }
            } else {
                cluster.network.heal()
                if configuration.membership { perform(.checkWhole(afterHeal: true)) }
            }
        case .checkWhole(let afterHeal):
            guard (afterHeal ? cluster.observer.wholeAfterHeal : cluster.observer.wholeAfterJoin) == nil else { return }
            if isWhole {
                if afterHeal {
                    cluster.observer.wholeAfterHeal = cluster.now
                } else {
                    cluster.observer.wholeAfterJoin = cluster.now
                }
            } else {
                schedule(.checkWhole(afterHeal: afterHeal), atMilliseconds: Int(cluster.now.nanoseconds / 1_000_000) + Self.wholeCheckInterval)
            }
        case .churn:
            let live = (0..<configuration.nodes).filter { cluster.isUp[$0] }
            let count = Int((Double(live.count) * configuration.churnPerRound).rounded())
            for _ in 0..<count {
                let index = live[Int.random(in: 0..<live.count, using: &cluster.random)]
                guard cluster.isUp[index] else { continue }
                crash(index, measured: false, restartAfter: configuration.churnDownMilliseconds)
            }
            let next = Int(cluster.now.nanoseconds / 1_000_000) + configuration.roundMilliseconds
            if configuration.churnUntilRound.map({ next <= $0 * configuration.roundMilliseconds }) ?? true {
                schedule(.churn, atMilliseconds: next)
            }
        case .skewClocks:
            let count = Int((Double(configuration.nodes) * configuration.clockSkewFraction).rounded())
            var chosen = Set<Int>()
            while chosen.count < count { chosen.insert(Int.random(in: 0..<configuration.nodes, using: &cluster.random)) }
            let end = configuration.rounds * configuration.roundMilliseconds
            for index in chosen.sorted() {
                skewClock(of: index)
                schedule(.stepClock(index), atMilliseconds: Int.random(in: end / 2...max(end / 2, end * 3 / 4), using: &cluster.random))
            }
            cluster.observer.skewed = chosen
        case .stepClock(let index):
            skewClock(of: index)
        case .snapshot:
            for index in cluster.isUp.indices where cluster.isUp[index] { snapshots[index] = cluster.savedState(of: index) }
            schedule(.snapshot, atMilliseconds: Int(cluster.now.nanoseconds / 1_000_000) + Self.snapshotRounds * configuration.roundMilliseconds)
        }
    }

    /// Whether every live node lists every other live node alive (member counts first: cheap).
    private var isWhole: Bool {
        let live = (0..<configuration.nodes).filter { cluster.isUp[$0] }
        let liveNames = Set(live.map { VirtualCluster<SimulationMetrics>.name(of: $0) })
        for index in live where cluster.nodes[index].membership.members.count < live.count { return false }
        return live.allSatisfy { index in
            let members = cluster.nodes[index].membership.members
            return liveNames.allSatisfy { members[$0]?.state == .alive }
        }
    }

    /// Sets node `index`'s clock to a random offset within the maximum, drifting.
    private mutating func skewClock(of index: Int) {
        let maximum = Int64(configuration.clockSkewMaximumMilliseconds)
        cluster.setClock(
            of: index, offsetMilliseconds: Int64.random(in: -maximum...maximum, using: &cluster.random),
            drift: Double.random(in: -0.05...0.05, using: &cluster.random))
    }

    private mutating func write(_ update: Int) {
        var writer = Int.random(in: 0..<configuration.nodes, using: &cluster.random)
        while !cluster.isUp[writer] { writer = (writer + 1) % configuration.nodes }
        let key = "update/\(update)"
        let waits = configuration.writeAcknowledgements
        var written: (entries: [Entry], command: CommandID?)?
        // A writer whose clock is fenced refuses (`clock_skew`): the client tries the next node.
        for _ in 0..<configuration.nodes {
            written = cluster.write(
                [Replication.Write(key: key, value: Array("value \(update)".utf8))], at: writer,
                awaiting: waits > 0 && configuration.membership ? .count(waits + 1) : nil,
                timeout: .milliseconds(5 * configuration.roundMilliseconds))
            guard written == nil, cluster.lastRefusal?.code == .clockSkew else { break }
            cluster.observer.refusedWrites += 1
            repeat { writer = (writer + 1) % configuration.nodes } while !cluster.isUp[writer]
        }
        cluster.observer.track(update, key: key, writer: writer, nodes: configuration.nodes, now: cluster.now)
        guard let written else { return }
        cluster.observer.written[update] = written.entries[0].version
        if let command = written.command {
            cluster.observer.writeCommands[command] = update
        } else if waits > 0 {
            cluster.observer.holdersAwaited[update] = waits
        } else {
            cluster.observer.acknowledged.insert(update)
        }
    }

    /// Crashes a node; `measured` crashes are the ones failure detection is timed against.
    private mutating func crash(_ index: Int, measured: Bool, restartAfter: Int? = nil) {
        guard cluster.isUp[index] else { return }
        cluster.crash(index)
        cluster.observer.live -= 1
        if measured { cluster.observer.crashedAt[index] = cluster.now }
        if let after = restartAfter ?? (measured ? configuration.restartAfterMilliseconds : nil) {
            cluster.schedule(.restart(index), at: cluster.now + .milliseconds(after))
        }
    }

    private mutating func restart(_ index: Int) {
        guard !cluster.isUp[index] else { return }
        cluster.observer.crashedAt[index] = nil
        cluster.observer.live += 1
        let salt = cluster.now.nanoseconds.magnitude
        let seeds = NodeSeeds(
            membership: mix(configuration.seed, UInt64(index), salt), replication: mix(configuration.seed, UInt64(index), salt ^ 1))
        var state = configuration.restartState
        if state == .mixed { state = [.kept, .empty, .stale][Int.random(in: 0..<3, using: &cluster.random)] }
        let restoring: SavedState? =
            switch state {
            case .kept, .mixed: nil
            case .empty: SavedState()
            case .stale: snapshots[index] ?? SavedState()
            }
        cluster.observer.restarts += 1
        cluster.restart(
            index, seeds: seeds, restoring: restoring, joining: configuration.membership ? [index == 0 ? 1 : 0] : [])
    }
}

/// SplitMix64 of three values: independent seeds per node and purpose.
func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
    var z = a &+ b &* 0x9E37_79B9_7F4A_7C15 &+ c &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
