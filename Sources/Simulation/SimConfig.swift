import DeltaLease
import DiskPaxos
import LeaseFormat

/// Which faults a run injects, as probabilities per I/O or per host event.
public struct FaultRates: Sendable, Hashable {
    /// An I/O takes between 0.2 and 0.9 io_timeout instead of a few milliseconds.
    public var slowIO = 0.05
    /// An I/O outlasts io_timeout: the caller sees a timeout, a write still lands later.
    public var timeoutIO = 0.02
    /// An I/O fails with EIO (a write may or may not have landed).
    public var eio = 0.01
    /// A host crashes at a scheduling point (in-flight writes land or are lost, sector by sector).
    public var crash = 0.002
    /// A host's process pauses; one pause in five outlasts host_dead_seconds.
    public var pause = 0.002
    /// A host's storage path fails for a while (every I/O times out), as a detached LUN would.
    public var storageLoss = 0.001
    /// Only the path to the lockspace fails for a while (lockspace and resources on different
    /// LUNs): renewals and view refreshes time out while ballots go on.
    public var lockspacePathLoss = 0.003
    public var lockspaceLossMaxSeconds = 10
    /// A host crashes right after issuing a write (its sectors land or not, one by one).
    public var crashOnWrite = 0.01
    /// A host that holds nothing and has no write in flight leaves the lockspace (timestamp 0,
    /// as rem_lockspace) and joins again a few seconds later: its slot turns FREE, others drop
    /// its block once shown stale, and its rejoin needs no host_dead wait, so joins meet
    /// ballots that do not read the joiner.
    public var leave = 0.002
    /// Hosts' clocks run at rates within ±this of each other (e.g. 1e-4 = 100 ppm).
    public var clockRateSpread = 1e-4

    public init() {}

    /// Many joins and late renewals: hosts crash and rejoin often, and the lockspace path drops
    /// for short spells, so views of 2N–viewMaxAge age meet fresh joiners. This is the profile
    /// that exposes join-wait and view-age mistakes.
    public static let joinStorm: FaultRates = {
        var f = FaultRates()
        f.crash = 0.01
        f.crashOnWrite = 0.02
        f.lockspacePathLoss = 0.05
        f.lockspaceLossMaxSeconds = 3
        f.pause = 0.001
        f.leave = 0.01
        return f
    }()

    /// The join-storm profile for whole-second time (`SimConfig.coarse`): no clock-rate
    /// spread, since exact ties are the point, and many slow I/Os so that ballots last whole
    /// multiples of a second and end exactly at their bound.
    public static let coarseClock: FaultRates = {
        var f = FaultRates.joinStorm
        f.slowIO = 0.5
        f.clockRateSpread = 0
        f.leave = 0.1
        return f
    }()

    /// For `SimConfig.boundary`: leaves and rejoins instead of crashes, few failed I/Os (a
    /// chain of exact instants breaks at any fault), half the I/Os a whole second slow.
    public static let boundary: FaultRates = {
        var f = FaultRates()
        f.slowIO = 0.5
        f.clockRateSpread = 0
        f.leave = 0.1
        f.crash = 0.001
        f.crashOnWrite = 0.002
        f.timeoutIO = 0.005
        f.eio = 0.002
        f.lockspacePathLoss = 0.002
        f.lockspaceLossMaxSeconds = 3
        f.storageLoss = 0.0005
        f.pause = 0.001
        return f
    }()

    public static let none: FaultRates = {
        var f = FaultRates()
        f.slowIO = 0; f.timeoutIO = 0; f.eio = 0; f.crash = 0; f.pause = 0; f.storageLoss = 0; f.clockRateSpread = 0
        f.lockspacePathLoss = 0; f.crashOnWrite = 0; f.leave = 0
        return f
    }()
}

/// One simulation run's parameters. A run is fully determined by these and the seed.
public struct SimConfig: Sendable, Hashable {
    public var seed: UInt64
    public var hosts = 3
    public var resources = 2
    /// Events to process (every I/O completion, write landing, wake-up and tick is one).
    public var steps = 3000
    public var geometry = Geometry.g512_1M
    public var timeouts = SimConfig.timeouts(ioTimeout: 1, watchdog: 4)

    /// The simulator's bounds for an io_timeout: viewMaxAge and ballotMaxDuration at 3N keep
    /// the join wait (6N + 1) inside the 8N renewal-fail window, so the windows the rules
    /// guard actually occur.
    public static func timeouts(ioTimeout: Int, watchdog: Int) -> Timeouts {
        Timeouts(ioTimeoutSeconds: ioTimeout, watchdogFireSeconds: watchdog,
                 viewMaxAgeSeconds: 3 * ioTimeout, ballotMaxDurationSeconds: 3 * ioTimeout)
    }
    /// When set, every latency, tick and restart delay is a whole multiple of this, and all
    /// clocks run at one rate: events meet exactly at the bounds (a view exactly viewMaxAge
    /// old, a ballot exactly ballotMaxDuration long, a join exactly joinWait ago) and their
    /// order at that instant is the seed's choice. Boundary mistakes (`<` for `<=`) show here;
    /// nanosecond time almost never meets a bound exactly.
    public var quantum: Nanos? = nil
    /// Whole-quantum time only: the seed's choices lean towards the bounds instead of being
    /// uniform (each with odds `aimOdds`). An acquire waits until the view is exactly
    /// viewMaxAge old; a phase-2 write lands exactly when its ballot reaches
    /// ballotMaxDuration, and the rest of that ballot takes no time; a host that left rejoins
    /// at the instant another host, which has shown its old block stale and holds nothing,
    /// starts a renewal; a host's first acquire at the end of its join wait takes no time.
    /// Every choice stays one the real system could make; only their odds change.
    public var aimAtBounds = false
    /// How often each aimed choice is taken when aiming.
    public var aimOdds = 0.8
    public var mode = ReadMode.live
    public var faults = FaultRates()
    public var mutations: SafetyMutations = []
    /// Probability that an acquire asks for a shared lease.
    public var sharedRatio = 0.2

    public init(seed: UInt64) { self.seed = seed }

    /// The whole-second profile: io_timeout 2, watchdog 8, viewMaxAge 3, ballotMaxDuration 2
    /// (join wait 6), one-second quantum, join-storm faults. A joiner's join takes 2·io_timeout
    /// = 4 s, so its first ballot can fall exactly at join wait, and slow I/Os of one second
    /// make a ballot exactly 2 s long.
    public static func coarse(seed: UInt64) -> SimConfig {
        var c = SimConfig(seed: seed)
        c.quantum = Clock.seconds(1)
        c.timeouts = Timeouts(ioTimeoutSeconds: 2, watchdogFireSeconds: 8, viewMaxAgeSeconds: 3, ballotMaxDurationSeconds: 2)
        c.faults = .coarseClock
        c.resources = 1
        return c
    }

    /// The whole-second profile with the seed aiming at the bounds (`aimAtBounds`): the
    /// profile that must catch a join wait equal to its bound.
    public static func boundary(seed: UInt64) -> SimConfig {
        var c = coarse(seed: seed)
        c.aimAtBounds = true
        c.faults = .boundary
        c.hosts = 2  // a third host's ballots mostly end the race before it starts
        return c
    }
}
