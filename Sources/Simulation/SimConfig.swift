import DeltaLease
import DiskPaxos
import LeaseFormat

/// Which faults a run injects, as probabilities per host tick (or per I/O for I/O faults).
public struct FaultRates: Sendable, Hashable {
    /// An I/O takes between 0.2 and 0.9 io_timeout instead of a few milliseconds.
    public var slowIO = 0.05
    /// An I/O outlasts io_timeout: the caller sees a timeout, a write still lands later.
    public var timeoutIO = 0.02
    /// An I/O fails with EIO (a write may or may not have landed).
    public var eio = 0.01
    /// A write that times out lands much later than usual (up to 6·io_timeout): a commit
    /// landing after newer ones moves the leader back.
    public var lateLanding = 0.2
    /// The host loses power (everything stops; in-flight writes land or are lost, sector by
    /// sector) and boots again a few seconds later.
    public var hostCrash = 0.001
    /// Of crashed hosts, how many stay down past host_dead_seconds (others then call them
    /// DEAD while their blocks still carry what they last wrote).
    public var longOutage = 0.25
    /// The host crashes right after issuing a write.
    public var crashOnWrite = 0.004
    /// The daemon is SIGKILLed (its holders and the fencer go on) and restarted later.
    public var daemonCrash = 0.002
    /// The daemon is SIGSTOPped for a while (one in five past host_dead), then SIGCONTinued.
    public var daemonPause = 0.002
    /// The whole host is suspended (its monotonic clock stops, the boot clock does not).
    public var suspend = 0.001
    /// A host's storage path fails for a while (every I/O times out), as a detached LUN would.
    public var storageLoss = 0.001
    /// Only the path to the lockspace fails for a while: renewals time out, ballots go on.
    public var lockspacePathLoss = 0.003
    public var lockspaceLossMaxSeconds = 10
    /// rem_lockspace, whatever is in flight (holders must have released), and add again later.
    public var leave = 0.003
    /// Hosts' clocks run at rates within ±this of each other (e.g. 1e-4 = 100 ppm).
    public var clockRateSpread = 1e-4
    /// Each host picks its own io_timeout (1–3 s) and watchdog timeout instead of sharing one.
    public var perHostTimeouts = true
    /// A fenced holder on a host with a watchdog ignores SIGKILL (stuck in uninterruptible
    /// I/O): only the watchdog's reset stops it, and the fencer cannot confirm it gone.
    public var unkillable = 0.2
    /// When an acquire has read a phase and is about to write, its host is disrupted: its
    /// daemon stops for 2–6·io_timeout or past host_dead, or it leaves the lockspace, or
    /// every host outside the lockspace joins right then. The timings membership mistakes
    /// need; rare by chance, so the churn profile aims at them.
    public var midBallot = 0.0
    /// When an acquire has decided and is about to write its commit, the commit is lost: the
    /// host loses power and stays down until every other host calls it DEAD, or the write
    /// fails, the ballot retracts and the host leaves the lockspace. Other hosts then contend
    /// for the resource (`contend`): the decided value lives only in the block of a host that
    /// is dead or gone, which is what rules 2 and 6 keep in read sets.
    public var commitLoss = 0.0
    /// Every aimed disruption (`midBallot`, `commitLoss`) also makes idle processes on the
    /// other hosts (and on hosts joining right then, as soon as their join completes) ask for
    /// the same resource, so that a second ballot meets the disrupted one.
    public var contend = false

    public init() {}

    /// Many joins, leaves and crashes: membership changes meet ballots all the time.
    public static let joinStorm: FaultRates = {
        var f = FaultRates()
        f.hostCrash = 0.004
        f.daemonCrash = 0.006
        f.crashOnWrite = 0.01
        f.lockspacePathLoss = 0.05
        f.lockspaceLossMaxSeconds = 3
        f.leave = 0.02
        return f
    }()

    /// For whole-second time: no clock-rate spread (exact ties are the point) and many slow
    /// I/Os, so events meet at the same instants in every order the seed picks.
    public static let coarseClock: FaultRates = {
        var f = FaultRates.joinStorm
        f.slowIO = 0.5
        f.clockRateSpread = 0
        f.leave = 0.05
        return f
    }()

    /// Membership churn aimed at ballots in flight: many leaves and rejoins, slow I/O, and
    /// ballots disrupted between their reads and writes (`midBallot`).
    public static let churn: FaultRates = {
        var f = FaultRates()
        f.slowIO = 0.3
        f.leave = 0.01
        f.midBallot = 0.3
        return f
    }()

