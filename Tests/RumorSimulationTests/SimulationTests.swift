import Foundation
import Testing

@testable import RumorSimulation

/// The simulator's bounds, checked against gossip theory: push with fanout 3 plus push-pull
/// anti-entropy informs everyone in O(log N) rounds with little redundancy.
struct SimulationTests {
    static func run(_ configure: (inout SimulationConfiguration) -> Void) throws -> SimulationReport {
        var configuration = SimulationConfiguration()
        configure(&configuration)
        var simulation = try Simulation(configuration)
        return simulation.run()
    }

    @Test func sameSeed_sameReportByteForByte_otherSeed_otherReport() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func bytes(_ seed: UInt64) throws -> Data {
            try encoder.encode(
                Self.run {
                    $0.nodes = 300
                    $0.seed = seed
                    $0.loss = 0.1
                    $0.updates = 3
                    $0.rounds = 8
                })
        }
        #expect(try bytes(7) == bytes(7))
        #expect(try bytes(7) != bytes(8))
    }

    /// The small version of `rumor sim --nodes 1000 --churn ... --restart-state mixed` (docs/development.md, "Simulator"):
    /// nodes restarting as new processes with their state, none or a stale copy, under writes and
    /// 10 % loss, end with every live replica equal and every acknowledged write held.
    @Test(arguments: SimulationConfiguration.RestartState.allCases)
    func restartsWithAnyState_underWritesAndLoss_endEqual_losingNoAcknowledgedWrite(state: SimulationConfiguration.RestartState) throws {
        let report = try Self.run {
            $0.nodes = 100
            $0.loss = 0.1
            $0.rounds = 90
            $0.churnPerRound = 0.01
            $0.churnDownMilliseconds = 2_000
            $0.churnUntilRound = 70
            $0.restartState = state
            $0.updates = 300
            $0.updateSpacingMilliseconds = 200
            $0.writeAcknowledgements = 1
        }
        #expect(report.endState.restarts >= 40)
        #expect(report.endState.acknowledgedWrites >= 250)
        #expect(report.endState.acknowledgedWritesLost == 0)
        #expect(report.endState.distinctStates == 1)
    }

    @Test(arguments: [0.0, 0.1])
    func thousandNodes_allInformedWithinSixRounds_p99OverSeeds(loss: Double) throws {
        var roundsToAll: [Double] = []
        var copies: [Double] = []
        for seed in 1...10 {
            let report = try Self.run {
                $0.nodes = 1_000
                $0.seed = UInt64(seed)
                $0.loss = loss
                $0.updates = 10
                $0.rounds = 10
            }
            for update in report.updates {
                roundsToAll.append(try #require(update.roundsTo100, "seed \(seed): an update never reached every node"))
            }
            copies.append(report.copiesPerNode)
        }
        roundsToAll.sort()
        let p99 = roundsToAll[Int((Double(roundsToAll.count) * 0.99).rounded(.up)) - 1]
        #expect(p99 <= 6, "p99 rounds to inform all 1000 nodes at \(loss * 100) % loss: \(p99)")
        let meanCopies = copies.reduce(0, +) / Double(copies.count)
        #expect(meanCopies <= 2.3, "payload copies per node per update: \(meanCopies)")
    }

    @Test func partitionedUpdates_reachEveryoneAfterTheHeal() throws {
        let report = try Self.run {
            $0.nodes = 200
            $0.partitionFraction = 0.3
            $0.partitionAtMilliseconds = 0
            $0.healAtMilliseconds = 4_000
            $0.firstUpdateMilliseconds = 50  // after the cut (a write at 0 ms goes out before it)
            $0.updates = 4
            $0.rounds = 10
        }
        for update in report.updates {
            let all = try #require(update.millisecondsTo100, "an update never crossed the healed partition")
            #expect(all > 4_000, "the cut-off side cannot learn before the heal")
        }
    }

    @Test func membership_detectsCrashes_withoutFalsePositives_underLoss() throws {
        let report = try Self.run {
            $0.nodes = 40
            $0.membership = true
            $0.loss = 0.1
            $0.crashes = 2
            $0.crashAtMilliseconds = 10_000
            $0.rounds = 60
            $0.updates = 3
        }
        let failures = try #require(report.failures)
        #expect(failures.crashed == 2 && failures.allAware == 2, "\(failures)")
        #expect(failures.falsePositives == 0)
        #expect(try #require(failures.firstDetectionMilliseconds.max) < 30_000)
        #expect(report.updates.allSatisfy { $0.roundsTo100 != nil }, "updates reach every live node through the SWIM views")
    }

    @Test func churn_leavesEveryLiveNodeInformed() throws {
        let report = try Self.run {
            $0.nodes = 300
            $0.churnPerRound = 0.05
            $0.churnDownMilliseconds = 2_000
            $0.updates = 5
            $0.updateSpacingMilliseconds = 1_000
            $0.rounds = 20
        }
        #expect(report.updates.allSatisfy { $0.informed == $0.live }, "\(report.updates)")
    }

    @Test func outputs_tableCSVAndSVG() throws {
        let report = try Self.run {
            $0.nodes = 100
            $0.updates = 2
            $0.rounds = 5
        }
        #expect(report.table.contains("payload copies received per node per update"))
        #expect(report.table.contains("physical limit"))
        #expect(report.csv.split(separator: "\n").count == 3)
        #expect(report.csv.hasPrefix("update,") && report.csv.split(separator: "\n")[0].hasSuffix(",limit_ms,direct_send_ms"))
        #expect(report.svg.hasPrefix("<svg") && report.svg.contains("<polyline"))
        #expect(report.curve.last?.informed == 1)
    }

    @Test func membershipRuns_reportWhenTheSwarmIsWhole_andWhatTheSeedSent() throws {
        let report = try Self.run {
            $0.nodes = 40
            $0.membership = true
            $0.rounds = 30
            $0.partitionFraction = 0.5
            $0.partitionAtMilliseconds = 5_000
            $0.healAtMilliseconds = 15_000
        }
        let swarm = try #require(report.swarm)
        let joined = try #require(swarm.wholeAfterJoinMilliseconds, "40 joiners never made one swarm")
        #expect(joined <= 2_000)
        let healed = try #require(swarm.wholeAfterHealMilliseconds, "the halves never became one swarm again")
        #expect(healed <= 10_000)
        #expect(swarm.seedBytesSent > 0 && swarm.averageBytesSent > 0)
        #expect(report.table.contains("swarm: whole"))
    }

    @Test func aWarmUp_reportsSteadyTraffic_belowTheJoinPhase() throws {
        let report = try Self.run {
            $0.nodes = 100
            $0.membership = true
            $0.rounds = 20
            $0.warmupRounds = 10
        }
        let steady = try #require(report.steadyState)
        #expect(steady.afterRounds == 10)
        #expect(steady.membershipBytesPerNodePerSecond < report.membershipBytesPerNodePerSecond, "joins cost more than steady state")
        #expect(steady.membershipBytesPerNodePerSecond > 0)
    }

    @Test func aCrashedNode_reportsThePushPullsItsAddressReceived() throws {
        let report = try Self.run {
            $0.nodes = 30
            $0.membership = true
            $0.crashes = 1
            $0.crashAtMilliseconds = 3_000
            $0.rounds = 30
        }
        let offers = try #require(report.failures?.pushPullsToCrashedPerSecond)
        // Every live node offers a reconnect each second once it has declared the crash.
        #expect(offers > 1 && offers < 30, "offers/s: \(offers)")
    }

    @Test func badSettings_areRefused() {
        var configuration = SimulationConfiguration()
        configuration.nodes = 1
        #expect(throws: SimulationError.self) { try Simulation(configuration) }
        configuration.nodes = 10_000
        configuration.membership = true
        #expect(throws: SimulationError.self) { try Simulation(configuration) }
    }

    @Test func naturalLog_isAccurate() {
        for x in [1e-9, 0.001, 0.25, 0.5, 0.9, 1.0] {
            #expect(abs(VirtualNetwork.naturalLog(x) - Foundation.log(x)) < 1e-9)
        }
    }
}
