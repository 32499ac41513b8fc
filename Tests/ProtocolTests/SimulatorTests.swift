import DeltaLease
import DiskPaxos
import Simulation
import Testing

/// The simulator must be deterministic and must be able to fail. The fast mutants run here;
/// the ≥ 10,000-seed clean run and the mutants that need hundreds of seeds run on the release
/// build in Tools/sim-check.sh, which Tools/test.sh calls.
@Suite struct SimulatorTests {
    func firstViolation(_ mutations: SafetyMutations, seeds: ClosedRange<UInt64>, resources: Int = 2,
                        faults: FaultRates = FaultRates()) -> Violation? {
        for s in seeds {
            var c = SimConfig(seed: s)
            c.mutations = mutations
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
        #expect(firstViolation([], seeds: 1...60) == nil)
        #expect(firstViolation([], seeds: 1...60, resources: 1, faults: .joinStorm) == nil)
    }

    /// Whole-second time found bugs nanosecond time never met: a host claimed a version it had
    /// retracted while another host took it over on the RELEASED flag (seed 835 still shows
    /// it when the fix is removed), a view's age counted from its read's completion instead of
    /// its issue, and a dblock written below its own lver after a stale leader landed late.
    @Test func wholeSecondTimePassesTheSeedsThatFoundBugs() {
        for s in Array(UInt64(1)...30) + [835] {
            #expect(Simulation(config: .coarse(seed: s)).run().violation == nil, "seed \(s)")
        }
    }

    @Test func earlyDeadIsCaught() {
        #expect(firstViolation(.earlyDead, seeds: 1...200) != nil)
    }

    @Test func removingTheViewAgeCheckIsCaught() {
        #expect(firstViolation(.noViewAgeCheck, seeds: 1...300) != nil)
    }
}
