/// What a simulation measured. Encodes to the same JSON for the same configuration.
public struct SimulationReport: Sendable, Hashable, Codable {
    /// How one update spread. Times are after the write; rounds are anti-entropy intervals
    /// begun since the write (a push that arrives within the first interval counts as round 1).
    public struct Update: Sendable, Hashable, Codable {
        public var informed: Int
        /// Nodes up at the end of the run: the ones that should know.
        public var live: Int
        public var millisecondsTo50: Double?
        public var millisecondsTo99: Double?
        public var millisecondsTo999: Double?
        public var millisecondsTo100: Double?
        public var roundsTo50: Double?
        public var roundsTo99: Double?
        public var roundsTo999: Double?
        public var roundsTo100: Double?
        /// Payload copies of the update received, per node (1.0 = no redundancy): pushes and
        /// pull answers that arrived, redundant ones included, over all nodes; copies lost on
        /// the way are not counted.
        public var copiesPerNode: Double
        /// The physical limit for this update (`PhysicalLimit`): the farthest live node's
        /// shortest-path delay from the writer over base latencies, jitter excluded.
        public var limitMilliseconds: Double
        /// Expected time until the last live node hears if the writer sent to each directly, with
        /// jitter (`PhysicalLimit.directSend`).
        public var directSendMilliseconds: Double
    }

    /// Time to 100 % informed against the physical limit, over the updates.
    public struct Limits: Sendable, Hashable, Codable {
        /// p99 over the updates of the time until every live node held it; nil if some update
        /// never reached every live node.
        public var p99MillisecondsTo100: Double?
        /// p99 over the updates of their physical limits (shortest paths over base latencies to
        /// the farthest node: no protocol does better; jitter excluded).
        public var p99LimitMilliseconds: Double?
        /// p99 over the updates of a one-hop direct send's expected time to the last node, jitter
        /// included (a reference, not a bound).
        public var p99DirectSendMilliseconds: Double?
        /// `p99MillisecondsTo100 / p99LimitMilliseconds` (≥ 1), and against the direct send.
        public var ratioToLimit: Double?
        public var ratioToDirectSend: Double?
        /// False when the limit is a looser lower bound (asymmetric links above 20,000 nodes).
        public var exact: Bool

        init(_ updates: [Update], exact: Bool) {
            func p99(_ values: [Double]) -> Double? { Summary(values).p99 }
            p99MillisecondsTo100 = updates.contains { $0.millisecondsTo100 == nil } ? nil : p99(updates.compactMap(\.millisecondsTo100))
            p99LimitMilliseconds = p99(updates.map(\.limitMilliseconds))
            p99DirectSendMilliseconds = p99(updates.map(\.directSendMilliseconds))
            func ratio(_ time: Double?, _ over: Double?) -> Double? {
                guard let time, let over, over > 0 else { return nil }
                return time / over
            }
            ratioToLimit = ratio(p99MillisecondsTo100, p99LimitMilliseconds)
            ratioToDirectSend = ratio(p99MillisecondsTo100, p99DirectSendMilliseconds)
            self.exact = exact
        }
    }

    public struct Point: Sendable, Hashable, Codable {
        public var milliseconds: Double
        /// Fraction of live nodes informed, averaged over updates.
        public var informed: Double
    }

    /// p50 / p99 / max of a set of values (nil when empty).
    public struct Summary: Sendable, Hashable, Codable {
        public var p50: Double?
        public var p99: Double?
        public var max: Double?

        public init(_ values: [Double]) {
            let sorted = values.sorted()
            func at(_ fraction: Double) -> Double? {
                sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
            }
            p50 = at(0.5)
            p99 = at(0.99)
            max = sorted.last
        }
    }

