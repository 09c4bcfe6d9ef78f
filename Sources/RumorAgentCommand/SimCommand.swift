import ArgumentParser
import Foundation
import RumorAgent
import RumorCLI
import RumorSimulation

struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: ServerCommands.simAbstract,
        discussion: """
            Runs one Replication machine per node (and with --membership one SWIM machine per node) \
            and reports how fast updates reach 50/99/99.9/100 % of nodes, the physical limit \
            (the farthest node's shortest path over base latencies) beside the time to 100 %, \
            payload copies received per node, traffic per node, and failure detection. The same \
            --seed gives the same output.
            """)

    @Option(help: "Nodes in the swarm.") var nodes = 1_000
    @Option(help: "Seed of every random choice.") var seed: UInt64 = 1
    @Option(help: "Virtual duration in rounds (anti-entropy intervals).") var rounds = 20
    @Option(name: .customLong("round-ms"), help: "Length of a round, ms.") var roundMilliseconds = 1_000
    @Option(help: "Push fanout.") var fanout = 3
    @Option(help: "Updates to write, one every --update-spacing-ms.") var updates = 1
    @Option(name: .customLong("update-spacing-ms")) var updateSpacingMilliseconds = 100
    @Option(name: .customLong("first-update-ms"), help: "When the first update is written (default: at once, or after joining with --membership).") var firstUpdate: Int?
    @Option(name: .customLong("latency-min-us"), help: "Minimum (base) one-way latency of every pair, µs (default 200).") var latencyMinimum: Int?
    @Option(name: .customLong("latency-tail-us"), help: "Mean of the exponential latency tail, µs (default 300).") var latencyTail: Int?
    @Option(
        help: ArgumentHelp(
            "Place the nodes in N regions (A, B, C…, seeded random placement); alone, --regions 3 is the three-region model.",
            discussion: "5 ms within a region, A-B 40, A-C 150, B-C 80 ms one way; replaces --latency-min-us."))
    var regions: Int?
    @Option(
        name: .customLong("region-latency-ms"),
        help: ArgumentHelp(
            "Base one-way latencies, ms: 'W,A-B=x,A-C=y,…' (W within every region; A=w for one region).",
            discussion: "Every pair of regions needs its latency; the same both ways (see --asymmetry)."))
    var regionLatency: String?
    @Option(help: "Latency tail relative to each pair's base: 50% = an exponential tail of mean half the base (replaces --latency-tail-us).")
    var jitter: String?
    @Option(help: "Asymmetric links: 20% scales a pair's base by 1 + 0.2u one way and 1 - 0.2u the other (u in [-1, 1) per pair, seeded).")
    var asymmetry: String?
    @Option(help: "Datagram loss: 0.1 or 10%.") var loss = "0"
    @Flag(help: "Run SWIM + Lifeguard membership on every node (at most 5,000 nodes).") var membership = false
    @Option(help: "Nodes to crash at --crash-at-ms.") var crashes = 0
    @Option(name: .customLong("crash-at-ms")) var crashAt = 5_000
    @Option(name: .customLong("restart-after-ms"), help: "Crashed nodes restart (state kept) after this long.") var restartAfter: Int?
    @Option(help: "Fraction of nodes cut off from the rest between --partition-at-ms and --heal-at-ms.") var partition = 0.0
    @Option(name: .customLong("partition-at-ms")) var partitionAt = 5_000
    @Option(name: .customLong("heal-at-ms")) var healAt = 10_000
    @Option(help: "Fraction of live nodes that crash and restart each round.") var churn = 0.0
    @Option(name: .customLong("churn-down-ms"), help: "How long a churned node stays down.") var churnDown = 3_000
    @Option(name: .customLong("churn-until-round"), help: "The last round churn crashes nodes (then the swarm settles).") var churnUntil: Int?
    @Option(
        name: .customLong("restart-state"),
        help: "What a restarted node starts from: kept (a current data dir), empty (none), stale (a copy a few rounds old), mixed.")
    var restartState = "kept"
    @Option(
        name: .customLong("clock-skew"),
        help: "Fraction of nodes whose clock goes wrong (random offset within --clock-skew-max-ms, drifting, stepped again later); needs --membership.")
    var clockSkew = 0.0
    @Option(name: .customLong("clock-skew-max-ms"), help: "The largest clock offset --clock-skew sets.") var clockSkewMax = 7_200_000
    @Option(name: .customLong("clock-skew-at-ms"), help: "When the clocks go wrong.") var clockSkewAt = 5_000
    @Option(name: .customLong("write-acks"), help: "Writes wait until this many other nodes hold them (put --wait N); 0: none.") var writeAcks = 0
    @Option(name: .customLong("warmup-rounds"), help: "Also report traffic after this many rounds (the steady state).") var warmupRounds: Int?
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "Also write per-update figures as CSV to this file.") var csv: String?
    @Option(help: "Also write the convergence curve as an SVG plot to this file.") var svg: String?
    @Flag(help: "No progress bar.") var quiet = false

    func run() throws {
        var configuration = SimulationConfiguration()
        configuration.nodes = nodes
        configuration.seed = seed
        configuration.rounds = rounds
        configuration.roundMilliseconds = roundMilliseconds
        configuration.fanout = fanout
        configuration.updates = updates
        configuration.updateSpacingMilliseconds = updateSpacingMilliseconds
        configuration.firstUpdateMilliseconds = firstUpdate
        try configureLatency(&configuration)
        configuration.loss = try Self.fraction(loss)
        configuration.membership = membership
        configuration.crashes = crashes
        configuration.warmupRounds = warmupRounds
        configuration.crashAtMilliseconds = crashAt
        configuration.restartAfterMilliseconds = restartAfter
        configuration.partitionFraction = partition
        configuration.partitionAtMilliseconds = partitionAt
        configuration.healAtMilliseconds = healAt
        configuration.churnPerRound = churn
        configuration.churnDownMilliseconds = churnDown
        configuration.churnUntilRound = churnUntil
        configuration.writeAcknowledgements = writeAcks
        configuration.clockSkewFraction = clockSkew
        configuration.clockSkewMaximumMilliseconds = clockSkewMax
        configuration.clockSkewAtMilliseconds = clockSkewAt
        guard let state = SimulationConfiguration.RestartState(rawValue: restartState) else {
            throw AgentError(
                code: .badArguments, message: "--restart-state '\(restartState)' is not a restart state",
                hint: "use " + SimulationConfiguration.RestartState.allCases.map(\.rawValue).joined(separator: ", "))
        }
        configuration.restartState = state
        var simulation: Simulation
        do {
            simulation = try Simulation(configuration)
        } catch {
            throw AgentError(code: .badArguments, message: error.message, hint: "see `rumor sim --help`")
        }
        let showProgress = !quiet && isatty(STDERR_FILENO) != 0
        let started = ContinuousClock.now
        let report = simulation.run { fraction in
            guard showProgress else { return }
            let width = 40
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data("\r\(bar) \(Int(fraction * 100)) %".utf8))
        }
        let wall = ContinuousClock.now - started
        if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        if let csv { try write(report.csv, to: csv) }
        if let svg { try write(report.svg, to: svg) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            Output.print(String(decoding: try encoder.encode(OKEnvelope(data: report)), as: UTF8.self))
        } else {
            Output.print(report.table)
        }
        // Wall time goes to stderr so the report itself stays identical for the same seed.
        let seconds = wall.seconds
        FileHandle.standardError.write(Data(String(format: "simulated in %.2f s wall\n", seconds).utf8))
        // Exit with the simulation still alive: freeing 100,000 nodes one allocation at a time
        // takes seconds the operating system does at once.
        withExtendedLifetime(simulation) { Foundation.exit(0) }
    }

    /// The latency flags: the old pair (one base, one absolute tail) and the regions, jitter and
    /// asymmetry that refine it; flags that contradict each other are refused.
    private func configureLatency(_ configuration: inout SimulationConfiguration) throws {
        func usage(_ message: String, _ hint: String) -> AgentError { AgentError(code: .badArguments, message: message, hint: hint) }
        if let latencyMinimum { configuration.latencyMinimumMicroseconds = latencyMinimum }
        if let latencyTail { configuration.latencyMeanExtraMicroseconds = latencyTail }
        if regions != nil || regionLatency != nil {
            guard latencyMinimum == nil else {
                throw usage("--latency-min-us and regions both set the base latency", "give the within-region latency in --region-latency-ms")
            }
            let spec = regionLatency ?? (regions == 3 ? SimulationConfiguration.threeRegions : nil)
            guard let spec else {
                throw usage("--regions \(regions!) needs --region-latency-ms", "e.g. --region-latency-ms '5,A-B=40,…' (only --regions 3 has a default)")
            }
            do {
                configuration.regionLatencyMicroseconds = try SimulationConfiguration.regionLatency(parsing: spec, regions: regions)
            } catch {
                throw usage("--region-latency-ms: \(error.message)", "e.g. --regions 3 --region-latency-ms '\(SimulationConfiguration.threeRegions)'")
            }
        }
        if let jitter {
            guard latencyTail == nil else {
                throw usage("--latency-tail-us and --jitter both set the latency tail", "give one: an absolute mean, or a fraction of the base")
            }
            configuration.jitter = try Self.fraction(jitter)
        }
        if let asymmetry { configuration.asymmetry = try Self.fraction(asymmetry) }
    }

    private func write(_ text: String, to path: String) throws {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw AgentError(code: .writeFailed, message: "cannot write \(path): \(error.localizedDescription)", hint: "pick a writable path")
        }
    }

    /// `0.1` or `10%`.
    static func fraction(_ text: String) throws -> Double {
        let percent = text.hasSuffix("%")
        guard let value = Double(percent ? String(text.dropLast()) : text) else {
            throw AgentError(code: .badArguments, message: "'\(text)' is not a fraction", hint: "use e.g. 0.1 or 10%")
        }
        return percent ? value / 100 : value
    }
}
