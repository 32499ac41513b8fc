import ArgumentParser
import DeltaLease
import DiskPaxos
import Simulation

/// `disklease simulate`: the deterministic simulator. A failing seed prints the command that
/// replays it exactly.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run seeded simulations of hosts contending for leases on one disk, with faults.",
        discussion: "Exits 0 when no invariant broke, 70 with the failing seed otherwise.")

    @Option(help: "First seed.") var seed: UInt64 = 1
    @Option(help: "How many consecutive seeds to run.") var seeds: Int = 1
    @Option(help: "Hosts per run (default 3; 2 with --boundary).") var hosts: Int?
    @Option(help: "Resources per run.") var resources: Int = 2
    @Option(help: "Events per run.") var steps: Int = 3000
    @Option(help: "live or full.") var mode: String = "live"
    @Option(help: "io_timeout in seconds.") var ioTimeout: Int = 1
    @Option(help: "Watchdog fire timeout in seconds.") var watchdog: Int = 4
    @Option(help: "Break a safety rule on purpose (noJoinWait, joinWaitEqualsBound, dropDeadBlocksAtOnce, noViewAgeCheck, earlyDead, noBallotBound) to see the checker catch it.")
    var mutation: [String] = []
    @Flag(help: "No injected faults.") var noFaults = false
    @Flag(help: "The join-storm fault profile: frequent crashes and rejoins, short lockspace-path outages.") var joinStorm = false
    @Flag(help: "Whole-second time: io_timeout 2, watchdog 8, viewMaxAge 3, ballotMaxDuration 2, every latency a whole second, join-storm faults, one resource (overrides those options).")
    var coarseClock = false
    @Flag(help: "The whole-second profile with the seed's choices leaning towards the bounds (view exactly viewMaxAge old, ballots exactly ballotMaxDuration long, rejoins on others' renewals).")
    var boundary = false
    @Flag(help: "Print every run's statistics.") var verbose = false
    @Flag(help: "Print host events (renewal failures, fencing) as they happen.") var debug = false

    func validate() throws {
        guard ReadMode(rawValue: mode) != nil else { throw ValidationError("--mode is live or full") }
        guard (1...64).contains(hostCount), (1...16).contains(resources), seeds >= 1, steps >= 1 else {
            throw ValidationError("hosts 1...64, resources 1...16, seeds and steps ≥ 1")
        }
        for m in mutation where SimulateCommand.mutations[m] == nil { throw ValidationError("unknown mutation \(m)") }
    }

    var hostCount: Int { hosts ?? (boundary ? 2 : 3) }

    static let mutations: [String: SafetyMutations] = [
        "noJoinWait": .noJoinWait, "joinWaitEqualsBound": .joinWaitEqualsBound,
        "dropDeadBlocksAtOnce": .dropDeadBlocksAtOnce, "noViewAgeCheck": .noViewAgeCheck,
        "earlyDead": .earlyDead, "noBallotBound": .noBallotBound,
    ]

    func config(seed: UInt64) -> SimConfig {
        var c = boundary ? SimConfig.boundary(seed: seed) : coarseClock ? SimConfig.coarse(seed: seed) : SimConfig(seed: seed)
        c.hosts = hostCount
        c.mode = ReadMode(rawValue: mode)!
        c.steps = steps
        c.mutations = SafetyMutations(mutation.map { SimulateCommand.mutations[$0]! })
        if coarseClock || boundary { return c }
        c.resources = resources
        c.timeouts = SimConfig.timeouts(ioTimeout: ioTimeout, watchdog: watchdog)
        if noFaults { c.faults = .none }
        if joinStorm { c.faults = .joinStorm }
        return c
    }

    func run() throws {
        var total = SimStats()
        for s in seed..<seed + UInt64(seeds) {
            let sim = Simulation(config: config(seed: s))
            sim.debugLog = debug
            let result = sim.run()
            total.add(result.stats)
            if verbose { FileHandleStream.stdout.write("seed \(s): \(result.stats)\n") }
            if let v = result.violation {
                let m = mutation.map { " --mutation \($0)" }.joined()
                FileHandleStream.stdout.write("\(v)\nreplay: disklease simulate --seed \(s) --hosts \(hostCount) --resources \(resources) --steps \(steps) --mode \(mode) --io-timeout \(ioTimeout) --watchdog \(watchdog)\(m)\(noFaults ? " --no-faults" : "")\(joinStorm ? " --join-storm" : "")\(coarseClock ? " --coarse-clock" : "")\(boundary ? " --boundary" : "")\n")
                throw ExitCode(70)
            }
        }
        FileHandleStream.stdout.write("\(seeds) seed(s) from \(seed), no violation: \(total)\n")
    }
}
