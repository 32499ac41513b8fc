import ArgumentParser
import DeltaLease
import DirectIO
import DiskLeaseClient
import DiskPaxos
import LeaseFormat
import LeaseRunner

#if canImport(Glibc)
import Glibc
#endif

/// `disklease direct`: the protocol without a daemon, one process per host, like
/// `sanlock direct`. Every command reads what it needs from disk.
struct DirectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "direct",
        abstract: "Join, renew, leave, acquire and release directly on the device (no daemon).",
        discussion: """
            A direct acquire first renews our delta lease (refusing if it has lapsed: others
            may already treat us as dead; join again), then reads the lockspace's membership
            (the epoch, then the slots) and ballots reading only the blocks of present hosts,
            as the daemon does (docs/AGREEMENT.md). --mode full reads every block.
            """,
        subcommands: [
            DirectJoin.self, DirectRenew.self, DirectLeave.self, DirectAcquire.self, DirectRelease.self,
            DirectStress.self,
        ])
}

extension ReadMode: ExpressibleByArgument {}

struct TimeoutOptions: ParsableArguments {
    @Option(help: "io_timeout in seconds (default: the one in our delta lease, else 10).") var ioTimeout: Int?
    @Option(help: "Watchdog fire timeout in seconds.") var watchdog = 60

    func validate() throws {
        if let io = ioTimeout, !(1...255).contains(io) { throw ValidationError("--io-timeout is 1...255") }
        guard (1...3600).contains(watchdog) else { throw ValidationError("--watchdog is 1...3600") }
    }

    func timeouts(recordIoTimeout: UInt16?) -> Timeouts {
        let recorded = recordIoTimeout.map(Int.init).flatMap { (1...255).contains($0) ? $0 : nil }
        return Timeouts(ioTimeoutSeconds: ioTimeout ?? recorded ?? 10, watchdogFireSeconds: watchdog)
    }
}

/// The lockspace and timing options every direct command takes.
struct DirectHostOptions: ParsableArguments {
    @Option(name: .customShort("s"), help: "LOCKSPACE = name:host_id:path:offset") var lockspace: LockspaceSpec
    @OptionGroup var timing: TimeoutOptions

    func host() throws(CLIFailure) -> DirectHost { try DirectHost(lockspace, options: timing) }
}

/// One host's access to a lockspace on a device, for the direct commands.
struct DirectHost {
    let spec: LockspaceSpec
    let access: AreaAccess
    let layout: AreaLayout
    let timeouts: Timeouts
    /// Our delta-lease sector as read when the lockspace was opened (its io_timeout sets
    /// `timeouts`; `ownRecord` checks it, so a command reads it once).
    let slot: [UInt8]

    /// `queueDepth` bounds the requests in flight: batched work on many resources wants room
    /// for all of a phase's requests at once.
    init(_ spec: LockspaceSpec, options: TimeoutOptions, queueDepth: Int = 512) throws(CLIFailure) {
        guard spec.hostID >= 1 else { throw CLIFailure("host_id must be 1 or more for direct commands", .usage) }
        self.spec = spec
        access = try AreaAccess(path: spec.path, readOnly: false, queueDepth: queueDepth)
        let start = try access.readAreaStart(spec.offset)
        let g = try access.declaredGeometry(at: spec.offset, start: start)
        guard spec.hostID <= g.maxHosts else {
            throw CLIFailure(path: spec.path, .hostIDOutOfRange(hostID: UInt64(spec.hostID), maxHosts: g.maxHosts))
        }
        layout = AreaLayout(offset: spec.offset, geometry: g)
        slot = try access.read(layout.deltaOffset(hostID: spec.hostID), g.sectorSize)
        timeouts = options.timeouts(recordIoTimeout: LeaderRecord(decoding: slot).ioTimeout)
    }

    var runner: Runner { Runner(device: access.device, ioTimeout: timeouts.ioTimeout) }

    /// Runs a host-id operation, turning its failure into the CLI's one-line error.
    func run<Op: LeaseOperation, T>(_ op: Op) throws(CLIFailure) -> T where Op.Output == Result<T, DeltaError> {
        switch runner.run(op) {
        case .success(let v): return v
        case .failure(let e): throw CLIFailure("\(spec.path): \(e)", e.exitStatus)
        }
    }

    /// Our delta lease, which must be held (joined) by us, as read at open.
    func ownRecord() throws(CLIFailure) -> LeaderRecord {
        let at = layout.deltaOffset(hostID: spec.hostID)
        let r: LeaderRecord
        do {
            r = try LeaderRecord.verifyDelta(slot, deviceOffset: at, space: spec.name)
        } catch {
            throw CLIFailure(path: spec.path, error)
        }
        guard r.ownerID == UInt64(spec.hostID), r.timestamp != 0 else {
            throw CLIFailure(
                "\(spec.path): offset \(at): host_id \(spec.hostID) has not joined lockspace \(spec.name) (run "
                    + "direct join)",
                .usage)
        }
        return r
    }

