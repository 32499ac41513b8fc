import DeltaLease
import DiskPaxos
import Simulation
import Testing

/// The simulator must be deterministic and must be able to fail. The fast mutants run here;
/// the ≥ 10,000-seed clean run and the mutants that need hundreds of seeds run on the release
/// build in Tools/sim-check.sh, which Tools/test.sh calls.
@Suite struct SimulatorTests {
    func firstViolation(seeds: ClosedRange<UInt64>, resources: Int = 2, faults: FaultRates = FaultRates()) -> Violation? {
        for s in seeds {
            var c = SimConfig(seed: s)
            c.resources = resources
            c.faults = faults
            if let v = Simulation(config: c).run().violation { return v }
        }
        return nil
    }

    @Test func aSeedReplaysExactly() {
        var c = SimConfig(seed: 4242)
        c.faults = .joinStorm
        let a = Simulation(config: c).run().stats
        let b = Simulation(config: c).run().stats
        #expect(a.description == b.description)
        #expect(a.grantsExclusive > 0 && a.crashes > 0)
    }

    @Test func cleanProtocolPassesSeedsOfBothProfiles() {
        #expect(firstViolation(seeds: 1...60) == nil)
        #expect(firstViolation(seeds: 1...60, resources: 1, faults: .joinStorm) == nil)
    }

    /// Whole-second time found bugs nanosecond time never met: a host claimed a version it had
    /// retracted while another host took it over on the RELEASED flag (seed 958 still shows
    /// it when the fix is removed), a view's age counted from its read's completion instead of
    /// its issue, and a dblock written below its own lver after a stale leader landed late.
    @Test func wholeSecondTimePassesTheSeedsThatFoundBugs() {
        for s in Array(UInt64(1)...30) + [958] {
            #expect(Simulation(config: .coarse(seed: s)).run().violation == nil, "seed \(s)")
        }
    }

    /// A join wait equal to its bound, instead of one second above it, lets two values be
    /// decided for one version; the boundary profile meets that instant at seed 717 (found by
    /// Tools/sim-check.sh's seed budget), and the same seed passes with the rule intact.
    @Test func joinWaitEqualToItsBoundIsCaughtAtTheBoundary() {
        var c = SimConfig.boundary(seed: 717)
        #expect(Simulation(config: c).run().violation == nil)
        c.mutations = .joinWaitEqualsBound
        let v = Simulation(config: c).run().violation
        #expect(v?.message.contains("two values decided") == true)
    }

    /// Each mutant at the first seed of its budget that catches it (Tools/sim-check.sh
    /// searches the budget on the release build); the same seed passes with the rule intact.
    @Test(arguments: [(SafetyMutations.earlyDead, UInt64(1)), (.noViewAgeCheck, 317)])
    func aBrokenRuleIsCaughtWhereTheBudgetFindsIt(mutation: SafetyMutations, seed: UInt64) {
        var c = SimConfig(seed: seed)
        #expect(Simulation(config: c).run().violation == nil)
        c.mutations = mutation
        #expect(Simulation(config: c).run().violation != nil)
    }
}
