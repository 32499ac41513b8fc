import DeltaLease
import DiskPaxos
import LeaseFormat

/// The two clocks the host core is given, never reads: CLOCK_MONOTONIC for what others' slots
/// show (a pause of ours must not make them look dead) and for request deadlines, and
/// CLOCK_BOOTTIME for our own fencing deadline (a pause or suspend of ours must count).
public struct HostTime: Sendable, Hashable, CustomStringConvertible {
    public var mono: Nanos
    public var boot: Nanos
    public init(mono: Nanos, boot: Nanos) {
        self.mono = mono
        self.boot = boot
    }
    public var description: String { "mono \(Double(mono) / 1e9)s boot \(Double(boot) / 1e9)s" }
}

/// A resource as the host names it: lockspace and resource name (one area per name).
public struct ResourceKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var lockspace: String
    public var name: String
    public init(lockspace: String, name: String) {
        self.lockspace = lockspace
        self.name = name
    }
    public static func < (a: Self, b: Self) -> Bool { (a.lockspace, a.name) < (b.lockspace, b.name) }
    public var description: String { "\(lockspace):\(name)" }
}

/// A local process as the shell identified it: its connection, its pid and the pid's start
/// time (so a reused pid is never mistaken for it).
public struct ClientRef: Hashable, Sendable, CustomStringConvertible {
    public var id: UInt64
    public var pid: Int32
    public var startTime: UInt64
    public init(id: UInt64, pid: Int32, startTime: UInt64) {
        self.id = id
        self.pid = pid
        self.startTime = startTime
    }
    public var description: String { "client \(id) pid \(pid)" }
    /// The process that opened the connection.
    public var process: ProcessRef { ProcessRef(pid: pid, startTime: startTime) }
}

/// A process that must be stopped when its lockspace fails: pid plus start time, and what it
/// holds (for the kill hook's arguments).
public struct Victim: Hashable, Sendable, CustomStringConvertible {
    public var pid: Int32
    public var startTime: UInt64
    public var lockspace: String
    public var resource: String
    public init(pid: Int32, startTime: UInt64, lockspace: String, resource: String) {
        self.pid = pid
        self.startTime = startTime
        self.lockspace = lockspace
        self.resource = resource
    }
    /// The process itself, whatever it holds.
    public var process: ProcessRef { ProcessRef(pid: pid, startTime: startTime) }
    public var description: String { "pid \(pid) (\(lockspace):\(resource))" }
}

/// One process, identified so that pid reuse cannot alias it.
public struct ProcessRef: Hashable, Sendable {
    public var pid: Int32
    public var startTime: UInt64
    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }
}

/// What the shell found out about a lockspace before asking to join it (device opened, area
/// probed, geometry known).
public struct LockspaceSetup: Sendable, Hashable {
    public var name: String
    public var hostID: Int
    public var path: String
    public var offset: UInt64
    public var layout: AreaLayout
    public var timeouts: Timeouts
    public var mode: ReadMode
    public var hostName: String
    public init(
        name: String, hostID: Int, path: String, offset: UInt64, layout: AreaLayout, timeouts: Timeouts,
        mode: ReadMode, hostName: String
    ) {
        self.name = name
        self.hostID = hostID
        self.path = path
        self.offset = offset
        self.layout = layout
        self.timeouts = timeouts
        self.mode = mode
        self.hostName = hostName
    }
}

/// One lease a process holds, as the state file keeps it across daemon restarts.
public struct PersistedLease: Sendable, Hashable, Codable {
    public var lockspace: String
    public var resource: String
    public var path: String
    public var offset: UInt64
    public var lver: UInt64
    public var shared: Bool
    public var pid: Int32
    public var startTime: UInt64
    public var persistent: Bool
    public var orphan: Bool
    public var releaseRequested: Bool
    /// A holder being stopped after its lockspace failed, not yet confirmed gone: the next
    /// incarnation must stop it before it feeds the watchdog, and has no lease to recover.
    public var fenced: Bool?
    public init(
        lockspace: String, resource: String, path: String, offset: UInt64, lver: UInt64, shared: Bool, pid: Int32,
        startTime: UInt64, persistent: Bool, orphan: Bool, releaseRequested: Bool, fenced: Bool? = nil
    ) {
        self.fenced = fenced
        self.lockspace = lockspace
        self.resource = resource
        self.path = path
        self.offset = offset
        self.lver = lver
        self.shared = shared
        self.pid = pid
        self.startTime = startTime
        self.persistent = persistent
        self.orphan = orphan
        self.releaseRequested = releaseRequested
    }
    public var key: ResourceKey { ResourceKey(lockspace: lockspace, name: resource) }
}