    public struct Failures: Sendable, Hashable, Codable {
        public var crashed: Int
        /// Crashed nodes some live node declared dead.
        public var detected: Int
        /// Crashed nodes every live node declared dead.
        public var allAware: Int
        public var firstDetectionMilliseconds: Summary
        public var allAwareMilliseconds: Summary
        /// Nodes declared dead while they were running.
        public var falsePositives: Int
        /// Push-pull offers a crashed node's address received per second while it was down, from
        /// the whole swarm (reconnect attempts); nil when no node stayed down.
        public var pushPullsToCrashedPerSecond: Double?
        /// The same, counted after the warm-up only (the steady state).
        public var pushPullsToCrashedPerSecondAfterWarmup: Double?
    }

    /// How the membership came together (`--membership` runs).
    public struct Swarm: Sendable, Hashable, Codable {
        /// From the start until every live node listed every other alive (the joins arrive one
        /// per millisecond through node 0); nil if never.
        public var wholeAfterJoinMilliseconds: Double?
        /// From the heal of the partition until the same held again; nil without a partition or if never.
        public var wholeAfterHealMilliseconds: Double?
        /// Membership bytes and messages the seed (node 0) sent, and the average node.
        public var seedBytesSent: Int
        public var averageBytesSent: Double
        public var seedMessagesSent: Int
        public var averageMessagesSent: Double
    }

    /// Traffic per node per second over part of the run.
    public struct Traffic: Sendable, Hashable, Codable {
        /// Counted from the end of this round on.
        public var afterRounds: Int
        public var replicationMessagesPerNodePerSecond: Double
        public var replicationBytesPerNodePerSecond: Double
        public var membershipMessagesPerNodePerSecond: Double
        public var membershipBytesPerNodePerSecond: Double
    }

    /// How the run ended: restarts, acknowledged writes, and whether the live nodes agree.
    public struct EndState: Sendable, Hashable, Codable {
        public var restarts: Int
        /// Writes acknowledged (see `SimulationConfiguration.writeAcknowledgements`).
        public var acknowledgedWrites: Int
        /// Acknowledged writes that some node up at the end does not hold.
        public var acknowledgedWritesLost: Int
        /// Distinct states (store fingerprints) among the nodes up at the end: 1 when all are equal.
        public var distinctStates: Int
    }

    /// The nodes' clocks at the end, when some were set wrong (`clockSkewFraction`).
    public struct Clocks: Sendable, Hashable, Codable {
        public var skewed: Int
        /// Live nodes whose clock ended beyond the maximum offset, and those fenced.
        public var beyondBound: Int
        public var fenced: Int
        /// Mistakes: fenced though within the bound, and beyond it but writing.
        public var fencedWithinBound: Int
        public var beyondBoundNotFenced: Int
        /// Writes a fenced writer refused (each then made at another node).
        public var refusedWrites: Int
    }

    public var configuration: SimulationConfiguration
    public var updates: [Update]
    public var physicalLimit: Limits
    public var curve: [Point]
    public var replicationMessagesPerNodePerSecond: Double
    public var replicationBytesPerNodePerSecond: Double
    /// Bytes of acknowledgements (the broadcast tree's confirmations) per node per update: the
    /// cost of the tree besides its payload copies.
    public var acknowledgementBytesPerNodePerUpdate: Double
    public var membershipMessagesPerNodePerSecond: Double
    public var membershipBytesPerNodePerSecond: Double
    public var failures: Failures?
    /// Traffic after the warm-up (`warmupRounds`), when one was asked for.
    public var steadyState: Traffic?
    public var swarm: Swarm?
    public var endState: EndState
    public var clocks: Clocks?

    /// Over all updates: the given percentile of rounds-to-`reach`, or nil if some update never
    /// reached it.
    public func rounds(toReach reach: KeyPath<Update, Double?>, percentile: Double) -> Double? {
        let values = updates.map { $0[keyPath: reach] }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else { return nil }
        let sorted = values.compactMap { $0 }.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * percentile).rounded(.up)) - 1)]
    }

    /// Mean payload copies received per node per update.
    public var copiesPerNode: Double {
        updates.isEmpty ? 0 : updates.map(\.copiesPerNode).reduce(0, +) / Double(updates.count)
    }
}

