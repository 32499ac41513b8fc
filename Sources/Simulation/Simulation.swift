import DeltaLease
import DirectIO
import DiskPaxos
import HostCore
import LeaseFormat

/// A broken invariant, with everything needed to replay it.
public struct Violation: Error, Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var step: Int
    public var time: Nanos
    public var message: String
    public var description: String {
        "VIOLATION seed=\(seed) step=\(step) t=\(Double(time) / 1e9)s: \(message)"
    }
}

public struct SimResult: Sendable {
    public var violation: Violation?
    public var stats: SimStats
}

/// N daemon hosts and some direct hosts on one simulated disk. Every daemon host runs the
/// very `HostCore` diskleased runs; the simulator plays its shell (running operations on the
/// disk, the fencer, the watchdog, the state file) and its local processes, and injects
/// faults. After every event the checker (SimChecker.swift) verifies mutual exclusion as the
/// processes believe it, one decided value per version, and that blocks never go back.
public final class Simulation {
    public let config: SimConfig
    var rng: SplitMix64
    var now: Nanos = 0
    var stepCount = 0
    var queue = EventQueue()
    var disk: SimDisk
    var hosts: [SimHost] = []
    var directs: [SimDirectHost] = []
    let lockspace: AreaLayout
    let resources: [PaxosResource]
    var stats = SimStats()
    var violation: Violation? = nil
    var checker = SimChecker()
    /// Reads in flight, each request sampled at its own instant.
    struct PendingRead {
        var source: IOSource
        var ranges: [IORange]
        var bytes: [[UInt8]?]
    }
    var pendingReads: [Int: PendingRead] = [:]
    var nextRead = 1
    /// Writes the churn profile holds back until another host's ballot is mid-way.
    /// Resources nobody but the races profile's contenders may ask for until then.
    var quietUntil: [Int: Nanos] = [:]
    var heldWrites: [(host: Int, cycle: Int, op: OpID, opToken: Int, token: Int, action: IOAction)] = []

    /// Prints host events as they happen (for replaying one seed by hand).
    public var debugLog = false

    public init(config: SimConfig) {
        self.config = config
        rng = SplitMix64(seed: config.seed)
        let g = config.geometry
        disk = SimDisk(size: (1 + config.resources) * g.alignSize, sectorSize: g.sectorSize)
        lockspace = AreaLayout(offset: 0, geometry: g)
        resources = (0..<config.resources).map {
            PaxosResource(
                space: "sim", name: "r\($0)", layout: AreaLayout(offset: UInt64((1 + $0) * g.alignSize), geometry: g))
        }
        disk.land(0, try! InitImage.lockspace(space: "sim", geometry: g, ioTimeout: UInt16(config.ioTimeout)).final)
        for r in resources {
            disk.land(
                r.layout.offset,
                try! InitImage.resource(space: "sim", resource: r.name, geometry: g, numHosts: g.maxHosts).final)
        }
        makeHosts()
    }

    private func makeHosts() {
        let spread = config.faults.clockRateSpread
        func rate() -> Double { 1 + (spread > 0 ? (Double(rng.next() % 2001) / 1000 - 1) * spread : 0) }
        for h in 1...config.hosts {
            let io = config.faults.perHostTimeouts ? 1 + Int(rng.next() % 3) : config.ioTimeout
            let w =
                config.faults.perHostTimeouts ? config.watchdogSeconds + Int(rng.next() % 3) : config.watchdogSeconds
            // Hosts booted at different times; clocks far from 0 (timestamp 0 means free).
            let host = SimHost(
                id: h, timeouts: Timeouts(ioTimeoutSeconds: io, watchdogFireSeconds: w),
                hasWatchdog: rng.next() % 2 == 0, rate: rate(), offset: Clock.seconds(1000 + Int(rng.next() % 5000)))
            hosts.append(host)
            schedule(at: quantized(Nanos(rng.next() % UInt64(Clock.seconds(2)))), .boot(host: h))
        }
        for d in 0..<config.directHosts {
            let id = config.hosts + 1 + d
            let io = config.faults.perHostTimeouts ? 1 + Int(rng.next() % 3) : config.ioTimeout
            let host = SimDirectHost(
                id: id, diskID: config.diskID(id),
                timeouts: Timeouts(ioTimeoutSeconds: io, watchdogFireSeconds: config.watchdogSeconds),
                rate: rate(), offset: Clock.seconds(1000 + Int(rng.next() % 5000)))
            directs.append(host)
            schedule(
                at: quantized(Clock.seconds(1) + Nanos(rng.next() % UInt64(Clock.seconds(3)))), .directBoot(host: id))
        }
    }