/// An acquire as the shell validated it.
public struct AcquireRequest: Sendable, Hashable {
    public var key: ResourceKey
    public var path: String
    public var offset: UInt64
    public var shared: Bool
    /// Wait for the lease (true) or fail at once with `busy` (try-acquire).
    public var wait: Bool
    /// Give up at this monotonic time (nil: wait as long as it takes).
    public var deadline: Nanos?
    public var requiredLver: UInt64?
    public var persistent: Bool
    public init(
        key: ResourceKey, path: String, offset: UInt64, shared: Bool = false, wait: Bool = true,
        deadline: Nanos? = nil, requiredLver: UInt64? = nil, persistent: Bool = false
    ) {
        self.key = key
        self.path = path
        self.offset = offset
        self.shared = shared
        self.wait = wait
        self.deadline = deadline
        self.requiredLver = requiredLver
        self.persistent = persistent
    }
}

/// A request the shell is waiting to answer.
public typealias RequestID = UInt64
/// An operation the core asked the shell to run.
public typealias OpID = UInt64

/// Why a request failed, in the codes of the daemon's wire protocol.
public struct HostFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case badRequest = "bad_request", noLockspace = "no_lockspace", joining, busy, timeout
        case notOwner = "not_owner", fenced, io, corrupt, exists, permission, internalError = "internal"
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

public enum HostReply: Sendable, Hashable {
    case ok
    /// A lease granted (acquire) or kept (convert): its lver, the fencing token.
    case granted(lver: UInt64)
    case failed(HostFailure)
}

/// Which device handle and thread an operation runs on: renewals must never wait behind
/// ballots, so a lockspace has one lane for its host-id I/O and ballots run beside it.
public enum Lane: Sendable, Hashable {
    case renewal
    case ballot
}

/// An operation the shell runs to completion (on a real device, or on the simulated disk) and
/// reports back with `HostEvent.finished`.
public enum HostOperation: Sendable {
    case join(DeltaJoin)
    case renew(DeltaRenew)
    case scan(MembershipScan)
    case leave(DeltaLeave)
    case acquire(PaxosAcquire)
    case release(PaxosRelease)
    case request(PaxosRequest)
    case checkRequests(RequestCheck)
    /// Wait up to this long for our timed-out I/O in the lockspace (both lanes) to complete.
    case drain(timeoutNanos: Nanos)
}

/// What a `HostOperation` returned, typed per kind.
public enum HostOutput: Sendable {
    case join(DeltaJoin.Output)
    case renew(DeltaRenew.Output)
    case scan(MembershipScan.Output)
    case leave(DeltaLeave.Output)
    /// The acquire's result and the operation as it ended (its context and mbal carry on).
    case acquire(PaxosAcquire.Output, PaxosAcquire)
    case release(PaxosRelease.Output)
    case request(PaxosRequest.Output)
    case checkRequests(RequestCheck.Output)
    /// Timed-out requests still outstanding after the drain.
    case drained(outstanding: Int)
}

public enum LogLevel: String, Sendable {
    case debug, info, notice, warning, error, critical
}

/// What the independent fencer (a process apart from the daemon, like sanlock's wdmd) must
/// enforce for one lockspace even if the daemon stops: at `expiry` (boot clock) every victim
/// still running is stopped.
public struct GuardEntry: Sendable, Hashable {
    public var expiry: Nanos?
    public var victims: [Victim]
    public init(expiry: Nanos?, victims: [Victim]) {
        self.expiry = expiry
        self.victims = victims
    }
}

public enum HostEffect: Sendable {
    case run(OpID, lockspace: String, lane: Lane, HostOperation)
    case reply(RequestID, HostReply)
    /// The state file must hold this before any reply that follows in the same step is sent.
    case persist([PersistedLease])
    /// Stop these processes: kill hook, SIGTERM, SIGKILL; report each with `victimGone` or
    /// `victimUnconfirmed`.
    case fence(lockspace: String, victims: [Victim], reason: String)
    /// The independent fencer's whole state, whenever it changes.
    case guardState([String: GuardEntry])
    /// Whether the watchdog may be fed now (sent on every tick).
    case watchdog(feed: Bool)
    case log(LogLevel, String, [String: String])
}

public enum HostEvent: Sendable {
    /// Time passed (the shell sends one at least every second).
    case tick
    /// Start: the previous incarnation's leases from the state file (empty on a first start).
    case start(previous: [PersistedLease])
    /// Join a lockspace; `reply` answers once joined (or at once if nil is not given... see core).
    case addLockspace(LockspaceSetup, reply: RequestID?, waitJoined: Bool)
    case remLockspace(String, reply: RequestID)
    case acquire(RequestID, ClientRef, AcquireRequest)
    /// A process's own release.
    case release(RequestID, ClientRef, ResourceKey)
    /// Root releasing on behalf of a process (pid 0: an orphan).
    case releaseFor(RequestID, pid: Int32, ResourceKey)
    case convert(RequestID, ClientRef, ResourceKey, toShared: Bool)
    /// Ask the owner of a lease to release it (writes the request record, sets our bit).
    case requestRelease(RequestID, PaxosResource, lver: UInt64?)
    /// The connection closed: the process is gone (or let go).
    case clientGone(ClientRef)
    case finished(OpID, HostOutput)
    case victimGone(Victim)
    /// The fencer could not confirm the process gone: the watchdog stays unfed.
    case victimUnconfirmed(Victim)
    /// Clean stop: release everything, leave every lockspace, then answer.
    case shutdown(RequestID)
}
