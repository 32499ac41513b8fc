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
    @Option(help: "Daemon hosts per run (each runs the host core diskleased runs; default 3, 4 with --churn).")
    var hosts: Int?
    @Option(help: "Direct hosts per run (disklease direct acquire/release, no daemon).") var directHosts: Int = 1
    @Option(help: "Resources per run.") var resources: Int?
    @Option(help: "Events per run (default 4000; 80000 with --races).") var steps: Int?
    @Option(help: "live or full.") var mode: String = "live"
    @Option(
        help: ArgumentHelp(
            "Break a rule on purpose to see the checker catch it: "
                + "\(SafetyMutations.named.map(\.0).joined(separator: ", ")).")
    )
    var mutation: [String] = []
    @Flag(help: "No injected faults.") var noFaults = false
    @Flag(help: "Every host shares io_timeout 1 and watchdog 4 (otherwise each picks its own).") var sharedTimeouts =
        false
    @Flag(
        help: ArgumentHelp(
            "The join-storm profile: frequent crashes, daemon restarts, leaves and lockspace-path outages, one "
                + "resource.")
    )
    var joinStorm = false
    @Flag(
        help: ArgumentHelp(
            "The churn profile: four hosts on one resource, leaves and rejoins, ballots disrupted between their "
                + "reads and writes (daemon stopped, leave, others joining).")
    )
    var churn = false
    @Flag(
        help: ArgumentHelp(
            "The races profile: five hosts on one resource; ballots stalled between reads and writes while left "
                + "hosts join and contend, commits lost by hosts that then die or leave.")
    )
    var races = false
    @Flag(help: "Whole-second time: every latency and tick a whole second, join-storm faults, one resource.")
    var coarseClock = false
    @Flag(help: "Print every run's statistics.") var verbose = false
    @Flag(help: "Print host events as they happen.") var debug = false

    func validate() throws {
        guard ReadMode(rawValue: mode) != nil else { throw ValidationError("--mode is live or full") }
        guard (1...64).contains(hosts ?? 1), (0...8).contains(directHosts), (1...16).contains(resources ?? 1),
            seeds >= 1, steps ?? 1 >= 1
        else {
            throw ValidationError("hosts 1...64, direct hosts 0...8, resources 1...16, seeds and steps ≥ 1")
        }
        for m in mutation where Self.mutation(named: m) == nil { throw ValidationError("unknown mutation \(m)") }
    }

    static func mutation(named n: String) -> SafetyMutations? { SafetyMutations.named.first { $0.0 == n }?.1 }

    func config(seed: UInt64) -> SimConfig {
        var c =
            coarseClock
            ? SimConfig.coarse(seed: seed)
            : joinStorm
                ? SimConfig.joinStorm(seed: seed)
                : churn ? SimConfig.churn(seed: seed) : races ? SimConfig.races(seed: seed) : SimConfig(seed: seed)
        if let hosts { c.hosts = hosts }
        c.directHosts = directHosts
        c.mode = ReadMode(rawValue: mode)!
        if let steps { c.steps = steps }
        c.mutations = SafetyMutations(mutation.map { Self.mutation(named: $0)! })
        if let resources { c.resources = resources }
        if noFaults { c.faults = .none }
        if sharedTimeouts { c.faults.perHostTimeouts = false }
        return c
    }

    var replayFlags: String {
        var s = "\(hosts.map { "--hosts \($0) " } ?? "")--direct-hosts \(directHosts)"
        if let steps { s += " --steps \(steps)" }
        s += " --mode \(mode)"
        if let resources { s += " --resources \(resources)" }
        s += mutation.map { " --mutation \($0)" }.joined()
        if noFaults { s += " --no-faults" }
        if sharedTimeouts { s += " --shared-timeouts" }
        if joinStorm { s += " --join-storm" }
        if coarseClock { s += " --coarse-clock" }
        if churn { s += " --churn" }
        if races { s += " --races" }
        return s
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
                FileHandleStream.stdout.write("\(v)\nreplay: disklease simulate --seed \(s) \(replayFlags) --debug\n")
                throw ExitCode(70)
            }
        }
        FileHandleStream.stdout.write("\(seeds) seed(s) from \(seed), no violation: \(total)\n")
    }
}