extension SimulationReport {
    /// A plain-text table.
    public var table: String {
        var lines: [String] = []
        let c = configuration
        lines.append(
            "nodes \(c.nodes), rounds \(c.rounds) × \(c.roundMilliseconds) ms, fanout \(c.fanout), loss \(percent(c.loss)), "
                + "updates \(c.updates), seed \(c.seed)\(c.membership ? ", SWIM membership" : ", full-knowledge membership")")
        lines.append("latency: " + c.latencyDescription)
        lines.append("")
        lines.append(pad(["informed", "p50 ms", "p99 ms", "max ms", "p50 rounds", "p99 rounds", "max rounds"]))
        let rows: [(String, KeyPath<Update, Double?>, KeyPath<Update, Double?>)] = [
            ("50 %", \.millisecondsTo50, \.roundsTo50), ("99 %", \.millisecondsTo99, \.roundsTo99),
            ("99.9 %", \.millisecondsTo999, \.roundsTo999), ("100 %", \.millisecondsTo100, \.roundsTo100),
        ]
        for (label, time, rounds) in rows {
            let times = Summary(updates.compactMap { $0[keyPath: time] })
            let never = updates.contains { $0[keyPath: time] == nil }
            lines.append(
                pad([
                    label, number(times.p50), number(times.p99), never ? "never" : number(times.max),
                    number(self.rounds(toReach: rounds, percentile: 0.5)), number(self.rounds(toReach: rounds, percentile: 0.99)),
                    never ? "never" : number(self.rounds(toReach: rounds, percentile: 1)),
                ]))
        }
        lines.append("")
        let limit = physicalLimit
        lines.append(
            "100 % informed p99 \(number(limit.p99MillisecondsTo100)) ms; physical limit p99 \(number(limit.p99LimitMilliseconds)) ms"
                + (limit.exact ? "" : " (a lower bound)") + " (×\(number(limit.ratioToLimit, digits: 2))); "
                + "a direct send with the same jitter \(number(limit.p99DirectSendMilliseconds)) ms (×\(number(limit.ratioToDirectSend, digits: 2)))")
        lines.append(
            "payload copies received per node per update: \(number(copiesPerNode, digits: 2)); "
                + "acknowledgements \(number(acknowledgementBytesPerNodePerUpdate, digits: 1)) B per node per update")
        lines.append(
            "replication: \(number(replicationMessagesPerNodePerSecond, digits: 2)) msg/s, "
                + "\(number(replicationBytesPerNodePerSecond, digits: 0)) B/s per node")
        if c.membership {
            lines.append(
                "membership:  \(number(membershipMessagesPerNodePerSecond, digits: 2)) msg/s, "
                    + "\(number(membershipBytesPerNodePerSecond, digits: 0)) B/s per node")
        }
        if let failures {
            lines.append(
                "failures: \(failures.crashed) crashed, \(failures.detected) detected (first p50 \(number(failures.firstDetectionMilliseconds.p50)) ms, "
                    + "max \(number(failures.firstDetectionMilliseconds.max)) ms), \(failures.allAware) known to all "
                    + "(p50 \(number(failures.allAwareMilliseconds.p50)) ms, max \(number(failures.allAwareMilliseconds.max)) ms), "
                    + "\(failures.falsePositives) false positives"
                    + (failures.pushPullsToCrashedPerSecond.map { ", \(number($0, digits: 2)) push-pulls/s at each crashed address" } ?? "")
                    + (failures.pushPullsToCrashedPerSecondAfterWarmup.map { " (\(number($0, digits: 2))/s after the warm-up)" } ?? ""))
        }
        if let swarm {
            lines.append(
                "swarm: whole \(number(swarm.wholeAfterJoinMilliseconds)) ms after the start"
                    + (c.partitionFraction > 0 ? ", \(number(swarm.wholeAfterHealMilliseconds)) ms after the heal" : "")
                    + "; seed sent \(swarm.seedBytesSent) B in \(swarm.seedMessagesSent) messages, the average node "
                    + "\(number(swarm.averageBytesSent, digits: 0)) B in \(number(swarm.averageMessagesSent, digits: 0)) "
                    + "(\(number(Double(swarm.seedBytesSent) / max(1, swarm.averageBytesSent), digits: 1))×)")
        }
        if endState.restarts > 0 || endState.acknowledgedWrites > 0 {
            lines.append(
                "end: \(endState.restarts) restarts (\(c.restartState.rawValue) state), \(endState.acknowledgedWrites) writes acknowledged, "
                    + "\(endState.acknowledgedWritesLost) of them missing on some live node; "
                    + (endState.distinctStates == 1 ? "every live replica equal" : "\(endState.distinctStates) distinct replica states"))
        }
        if let clocks {
            lines.append(
                "clocks: \(clocks.skewed) set wrong (up to ±\(c.clockSkewMaximumMilliseconds) ms, drifting, stepped once more); at the end "
                    + "\(clocks.beyondBound) beyond the bound and \(clocks.fenced) fenced (\(clocks.fencedWithinBound) fenced within it, "
                    + "\(clocks.beyondBoundNotFenced) beyond it unfenced); \(clocks.refusedWrites) writes refused by a fenced writer")
        }
        if let steady = steadyState {
            lines.append(
                "after round \(steady.afterRounds): replication \(number(steady.replicationMessagesPerNodePerSecond, digits: 2)) msg/s, "
                    + "\(number(steady.replicationBytesPerNodePerSecond, digits: 0)) B/s; membership "
                    + "\(number(steady.membershipMessagesPerNodePerSecond, digits: 2)) msg/s, "
                    + "\(number(steady.membershipBytesPerNodePerSecond, digits: 0)) B/s per node")
        }
        return lines.joined(separator: "\n")
    }

