import Metrics
import NIOConcurrencyHelpers
import Prometheus
import RumorAPI

/// The agent's Prometheus metrics (`GET /metrics`): a registry of its own, the swift-metrics
/// backend of the process when the agent command bootstraps it (`factory`).
///
/// Histograms are recorded as things happen (put, `--wait`, push-pull); counters and gauges are
/// taken from `rumor info` and `rumor status` at scrape time, so the two always agree.
public final class AgentMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let putSeconds: DurationHistogram
    let waitSeconds: DurationHistogram
    let pushPullSeconds: DurationHistogram
    let probeSeconds: DurationHistogram
    /// Counter values already exported, by counter name: a scrape adds what grew since.
    private let exported = NIOLockedValueBox<[String: UInt64]>([:])

    public init() {
        let fast: [Duration] = [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)]
        putSeconds = registry.makeDurationHistogram(
            name: "rumor_put_seconds", buckets: fast, help: "Time from a put reaching the agent to its answer.")
        waitSeconds = registry.makeDurationHistogram(
            name: "rumor_put_wait_seconds", buckets: fast,
            help: "Time until a put --wait write was held by the nodes asked for (successful waits).")
        pushPullSeconds = registry.makeDurationHistogram(
            name: "rumor_push_pull_seconds", buckets: fast, help: "Duration of push-pull exchanges this node started.")
        probeSeconds = registry.makeDurationHistogram(
            name: "rumor_probe_round_trip_seconds", buckets: fast,
            help: "Time from a probe's ping to its first ack (direct or through a relay).")
    }

    /// Makes this registry the process's swift-metrics backend (once per process: the agent
    /// command does it; in-process test agents do not).
    public func bootstrapProcess() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// The text exposition format, after bringing counters and gauges up to date.
    func scrape(info: AgentInfo, status: StateStatus, members: [MemberSnapshot]) -> String {
        exported.withLockedValue { exported in
            for (name, value) in info.counters {
                let delta = value &- (exported[name] ?? 0)
                guard delta > 0, delta < UInt64(Int64.max) else { continue }
                registry.makeCounter(name: "rumor_\(name)_total", help: "The rumor info counter \(name).")
                    .increment(by: Int64(delta))
                exported[name] = value
            }
        }
        for state in ["alive", "suspect", "dead", "left"] {
            registry.makeGauge(name: "rumor_members", labels: [("state", state)], help: "Members this node knows, by state.")
                .set(Double(info.members[state] ?? 0))
        }
        registry.makeGauge(name: "rumor_health_score", help: "Lifeguard local health score (0 is healthy).")
            .set(Double(info.healthScore))
        registry.makeGauge(name: "rumor_keys", help: "Keys with a live value.").set(Double(status.values))
        registry.makeGauge(name: "rumor_tombstones", help: "Deletes still remembered.").set(Double(status.tombstones))
        registry.makeGauge(name: "rumor_change_log_seq", help: "This node's change-log position.").set(Double(status.seq))
        registry.makeGauge(
            name: "rumor_peers_not_in_sync",
            help: "Live replicating peers whose state differed from this node's at the last exchange, or never synced.")
            .set(Double(status.peers.values.filter { $0.state != .inSync }.count))
        registry.makeGauge(
            name: "rumor_last_sync_age_seconds", help: "Seconds since this node's last completed anti-entropy pull (-1: never).")
            .set(status.lastSyncedMillisecondsAgo.map { Double($0) / 1000 } ?? -1)
        registry.makeGauge(
            name: "rumor_catch_up_remaining_entries", help: "Entries a catch-up under way still has to bring (0: none under way).")
            .set(Double(status.catchUp?.remainingEntries ?? 0))
        registry.makeGauge(
            name: "rumor_catch_up_remaining_bytes", help: "Bytes a catch-up under way still has to bring (0: none under way).")
            .set(Double(status.catchUp?.remainingBytes ?? 0))
        if let clock = info.clock {
            registry.makeGauge(
                name: "rumor_clock_fenced", help: "1 while this node refuses local writes: its clock is beyond max_clock_offset from most peers.")
                .set(Double(clock.fenced ? 1 : 0))
            registry.makeGauge(
                name: "rumor_clock_offset_seconds",
                help: "This node's clock minus the median measured peer's (positive: ahead; 0 before any measurement).")
                .set(Double(clock.offsetMs ?? 0) / 1000)
        }
        for member in members {
            guard let offset = member.clockOffsetMs else { continue }
            registry.makeGauge(
                name: "rumor_peer_clock_offset_seconds", labels: [("peer", member.name)],
                help: "A peer's clock minus this node's, as last measured (positive: the peer's is ahead).")
                .set(Double(offset) / 1000)
        }
        for member in members {
            guard let coordinate = member.coordinate else { continue }
            if member.name == info.name {
                registry.makeGauge(
                    name: "rumor_coordinate_error", help: "This node's Vivaldi coordinate error (1.5 before any measurement; lower is surer).")
                    .set(coordinate.error)
            } else if let rtt = member.rttMs {
                registry.makeGauge(
                    name: "rumor_peer_coordinate_rtt_seconds", labels: [("peer", member.name)],
                    help: "The round trip to a peer estimated from both Vivaldi coordinates (as serf rtt).")
                    .set(rtt / 1000)
            }
        }
        return registry.emitToString()
    }
}
