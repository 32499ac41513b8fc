import DeltaLease
import DiskPaxos
import LeaseFormat

/// An operation running in one of a host's two lanes (the daemon's renewal thread and its
/// resource worker), type-erased so the simulator can drive any of them.
enum LaneOp {
    case join(DeltaJoin)
    case renew(DeltaRenew)
    case refresh(ViewRefresh)
    case acquire(PaxosAcquire, resource: Int)
    case release(PaxosRelease, resource: Int)
    case leave(DeltaLeave)

    /// Starts or resumes the operation. Returns the next action, or nil when it finished, in
    /// which case the finished operation (holding its output) is in `self`.
    mutating func advance(_ result: IOResult?, now: Nanos) -> (action: IOAction?, output: Any?) {
        func run<Op: LeaseOperation>(_ op: inout Op) -> (IOAction?, Any?) {
            let step = result.map { op.resume($0, now: now) } ?? op.start(now: now)
            switch step {
            case .perform(let a): return (a, nil)
            case .finished(let out): return (nil, out)
            }
        }
        switch self {
        case .join(var op): defer { self = .join(op) }; return run(&op)
        case .renew(var op): defer { self = .renew(op) }; return run(&op)
        case .refresh(var op): defer { self = .refresh(op) }; return run(&op)
        case .acquire(var op, let r): defer { self = .acquire(op, resource: r) }; return run(&op)
        case .release(var op, let r): defer { self = .release(op, resource: r) }; return run(&op)
        case .leave(var op): defer { self = .leave(op) }; return run(&op)
        }
    }
}

enum LaneID: Hashable { case renewal, worker }

struct Lane {
    var op: LaneOp? = nil
    /// Bumped whenever the lane's operation is abandoned, so late events for it are dropped.
    var token = 0
    /// The version whose decision this lane's acquire last reported to the checker.
    var decidedLver: UInt64? = nil
}

/// One simulated host: its clock, its daemon's state, and the leases its processes believe
/// they hold.
final class SimHost {
    let id: Int
    /// Clock rate relative to simulation time, and offset (each host booted at another time).
    let rate: Double
    let offset: Nanos
    var incarnation = 0
    var up = false
    var name = ""
    /// The lockspace failed (renewals failed for 8·io_timeout): no lease use until restart.
    var fenced = false
    var pausedUntil: Nanos = 0
    var storageLostUntil: Nanos = 0
    var lockspaceLostUntil: Nanos = 0
    var record: LeaderRecord? = nil
    var lastRenewOK = true
    var joinedAt: Nanos? = nil
    var lastSuccess: Nanos = 0
    var nextRenewAt: Nanos = 0
    var workerIdleUntil: Nanos = 0
    /// The worker waits for the join wait to end (aiming leaves that instant alone).
    var joinWaitEnded = false
    /// Aiming: the worker's I/O takes no time until that first acquire ends.
    var sprint = false
    /// Aiming: after a leave, waiting for another host's renewal to cue the rejoin.
    var awaitingRejoinCue = false
    var view: LiveView
    var stale: [Int: [Int: HostIncarnation]] = [:]
    var highestMbal: [Int: UInt64] = [:]
    var maxLverSeen: [Int: UInt64] = [:]
    var grants: [Int: Grant] = [:]
    var holdUntil: [Int: Nanos] = [:]
    var lanes: [LaneID: Lane] = [.renewal: Lane(), .worker: Lane()]
    /// Writes from one host land in the order it issued them (one queue per path).
    var lastLandAt: Nanos = 0
    /// In whole-quantum time, per sector instead.
    var lastLandAtSector: [UInt64: (time: Nanos, tiebreak: UInt64)] = [:]

    init(id: Int, rate: Double, offset: Nanos, timeouts: Timeouts) {
        self.id = id
        self.rate = rate
        self.offset = offset
        self.view = LiveView(ourHostID: id, timeouts: timeouts)
    }

    /// This host's monotonic clock at simulation time `t`.
    func local(_ t: Nanos) -> Nanos { offset + Nanos(Double(t) * rate) }
    /// The simulation time at which this host's clock reads `l`.
    func global(_ l: Nanos) -> Nanos { Nanos((Double(l - offset) / rate).rounded(.up)) }

    var joined: Bool { joinedAt != nil && record != nil }
}