    /// Per-update figures as CSV, one row per update.
    public var csv: String {
        var lines = [
            "update,informed,live,ms_to_50,ms_to_99,ms_to_99_9,ms_to_100,rounds_to_50,rounds_to_99,rounds_to_99_9,rounds_to_100,copies_per_node,limit_ms,direct_send_ms"
        ]
        for (index, update) in updates.enumerated() {
            let fields = [
                update.millisecondsTo50, update.millisecondsTo99, update.millisecondsTo999, update.millisecondsTo100,
                update.roundsTo50, update.roundsTo99, update.roundsTo999, update.roundsTo100,
            ].map { number($0, digits: 3, empty: "") }
            lines.append(([String(index), String(update.informed), String(update.live)] + fields + [number(update.copiesPerNode, digits: 4), number(update.limitMilliseconds, digits: 3), number(update.directSendMilliseconds, digits: 3)]).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The convergence curve (nodes informed against time) as a standalone SVG.
    public var svg: String {
        let width = 720.0
        let height = 400.0
        let left = 64.0
        let right = 24.0
        let top = 40.0
        let bottom = 56.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let maximum = max(curve.last?.milliseconds ?? 1, 1e-3)
        func x(_ milliseconds: Double) -> Double { left + plotWidth * milliseconds / maximum }
        func y(_ fraction: Double) -> Double { top + plotHeight * (1 - fraction) }
        var svg = [
            ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(width))" height="\##(Int(height))" font-family="sans-serif" font-size="12">"##,
            ##"<rect width="100%" height="100%" fill="white"/>"##,
            ##"<text x="\##(Int(width / 2))" y="22" text-anchor="middle" font-size="14">Rumor: \##(configuration.nodes) nodes, fanout \##(configuration.fanout), loss \##(percent(configuration.loss)), seed \##(configuration.seed)</text>"##,
        ]
        for tick in 0...4 {
            let fraction = Double(tick) / 4
            svg.append(
                ##"<line x1="\##(f(left))" y1="\##(f(y(fraction)))" x2="\##(f(width - right))" y2="\##(f(y(fraction)))" stroke="#ddd"/>"##)
            svg.append(##"<text x="\##(f(left - 6))" y="\##(f(y(fraction) + 4))" text-anchor="end">\##(tick * 25) %</text>"##)
            let time = maximum * fraction
            svg.append(##"<text x="\##(f(x(time)))" y="\##(f(height - bottom + 18))" text-anchor="middle">\##(number(time, digits: time < 10 ? 1 : 0))</text>"##)
        }
        svg.append(##"<text x="\##(f(left + plotWidth / 2))" y="\##(f(height - 12))" text-anchor="middle">milliseconds after the write</text>"##)
        svg.append(##"<text x="16" y="\##(f(top + plotHeight / 2))" text-anchor="middle" transform="rotate(-90 16 \##(f(top + plotHeight / 2)))">nodes informed</text>"##)
        svg.append(
            ##"<rect x="\##(f(left))" y="\##(f(top))" width="\##(f(plotWidth))" height="\##(f(plotHeight))" fill="none" stroke="#333"/>"##)
        let points = curve.map { "\(f(x($0.milliseconds))),\(f(y($0.informed)))" }.joined(separator: " ")
        svg.append(##"<polyline fill="none" stroke="#c0392b" stroke-width="2" points="\##(points)"/>"##)
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }
}

private func f(_ value: Double) -> String { number(value, digits: 1) }

private func percent(_ fraction: Double) -> String { "\(number(fraction * 100, digits: 1)) %" }

/// Formats without Foundation: fixed `digits` decimals.
func number(_ value: Double?, digits: Int = 1, empty: String = "-") -> String {
    guard let value, value.isFinite else { return empty }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    let negative = rounded < 0
    let magnitude = abs(rounded)
    let whole = magnitude.rounded(.down)
    var text = String(Int64(whole))
    if digits > 0 {
        let fraction = Int64(((magnitude - whole) * scale).rounded())
        var fractionText = String(fraction)
        while fractionText.count < digits { fractionText = "0" + fractionText }
        text += "." + fractionText
    }
    return negative && magnitude > 0 ? "-" + text : text
}

private func pad(_ cells: [String]) -> String {
    cells.enumerated().map { index, cell in
        let width = index == 0 ? 8 : 11
        return index == 0 ? cell.padding(width) : String(repeating: " ", count: max(0, width - cell.count)) + cell
    }.joined()
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        self + String(repeating: " ", count: max(0, width - count))
    }
}

extension SimulationConfiguration {
    /// The latency model in words, e.g. "3 regions (A 5, B 5, C 5; A–B 40, A–C 150, B–C 80 ms),
    /// tail 50 % of the base, asymmetry ±20 %".
    public var latencyDescription: String {
        func ms(_ microseconds: Int) -> String { number(Double(microseconds) / 1000, digits: microseconds % 1000 == 0 ? 0 : 3) }
        var text: String
        if let matrix = regionLatencyMicroseconds {
            let names = matrix.indices.map(Self.regionName)
            let within = matrix.indices.map { "\(names[$0]) \(ms(matrix[$0][$0]))" }.joined(separator: ", ")
            let between = matrix.indices.flatMap { r in (r + 1..<matrix.count).map { "\(names[r])–\(names[$0]) \(ms(matrix[r][$0]))" } }
            text = "\(matrix.count) regions (within \(within)" + (between.isEmpty ? "" : "; " + between.joined(separator: ", ")) + " ms)"
        } else {
            text = "base \(ms(latencyMinimumMicroseconds)) ms"
        }
        if let jitter {
            text += ", tail mean \(number(jitter * 100, digits: 0)) % of the base"
        } else {
            text += " + exponential tail of mean \(ms(latencyMeanExtraMicroseconds)) ms"
        }
        if asymmetry > 0 { text += ", asymmetry ±\(number(asymmetry * 100, digits: 0)) %" }
        return text
    }
}