    /// The resource, checked against the lockspace and the device.
    func resource(_ r: ResourceSpec) throws(CLIFailure) -> PaxosResource {
        guard r.path == spec.path, r.lockspace == spec.name else {
            throw CLIFailure(
                "resource \(r.lockspace):\(r.name) must be in lockspace \(spec.name) on \(spec.path)", .usage)
        }
        let start = try access.readAreaStart(r.offset)
        let g = try access.declaredGeometry(at: r.offset, start: start)
        return PaxosResource(space: r.lockspace, name: r.name, layout: AreaLayout(offset: r.offset, geometry: g))
    }

}

func hostName(_ given: String?) -> String {
    if let given { return given }
    let node = nodeName()
    var rng = SystemRandomNumberGenerator()
    let id = String(rng.next() & 0xFFFF_FFFF_FFFF, radix: 16)
    return String("\(LiveView.nameMarker)\(id).\(node)".prefix(LeaseName.hostNameMax))
}

struct DirectJoin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Acquire a host id (delta lease): waits 2·io_timeout, longer if the slot was held by another name.")
    @OptionGroup var options: DirectHostOptions
    @Option(help: "Unique host name (default: dl:<random>.<nodename>; reuse one to rejoin without waiting).") var name:
        String?
    var lockspace: LockspaceSpec { options.lockspace }

    func run() throws {
        try reporting {
            let host = try options.host()
            var rng = SystemRandomNumberGenerator()
            let j = try host.run(
                DeltaJoin(
                    layout: host.layout, space: lockspace.name, hostID: lockspace.hostID,
                    hostName: hostName(name), timeouts: host.timeouts, nonce: rng.next()))
            FileHandleStream.stdout.write(
                "joined \(lockspace.name) host_id \(lockspace.hostID) generation \(j.generation) name "
                    + "\(j.record.resourceName)\n"
            )
        }
    }
}

struct DirectRenew: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "renew", abstract: "Renew our delta lease once.")
    @OptionGroup var options: DirectHostOptions
    var lockspace: LockspaceSpec { options.lockspace }

    func run() throws {
        try reporting {
            let host = try options.host()
            let last = try host.ownRecord()
            let r = try host.run(
                DeltaRenew(
                    layout: host.layout, space: lockspace.name, hostID: lockspace.hostID, last: last,
                    timeouts: host.timeouts, previousSucceeded: false))
            FileHandleStream.stdout.write("renewed host_id \(lockspace.hostID) timestamp \(r.record.timestamp)\n")
        }
    }
}

struct DirectLeave: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leave", abstract: "Release our delta lease (timestamp 0, then a new membership epoch).")
    @OptionGroup var options: DirectHostOptions
    var lockspace: LockspaceSpec { options.lockspace }

    func run() throws {
        try reporting {
            let host = try options.host()
            let last = try host.ownRecord()
            var rng = SystemRandomNumberGenerator()
            _ = try host.run(
                DeltaLeave(
                    layout: host.layout, space: lockspace.name, hostID: lockspace.hostID, last: last, nonce: rng.next())
            )
            FileHandleStream.stdout.write("left \(lockspace.name) host_id \(lockspace.hostID)\n")
        }
    }
}