    /// Runs until `config.steps` events or the first violation.
    public func run() -> SimResult {
        while stepCount < config.steps, violation == nil, let e = queue.pop() {
            now = e.time
            stepCount += 1
            process(e.kind)
            if violation == nil { checkAfterStep() }
        }
        stats.steps = stepCount
        stats.simulatedSeconds = Double(now) / 1e9
        return SimResult(violation: violation, stats: stats)
    }

    // MARK: - Events

    enum EventKind {
        case boot(host: Int)
        case daemonStart(host: Int, cycle: Int)
        case tick(host: Int, cycle: Int)
        case deliver(host: Int, cycle: Int, op: OpID, token: Int, result: IOResult)
        case sample(read: Int, index: Int)
        case readDone(read: Int)
        case land(host: Int, cycle: Int, incarnation: Int, offset: UInt64, bytes: [UInt8])
        case drained(host: Int, cycle: Int, op: OpID, token: Int)
        case processWake(host: Int, cycle: Int, pid: Int32)
        case victimDies(host: Int, cycle: Int, process: ProcessRef)
        case watchdogFire(host: Int, cycle: Int, serial: Int)
        case rejoin(host: Int, cycle: Int, incarnation: Int)
        case performLater(host: Int, cycle: Int, op: OpID, opToken: Int, token: Int, action: IOAction)
        case victimStuck(host: Int, cycle: Int, victim: Victim)
        case directBoot(host: Int)
        case directWake(host: Int, cycle: Int)
        case contend(host: Int, cycle: Int, resource: Int, tries: Int)
    }

    /// `d` rounded down to the quantum (unchanged in nanosecond time).
    func quantized(_ d: Nanos) -> Nanos {
        guard let q = config.quantum else { return d }
        return d / q * q
    }

    /// A random instant in [now, now + latency) for nanosecond time; in whole-quantum time,
    /// a random multiple of the quantum in [now, now + latency].
    func instant(within latency: Nanos) -> Nanos {
        if let q = config.quantum { return now + q * Nanos(rng.next() % UInt64(latency / q + 1)) }
        return now + Nanos(rng.next() % UInt64(max(1, latency)))
    }

    /// Schedules an event; among events at the same instant the order is the seed's, except
    /// that `after` (a tiebreak returned earlier) puts this one behind that one.
    func schedule(at t: Nanos, _ kind: EventKind, after: UInt64? = nil) {
        _ = enqueue(at: t, kind, after: after)
    }

    /// `schedule`, returning the event's tiebreak.
    func enqueue(at t: Nanos, _ kind: EventKind, after: UInt64? = nil) -> UInt64 {
        var tiebreak = rng.next()
        if let a = after {
            let room = UInt64.max - a
            tiebreak = room <= 1 ? UInt64.max : a + 1 + tiebreak % (room - 1)
        }
        queue.push(at: max(t, now), kind, tiebreak: tiebreak)
        return tiebreak
    }

    func chance(_ p: Double) -> Bool { p > 0 && Double(rng.next() % 1_000_000) / 1e6 < p }

    func debug(_ s: @autoclosure () -> String) {
        if debugLog { print("t=\(Double(now) / 1e9) \(s())") }
    }