    /// The membership races of docs/AGREEMENT.md, aimed at: ballots stalled between their
    /// reads and writes while left hosts join and contend at once, commits lost by hosts that
    /// then die or leave, many leaves so that joiners are always at hand, slow reads so that a
    /// batch's sectors are sampled far apart.
    public static let races: FaultRates = {
        var f = FaultRates()
        f.slowIO = 0.4
        f.timeoutIO = 0.01
        f.hostCrash = 0.0005
        f.crashOnWrite = 0.0005
        f.daemonCrash = 0.0005
        f.daemonPause = 0.001
        f.suspend = 0.0005
        f.leave = 0.01
        f.midBallot = 0.5
        f.commitLoss = 0.05
        f.contend = true
        return f
    }()

    /// The races profile's other half: few leaves and crashes, so that views grow old enough
    /// to call a stopped host DEAD, and many lost commits.
    public static let racesSettled: FaultRates = {
        var f = FaultRates.races
        f.leave = 0.001
        f.hostCrash = 0.0002
        f.crashOnWrite = 0.0002
        f.daemonCrash = 0.0002
        f.suspend = 0.0002
        f.storageLoss = 0.0002
        f.lockspacePathLoss = 0.0005
        f.commitLoss = 0.2
        f.midBallot = 0.1
        return f
    }()

    public static let none: FaultRates = {
        var f = FaultRates()
        f.slowIO = 0; f.timeoutIO = 0; f.eio = 0; f.lateLanding = 0; f.hostCrash = 0; f.crashOnWrite = 0
        f.daemonCrash = 0; f.daemonPause = 0; f.suspend = 0; f.storageLoss = 0; f.lockspacePathLoss = 0
        f.leave = 0; f.clockRateSpread = 0; f.perHostTimeouts = false; f.unkillable = 0; f.midBallot = 0
        f.commitLoss = 0; f.contend = false
        return f
    }()
}

/// One simulation run's parameters. A run is fully determined by these and the seed.
public struct SimConfig: Sendable, Hashable {
    public var seed: UInt64
    /// Hosts running the daemon's host core.
    public var hosts = 3
    /// Hosts running `disklease direct` commands (no daemon, no fencing): join, then renew,
    /// acquire with live reads, hold briefly, release.
    public var directHosts = 1
    public var resources = 2
    /// Local processes per daemon host that acquire, convert, request and release leases.
    public var processesPerHost = 2
    /// Events to process (every I/O completion, write landing, wake-up and tick is one).
    public var steps = 4000
    public var geometry = Geometry.g512_1M
    /// io_timeout and watchdog timeout when hosts share them (and the base when they do not).
    public var ioTimeout = 1
    public var watchdogSeconds = 4
    /// Kill grace + term grace: how long the fencer may take to stop a holder.
    public var fenceGraceSeconds = 2
    /// When set, every latency, tick and restart delay is a whole multiple of this, and all
    /// clocks run at one rate: events meet exactly, in the order the seed picks.
    public var quantum: Nanos? = nil
    public var mode = ReadMode.live
    public var faults = FaultRates()
    public var mutations: SafetyMutations = []
    /// Probability that an acquire asks for a shared lease.
    public var sharedRatio = 0.25
    /// Host i (1-based) takes host id (i − 1)·stride + 1 on disk. Ballots read a gap between
    /// two hosts' blocks through when that is cheaper than another request (25 sectors), so
    /// with neighbouring ids a block dropped from a read set is still read; a stride above 25
    /// makes every read set exact, as in a cluster whose host ids are far apart.
    public var hostIDStride = 1

    /// The on-disk host id of simulated host `h`.
    public func diskID(_ h: Int) -> Int { (h - 1) * hostIDStride + 1 }

    public init(seed: UInt64) { self.seed = seed }

    /// The whole-second profile: one-second quantum, join-storm faults, one contended resource.
    public static func coarse(seed: UInt64) -> SimConfig {
        var c = SimConfig(seed: seed)
        c.quantum = Clock.seconds(1)
        c.ioTimeout = 2
        c.watchdogSeconds = 8
        c.faults = .coarseClock
        c.resources = 1
        return c
    }

    /// Four daemon hosts and a direct host on one resource, with the churn faults.
    public static func churn(seed: UInt64) -> SimConfig {
        var c = SimConfig(seed: seed)
        c.faults = .churn
        c.hosts = 4
        c.resources = 1
        return c
    }

    /// Five daemon hosts and a direct host on one resource, with the races faults (odd seeds)
    /// or the settled ones (even seeds).
    public static func races(seed: UInt64) -> SimConfig {
        var c = SimConfig(seed: seed)
        c.faults = seed % 2 == 0 ? .racesSettled : .races
        c.hostIDStride = 40
        c.hosts = 5
        c.resources = 1
        c.steps = 80000  // a few hundred simulated seconds: hosts must be called DEAD and return
        return c
    }

    public static func joinStorm(seed: UInt64) -> SimConfig {
        var c = SimConfig(seed: seed)
        c.faults = .joinStorm
        c.resources = 1
        return c
    }
}
