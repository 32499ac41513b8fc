import DeltaLease
import DiskPaxos
import HostCore
import LeaseFormat

/// An operation the simulated shell is running for a host core (or a direct host).
struct RunningOp {
    var id: OpID
    var op: HostOperation
    /// Bumped when the operation is abandoned, so late events for it are dropped.
    var token: Int
    var lane: Lane
    /// Actions the operation asked for, and how many of them have gone to the disk (a held
    /// action goes exactly once, however many times it is released).
    var actionsAsked = 0
    var actionsDone = 0
}

/// What a local process believes it holds: the checker's ground truth for "who may write".
struct Belief: Hashable {
    var lver: UInt64
    var shared: Bool
}

/// One local process of a daemon host (a VM): it asks the daemon for leases, believes it
/// holds them from the grant until it lets go, and can be killed by the fencer.
struct SimProcess {
    var client: ClientRef
    var alive = true
    /// The request it waits for, if any, and what for.
    var waiting: (id: RequestID, kind: Kind)? = nil
    var beliefs: [Int: Belief] = [:]
    var nextAction: Nanos = 0
    /// Ignores every signal (stuck in uninterruptible I/O).
    var unkillable = false
    var holdUntil: Nanos = 0

    enum Kind {
        case acquire(resource: Int, shared: Bool, persistent: Bool)
        case convert(resource: Int, toShared: Bool)
        case release(resource: Int)
        case request(resource: Int)
    }
}

/// One simulated host running the daemon: its clocks, the daemon's host core and its shell
/// (operations, processes, the fencer, the watchdog), and the disk state it keeps across
/// daemon restarts (the state file).
final class SimHost {
    let id: Int
    let timeouts: Timeouts
    let hasWatchdog: Bool
    /// Clock rate relative to simulation time, and offset (each host booted at another time).
    let rate: Double
    let offset: Nanos
    /// Power cycles (everything restarts) and daemon incarnations (the daemon restarts).
    var powerCycle = 0
    var incarnation = 0
    var powered = false
    var daemonUp = false
    var suspendedUntil: Nanos = 0
    var suspendedTotal: Nanos = 0
    var resumePending = false
    var pausedUntil: Nanos = 0
    var storageLostUntil: Nanos = 0
    var lockspaceLostUntil: Nanos = 0
    var core: HostCore? = nil
    /// The state file: survives daemon crashes and power cycles (it is on the host's disk).
    var stateFile: [PersistedLease] = []
    var ops: [OpID: RunningOp] = [:]
    var nextToken = 0
    var processes: [Int32: SimProcess] = [:] {
        didSet { believers = Set(processes.filter { $0.value.alive && !$0.value.beliefs.isEmpty }.keys) }
    }
    /// Live processes that believe they hold something (what the checker looks at).
    private(set) var believers: Set<Int32> = []
    var nextPid: Int32 = 100
    /// Requests in flight, by id: which process asked.
    var requests: [RequestID: Int32] = [:]
    var nextRequest: RequestID = 1
    var guardEntries: [String: GuardEntry] = [:]
    /// Core events produced while applying effects, fed once the current step is done.
    var pendingCoreEvents: [HostEvent] = []
    var feeding = false
    var watchdogArmed = false
    var watchdogFeedSerial = 0
    /// Victims the fencer is stopping (pid → when it dies).
    var dying: [ProcessRef: Nanos] = [:]
    /// The lockspace is joined in the core and not being left (for the leave fault).
    var leaving = false
    /// An acquire whose commit the races profile failed: the host leaves once it finishes.
    var leaveAfter: (incarnation: Int, op: OpID)? = nil
    /// Sectors with a write issued by this host still to land, per daemon incarnation.
    var inFlight: [UInt64: [Int: Int]] = [:]
    /// One host's writes to one sector land in the order it issued them.
    var lastLandAtSector: [UInt64: (time: Nanos, tiebreak: UInt64)] = [:]

    init(id: Int, timeouts: Timeouts, hasWatchdog: Bool, rate: Double, offset: Nanos) {
        self.id = id
        self.timeouts = timeouts
        self.hasWatchdog = hasWatchdog
        self.rate = rate
        self.offset = offset
    }

    /// Whether anything on the host runs at simulation time `t`.
    func running(at t: Nanos) -> Bool { powered && suspendedUntil <= t }
    /// Whether the daemon processes events at `t` (not SIGSTOPped, not crashed).
    func daemonRuns(at t: Nanos) -> Bool { running(at: t) && daemonUp && pausedUntil <= t }

    /// This host's clocks at simulation time `t` (monotonic stops while suspended).
    func clocks(_ t: Nanos) -> HostTime {
        HostTime(mono: offset + Nanos(Double(t - suspendedTotal) * rate), boot: offset + Nanos(Double(t) * rate))
    }
    /// The simulation time at which this host's monotonic clock reads `l` (if not suspended again).
    func global(mono l: Nanos) -> Nanos { Nanos((Double(l - offset) / rate).rounded(.up)) + suspendedTotal }
    /// The simulation time at which this host's boot clock reads `l`.
    func global(boot l: Nanos) -> Nanos { Nanos((Double(l - offset) / rate).rounded(.up)) }

    var ioTimeout: Nanos { Clock.seconds(timeouts.ioTimeoutSeconds) }

    func pendingWrites(incarnation inc: Int, sector: UInt64) -> Int { inFlight[sector]?[inc] ?? 0 }
    var anyPendingWrites: Bool { inFlight.values.contains { $0.values.contains { $0 > 0 } } }
}

/// A host running `disklease direct` commands one after another (no daemon, no fencing):
/// join, then (renew, acquire, hold a little, release) again and again.
final class SimDirectHost {
    let id: Int
    let timeouts: Timeouts
    let rate: Double
    let offset: Nanos
    var powerCycle = 0
    var powered = false
    var record: LeaderRecord? = nil
    var lastRenewal: Nanos = 0
    var op: RunningOp? = nil
    var step = Step.join
    var holding: (resource: Int, grant: Grant)? = nil
    var belief: (resource: Int, belief: Belief)? = nil
    var membership: Membership? = nil
    var scanEpoch: EpochStamp? = nil
    var renewalStart: Nanos = 0
    var view: LiveView
    var highestMbal: [Int: UInt64] = [:]
    var highestLver: [Int: UInt64] = [:]
    var nextToken = 0
    var lastLandAtSector: [UInt64: (time: Nanos, tiebreak: UInt64)] = [:]
    var inFlight: [UInt64: Int] = [:]

    enum Step { case join, renew, scan, acquire(Int), hold(Int), release(Int), idle }

    init(id: Int, diskID: Int, timeouts: Timeouts, rate: Double, offset: Nanos) {
        self.id = id
        self.timeouts = timeouts
        self.rate = rate
        self.offset = offset
        view = LiveView(ourHostID: diskID, timeouts: timeouts)
    }

    func mono(_ t: Nanos) -> Nanos { offset + Nanos(Double(t) * rate) }
    func global(_ l: Nanos) -> Nanos { Nanos((Double(l - offset) / rate).rounded(.up)) }
}