    func process(_ kind: EventKind) {
        resumeSuspendedHosts()
        switch kind {
        case .boot(let h): boot(hosts[h - 1])
        case let .daemonStart(h, cycle): daemonStart(hosts[h - 1], cycle: cycle)
        case let .tick(h, cycle): hostTick(hosts[h - 1], cycle: cycle)
        case let .deliver(h, cycle, op, token, result): deliver(h, cycle: cycle, op: op, token: token, result)
        case let .sample(id, i): sample(read: id, index: i)
        case .readDone(let id): readDone(id)
        case let .land(h, _, inc, offset, bytes): land(h, incarnation: inc, offset, bytes)
        case let .drained(h, cycle, op, token): drainDone(hosts[h - 1], cycle: cycle, op: op, token: token)
        case let .processWake(h, cycle, pid): processWake(hosts[h - 1], cycle: cycle, pid: pid)
        case let .victimDies(h, cycle, p): victimDies(hosts[h - 1], cycle: cycle, p)
        case let .watchdogFire(h, cycle, serial): watchdogFire(hosts[h - 1], cycle: cycle, serial: serial)
        case let .rejoin(h, cycle, inc): rejoinLockspace(hosts[h - 1], cycle: cycle, incarnation: inc)
        case let .performLater(h, cycle, op, opToken, token, action):
            performLater(hosts[h - 1], cycle: cycle, op: op, opToken: opToken, token: token, action)
        case let .victimStuck(h, cycle, v):
            let host = hosts[h - 1]
            if host.powerCycle == cycle, host.daemonRuns(at: now) { feed(host, .victimUnconfirmed(v)) }
        case .directBoot(let h): directBoot(directs[h - config.hosts - 1])
        case let .directWake(h, cycle): directWake(directs[h - config.hosts - 1], cycle: cycle)
        case let .contend(h, cycle, r, tries): contendNow(hosts[h - 1], cycle: cycle, resource: r, tries: tries)
        }
    }

    /// The host, if `h` is a daemon host, else nil (a direct host).
    func daemonHost(_ h: Int) -> SimHost? { h <= config.hosts ? hosts[h - 1] : nil }
}

public struct SimStats: Sendable, CustomStringConvertible {
    public init() {}

    /// Adds another run's figures (for totals over many seeds).
    public mutating func add(_ o: SimStats) {
        steps += o.steps; grantsExclusive += o.grantsExclusive; grantsShared += o.grantsShared
        releases += o.releases; hostCrashes += o.hostCrashes; daemonCrashes += o.daemonCrashes; pauses += o.pauses
        suspends += o.suspends; storageLosses += o.storageLosses; ioTimeouts += o.ioTimeouts; fenced += o.fenced
        victimsKilled += o.victimsKilled; leaves += o.leaves; epochRebuilds += o.epochRebuilds; converts += o.converts
        directGrants += o.directGrants; orphansAdopted += o.orphansAdopted; staleLeaderLandings += o.staleLeaderLandings
        leaderRepairs += o.leaderRepairs; watchdogResets += o.watchdogResets; simulatedSeconds += o.simulatedSeconds
    }
    public var steps = 0
    public var grantsExclusive = 0
    public var grantsShared = 0
    public var releases = 0
    public var hostCrashes = 0
    public var daemonCrashes = 0
    public var pauses = 0
    public var suspends = 0
    public var storageLosses = 0
    public var ioTimeouts = 0
    public var fenced = 0
    public var victimsKilled = 0
    public var leaves = 0
    public var epochRebuilds = 0
    public var converts = 0
    public var directGrants = 0
    public var orphansAdopted = 0
    public var staleLeaderLandings = 0
    public var leaderRepairs = 0
    public var watchdogResets = 0
    public var simulatedSeconds: Double = 0
    public var description: String {
        "steps=\(steps) sim=\(Int(simulatedSeconds))s grants(ex=\(grantsExclusive) sh=\(grantsShared) "
            + "direct=\(directGrants)) "
            + "releases=\(releases) converts=\(converts) orphansAdopted=\(orphansAdopted) hostCrashes=\(hostCrashes) "
            + "daemonCrashes=\(daemonCrashes) pauses=\(pauses) suspends=\(suspends) storageLoss=\(storageLosses) "
            + "ioTimeouts=\(ioTimeouts) fenced=\(fenced) victimsKilled=\(victimsKilled) "
            + "watchdogResets=\(watchdogResets) "
            + "leaves=\(leaves) epochRebuilds=\(epochRebuilds) staleLeaderLandings=\(staleLeaderLandings) "
            + "leaderRepairs=\(leaderRepairs)"
    }
}