struct DirectAcquire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acquire",
        abstract: "Acquire a resource lease; prints the fencing token (lver).",
        discussion: """
            Exits 0 with the lease, 75 when another host holds it (or won the race, or this
            host already holds it), 74 on I/O errors, 65 when our delta lease has lapsed (join
            again). One read of the lockspace cannot tell whether the owner's host is alive;
            without --owner-wait such an owner counts as holding the lease (exit 75 at once).
            """)
    @Option(name: .customShort("r"), help: "RESOURCE = lockspace:name:path:offset[:lver|:SH]") var resource:
        ResourceSpec
    @OptionGroup var options: DirectHostOptions
    @Option(help: "Ballot reads: live (present hosts' blocks, the default) or full (every block, as sanlock).")
    var mode: ReadMode = .live
    @Flag(
        help: ArgumentHelp(
            "When the owner's host is neither known live nor dead, watch its delta lease (as sanlock direct acquire "
                + "does): refuse as soon as it renews, take the lease over once it has not renewed for "
                + "host_dead_seconds.")
    )
    var ownerWait = false
    var lockspace: LockspaceSpec { options.lockspace }

    func run() throws {
        try reporting {
            let host = try options.host()
            var session = try DirectSession.open(host)
            let res = try host.resource(resource)
            var options = PaxosAcquire.Options(shared: resource.shared, noWait: true, requiredLver: resource.lver)
            options.maxBallots = 32
            options.refuseIfOurs = true
            var rng = SystemRandomNumberGenerator()
            var announced = false
            while true {
                let op = PaxosAcquire(
                    resource: res, host: session.paxosHost, context: try session.ballotContext(mode: mode),
                    options: options, seed: rng.next())
                var running = op
                var trace = IOTrace()
                let out = host.runner.run(&running, trace: &trace)
                session.adopt(running.finalContext)
                options.minimumMbal = max(options.minimumMbal, running.highestMbal)
                options.minimumLver = running.highestLver
                switch out {
                case .success(let g):
                    FileHandleStream.stdout.write(
                        "acquired \(resource.lockspace):\(resource.name) lver \(g.lver)\(g.shared ? " shared" : "")\n")
                    return
                case .failure(.held(let owner, _, _, let state))
                where ownerWait && (state == .unknown || state == .fail):
                    // UNKNOWN and FAIL both end: a renewal makes the owner LIVE, and
                    // host_dead_seconds without one make it DEAD. Each pass reads its slot,
                    // and our own lease is renewed as it falls due.
                    if !announced {
                        FileHandleStream.stderr.write(
                            "waiting: owner host_id \(owner) is \(state.rawValue); watching its delta lease\n")
                        announced = true
                    }
                    MonotonicClock.sleep(until: MonotonicClock.now() + Clock.seconds(1))
                    try session.watch(Int(clamping: owner))
                case .failure(let e):
                    throw CLIFailure("\(resource.path): \(resource.lockspace):\(resource.name): \(e)", e.exitStatus)
                }
            }
        }
    }
}

struct DirectRelease: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release", abstract: "Release a resource lease we hold.")
    @Option(name: .customShort("r"), help: "RESOURCE = lockspace:name:path:offset[:SH]") var resource: ResourceSpec
    @OptionGroup var options: DirectHostOptions
    var lockspace: LockspaceSpec { options.lockspace }

    func run() throws {
        try reporting {
            let host = try options.host()
            let me = try host.ownRecord()
            let res = try host.resource(resource)
            let grant = try heldGrant(host: host, me: me, resource: res, shared: resource.shared)
            switch host.runner.run(PaxosRelease(grant: grant)) {
            case .success:
                FileHandleStream.stdout.write("released \(resource.lockspace):\(resource.name) lver \(grant.lver)\n")
            case .failure(let e): throw CLIFailure("\(resource.path): \(e)", e.exitStatus)
            }
        }
    }
}

/// Rebuilds the grant a direct process holds from the leader and our dblock on disk.
func heldGrant(
    host: DirectHost, me: LeaderRecord, resource res: PaxosResource, shared: Bool
) throws(CLIFailure) -> Grant {
    let ss = res.layout.geometry.sectorSize
    let leaderBytes = try host.access.read(res.layout.leaderOffset, ss)
    let leader: LeaderRecord
    do {
        leader = try LeaderRecord.verifyPaxos(
            leaderBytes, deviceOffset: res.layout.offset, space: res.space, resource: res.name)
    } catch {
        throw CLIFailure(path: host.spec.path, error)
    }
    let mine = try host.access.read(res.layout.dblockOffset(hostID: host.spec.hostID), ss)
    let us = UInt64(host.spec.hostID)
    if !shared {
        guard leader.ownerID == us, leader.ownerGeneration == me.ownerGeneration, leader.timestamp != 0 else {
            throw CLIFailure(
                "\(host.spec.path): \(res.space):\(res.name) is not held by host_id \(us) generation "
                    + "\(me.ownerGeneration)",
                .corrupt)
        }
    }
    return Grant(
        resource: res, host: PaxosHost(hostID: host.spec.hostID, generation: me.ownerGeneration), lver: leader.lver,
        shared: shared, leader: leader, dblock: PaxosDblock(decoding: mine), dominated: [:], ballots: 0)
}

extension DeltaError {
    var exitStatus: ExitStatus {
        switch self {
        case .io: return .io
        case .format: return .corrupt
        case .hostIDBusy: return .busy
        case .renewOwner, .renewDiff: return .corrupt
        case .badHostName: return .usage
        }
    }
}

extension PaxosError {
    var exitStatus: ExitStatus {
        switch self {
        case .io: return .io
        case .leader, .corruptDblock: return .corrupt
        case .geometryMismatch: return .geometry
        case .held, .acquiredByOther, .sharedHolders, .contended, .lverMismatch, .membershipChurn, .alreadyHeld:
            return .busy
        case .outOfRange: return .corrupt
        case .membership(let d): return d.exitStatus
        case .notOwner: return .usage
        }
    }
}
