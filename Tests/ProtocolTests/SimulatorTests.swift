import DeltaLease
import DiskPaxos
import Simulation
import Testing

/// The simulator must be deterministic and must be able to fail. The fast mutants run here;
/// the ≥ 10,000-seed clean run and the mutants that need hundreds of seeds run on the release
/// build in Tools/sim-check.sh, which Tools/test.sh calls.
@Suite struct SimulatorTests {
    @Test func aSeedReplaysExactly() {
        let c = SimConfig.joinStorm(seed: 4242)
        let a = Simulation(config: c).run().stats
        let b = Simulation(config: c).run().stats
        #expect(a.description == b.description)
        #expect(a.grantsExclusive > 0 && a.hostCrashes + a.daemonCrashes > 0)
    }

    @Test func cleanProtocolPassesSeedsOfEveryProfile() {
        for s in UInt64(1)...6 {
            #expect(Simulation(config: SimConfig(seed: s)).run().violation == nil, "seed \(s)")
            #expect(Simulation(config: .joinStorm(seed: s)).run().violation == nil, "join storm seed \(s)")
            #expect(Simulation(config: .churn(seed: s)).run().violation == nil, "churn seed \(s)")
            #expect(Simulation(config: .coarse(seed: s)).run().violation == nil, "whole-second seed \(s)")
        }
    }

    /// A broken rule is caught at a seed Tools/sim-check.sh's budget found; the same seed
    /// passes with the rule intact.
    @Test(arguments: [
        (SafetyMutations.noEpochCheck, UInt64(7)), (.convertRetractWithoutShared, 4),
        (.restartWithoutKillingLeftovers, 2), (.feedWatchdogWhileVictimLives, 162),
    ])
    func aBrokenRuleIsCaughtWhereTheBudgetFindsIt(mutation: SafetyMutations, seed: UInt64) {
        var c = SimConfig(seed: seed)
        #expect(Simulation(config: c).run().violation == nil)
        c.mutations = mutation
        #expect(Simulation(config: c).run().violation != nil)
    }

    /// A ballot that forgets its own write still in flight ballots a lower version and its
    /// block goes back (found on the whole-second grid).
    @Test func forgettingTheLverFloorIsCaught() {
        var c = SimConfig.coarse(seed: 942)
        #expect(Simulation(config: c).run().violation == nil)
        c.mutations = .noLverFloor
        #expect(Simulation(config: c).run().violation != nil)
    }

    /// The races profile's aimed faults reach the membership rules: a dead host's block and a
    /// left host's block that hold a decided value, a leave with a ballot running, a ballot
    /// that skips the phase-2 epoch check (seeds from Tools/sim-check.sh's budget search).
    @Test(arguments: [
        (SafetyMutations.dropDeadBlocks, UInt64(2)), (.dropLeftAtOnce, 2), (.leaveDuringBallot, 9),
        (.epochCheckPhase1Only, 47),
    ])
    func theRacesProfileCatchesAMembershipRuleBroken(mutation: SafetyMutations, seed: UInt64) {
        var c = SimConfig.races(seed: seed)
        #expect(Simulation(config: c).run().violation == nil)
        c.mutations = mutation
        #expect(Simulation(config: c).run().violation != nil)
    }
}
