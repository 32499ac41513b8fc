import DeltaLease
import DirectIO
import DiskPaxos
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

public struct SimStats: Sendable, CustomStringConvertible {
    public init() {}

    /// Adds another run's figures (for totals over many seeds).
    public mutating func add(_ o: SimStats) {
        steps += o.steps; grantsExclusive += o.grantsExclusive; grantsShared += o.grantsShared
        releases += o.releases; crashes += o.crashes; pauses += o.pauses; storageLosses += o.storageLosses
        ioTimeouts += o.ioTimeouts; fenced += o.fenced; leaves += o.leaves; ballots += o.ballots
        staleLeaderLandings += o.staleLeaderLandings; simulatedSeconds += o.simulatedSeconds
    }
    public var steps = 0
    public var grantsExclusive = 0
    public var grantsShared = 0
    public var releases = 0
    public var crashes = 0
    public var pauses = 0
    public var storageLosses = 0
    public var ioTimeouts = 0
    public var fenced = 0
    public var leaves = 0
    public var ballots = 0
    public var staleLeaderLandings = 0
    public var simulatedSeconds: Double = 0
    public var description: String {
        "steps=\(steps) sim=\(Int(simulatedSeconds))s grants(ex=\(grantsExclusive) sh=\(grantsShared)) releases=\(releases) crashes=\(crashes) pauses=\(pauses) storageLoss=\(storageLosses) ioTimeouts=\(ioTimeouts) fenced=\(fenced) leaves=\(leaves) ballots=\(ballots) staleLeaderLandings=\(staleLeaderLandings)"
    }
}

public struct SimResult: Sendable {
    public var violation: Violation?
    public var stats: SimStats
}

/// N hosts on one simulated disk, driven through the real DeltaLease and DiskPaxos state
/// machines by one seeded event loop. After every event the checker verifies:
/// * at most one value is decided per resource and lver, and one exclusive grant per lver;
/// * at most one host believes it holds a resource exclusively, and none while another host
///   believes it holds it shared;
/// * leader lver, and each dblock's mbal and lver, never go backwards on disk.
/// A host believes it holds a lease from its grant until it starts releasing, crashes, is
/// fenced (its renewals failed for 8·io_timeout while its daemon ran) or is reset by its
/// watchdog (8·io_timeout + W after its last renewal, even while paused).
public final class Simulation {
    public let config: SimConfig
    var rng: SplitMix64
    var now: Nanos = 0
    var stepCount = 0
    var queue = EventQueue()
    var disk: SimDisk
    var hosts: [SimHost] = []
    let lockspace: AreaLayout
    let resources: [PaxosResource]
    var stats = SimStats()
    var violation: Violation? = nil
    // Checker state.
    var decisions: [Int: [UInt64: DecidedValue]] = [:]
    var exclusiveGrants: [Int: [UInt64: Set<String>]] = [:]
    var diskLver: [Int: UInt64] = [:]
    var dblockSeen: [UInt64: (mbal: UInt64, lver: UInt64)] = [:]

    struct DecidedValue: Equatable {
        var ownerID: UInt64, generation: UInt64, timestamp: UInt64
    }

    var N: Int { config.timeouts.ioTimeoutSeconds }
    var ioTimeout: Nanos { Clock.seconds(N) }

    /// Prints host events as they happen (for replaying one seed by hand).
    public var debugLog = false

    public init(config: SimConfig) {
        self.config = config
        rng = SplitMix64(seed: config.seed)
        let g = config.geometry
        disk = SimDisk(size: (1 + config.resources) * g.alignSize, sectorSize: g.sectorSize)
        lockspace = AreaLayout(offset: 0, geometry: g)
        resources = (0..<config.resources).map {
            PaxosResource(space: "sim", name: "r\($0)", layout: AreaLayout(offset: UInt64((1 + $0) * g.alignSize), geometry: g))
        }
        let ls = try! InitImage.lockspace(space: "sim", geometry: g, ioTimeout: UInt16(N)).final
        disk.land(0, ls)
        for r in resources {
            let img = try! InitImage.resource(space: "sim", resource: r.name, geometry: g, numHosts: g.maxHosts).final
            disk.land(r.layout.offset, img)
        }
        for h in 1...config.hosts {
            let spread = config.faults.clockRateSpread
            let rate = 1 + (spread > 0 ? (Double(rng.next() % 2001) / 1000 - 1) * spread : 0)
            // Hosts booted at different times; clocks far from 0 (timestamp 0 means free).
            let offset = Clock.seconds(1000 + Int(rng.next() % 5000))
            hosts.append(SimHost(id: h, rate: rate, offset: offset, timeouts: config.timeouts))
            schedule(at: quantized(Nanos(rng.next() % UInt64(Clock.seconds(2)))), .restart(host: h))
        }
    }

    /// Runs until `config.steps` events or the first violation.
    public func run() -> SimResult {
        while stepCount < config.steps, violation == nil, let e = queue.pop() {
            now = e.time
            stepCount += 1
            process(e.kind)
            if violation == nil { checkBeliefs() }
        }
        stats.steps = stepCount
        stats.simulatedSeconds = Double(now) / 1e9
        return SimResult(violation: violation, stats: stats)
    }

    // MARK: - Events

    enum EventKind {
        case restart(host: Int)
        case tick(host: Int, incarnation: Int)
        case deliver(host: Int, incarnation: Int, lane: LaneID, token: Int, result: IOResult)
        case snapshot(host: Int, incarnation: Int, lane: LaneID, token: Int, ranges: [IORange], completeAt: Nanos)
        case land(host: Int, incarnation: Int, offset: UInt64, bytes: [UInt8])
        case watchdog(host: Int, incarnation: Int, lastSuccess: Nanos)
        case join(host: Int, incarnation: Int)
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
        return now + Nanos(rng.next() % UInt64(latency))
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

    func process(_ kind: EventKind) {
        switch kind {
        case .restart(let h):
            restart(hosts[h - 1])
        case let .tick(h, inc):
            let host = hosts[h - 1]
            guard host.up, host.incarnation == inc else { return }
            if host.pausedUntil > now { return schedule(at: host.pausedUntil, kind) }
            tick(host)
        case let .deliver(h, inc, lane, token, result):
            let host = hosts[h - 1]
            guard host.up, host.incarnation == inc, host.lanes[lane]!.token == token else { return }
            if host.pausedUntil > now { return schedule(at: host.pausedUntil, kind) }
            advance(host, lane, result)
        case let .snapshot(h, inc, lane, token, ranges, completeAt):
            noteLeadersSeen(ranges, by: hosts[h - 1])
            if debugLog && ranges[0].offset > 0 {
                let l = LeaderRecord(decoding: disk.read([IORange(offset: ranges[0].offset - ranges[0].offset % UInt64(config.geometry.alignSize), length: 512)])[0])
                print("t=\(Double(now)/1e9) host \(h)/\(inc) reads @\(ranges.map(\.offset)) leader lver=\(l.lver) owner=\(l.ownerID) ts=\(l.timestamp)")
            }
            schedule(at: completeAt, .deliver(host: h, incarnation: inc, lane: lane, token: token, result: .read(disk.read(ranges))))
        case let .land(_, _, offset, bytes):
            land(offset, bytes)
        case let .watchdog(h, inc, lastSuccess):
            let host = hosts[h - 1]
            guard host.up, host.incarnation == inc, host.lastSuccess == lastSuccess else { return }
            crash(host, why: "watchdog reset")
        case let .join(h, inc):
            let host = hosts[h - 1]
            guard host.up, host.incarnation == inc, !host.joined, host.lanes[.renewal]!.op == nil else { return }
            if host.pausedUntil > now { return schedule(at: host.pausedUntil, kind) }
            startJoin(host)
        }
    }

    // MARK: - Host lifecycle

    func restart(_ host: SimHost) {
        host.incarnation += 1
        host.up = true
        host.fenced = false
        host.pausedUntil = 0
        host.storageLostUntil = 0
        host.lockspaceLostUntil = 0
        host.record = nil
        host.joinedAt = nil
        host.grants = [:]
        host.holdUntil = [:]
        host.view = LiveView(ourHostID: host.id, timeouts: config.timeouts)
        host.stale = [:]
        host.highestMbal = [:]
        host.maxLverSeen = [:]
        // A new name per incarnation, as sanlock's per-start UUID: rejoining waits host_dead.
        host.name = "\(LiveView.joinWaitMarker)h\(host.id)-\(host.incarnation)-\(rng.next() % 100_000)"
        startJoin(host)
        schedule(at: now + (config.quantum ?? Clock.seconds(1) / 5), .tick(host: host.id, incarnation: host.incarnation))
    }

    func startJoin(_ host: SimHost) {
        host.awaitingRejoinCue = false
        start(host, .renewal, .join(DeltaJoin(layout: lockspace, space: "sim", hostID: host.id, hostName: host.name, timeouts: config.timeouts)))
    }

    func crash(_ host: SimHost, why: String) {
        stats.crashes += 1
        host.up = false
        host.grants = [:]
        for id in [LaneID.renewal, .worker] { host.lanes[id] = Lane(op: nil, token: host.lanes[id]!.token + 1) }
        // Writes still in flight land or are lost, sector by sector.
        queue.removeAll { e in
            if case let .land(h, inc, _, _) = e.kind, h == host.id, inc == host.incarnation { return self.rng.next() % 2 == 0 }
            return false
        }
        schedule(at: now + Clock.seconds(1) + quantized(Nanos(rng.next() % UInt64(Clock.seconds(3)))), .restart(host: host.id))
    }

    func fence(_ host: SimHost) {
        if debugLog { print("t=\(Double(now)/1e9) host \(host.id) fenced; local-lastSuccess=\(Double(host.local(now) - host.lastSuccess)/1e9)") }
        stats.fenced += 1
        host.fenced = true
        host.grants = [:]
        host.lanes[.worker] = Lane(op: nil, token: host.lanes[.worker]!.token + 1)
    }

    func tick(_ host: SimHost) {
        let local = host.local(now)
        let next = config.quantum ?? Clock.seconds(1) / 10 + Nanos(rng.next() % UInt64(Clock.seconds(1) / 2))
        defer { schedule(at: now + next, .tick(host: host.id, incarnation: host.incarnation)) }
        injectFaults(host)
        guard host.up, host.pausedUntil <= now else { return }
        if host.joined && !host.fenced && local - host.lastSuccess > Clock.seconds(config.timeouts.renewalFailSeconds) {
            fence(host)
        }
        renewIfDue(host, local: local)
        work(host, local: local)
    }

    func renewIfDue(_ host: SimHost, local: Nanos) {
        if host.joined && !host.fenced && host.lanes[.renewal]!.op == nil && local >= host.nextRenewAt {
            if config.aimAtBounds { cueRejoins(host) }
            start(host, .renewal, .renew(DeltaRenew(layout: lockspace, space: "sim", hostID: host.id, last: host.record!,
                                                    timeouts: config.timeouts, previousSucceeded: host.lastRenewOK)))
        }
    }

    /// The worker lane's next job: leave, release a lease whose hold time is up, or acquire.
    func work(_ host: SimHost, local: Nanos) {
        guard host.joined, !host.fenced, host.lanes[.worker]!.op == nil, local >= host.workerIdleUntil else { return }
        if chance(config.faults.leave), host.grants.isEmpty, host.lanes[.renewal]!.op == nil, !writesInFlight(host) {
            return leave(host)
        }
        // Sorted: dictionary order differs between processes and would break replay.
        if let r = host.grants.keys.sorted().first(where: { local >= host.holdUntil[$0]! }), let g = host.grants[r] {
            host.grants[r] = nil  // the process lets go before the release I/O starts
            stats.releases += 1
            start(host, .worker, .release(PaxosRelease(grant: g), resource: r))
            return
        }
        let r = Int(rng.next() % UInt64(resources.count))
        guard host.grants[r] == nil else { return }
        if config.aimAtBounds, !host.joinWaitEnded, let age = host.view.age(now: local), age < Clock.seconds(config.timeouts.viewMaxAgeSeconds),
           chance(config.aimOdds) {
            host.workerIdleUntil = local - age + Clock.seconds(config.timeouts.viewMaxAgeSeconds)
            return
        }
        var options = PaxosAcquire.Options()
        options.shared = Double(rng.next() % 1000) / 1000 < config.sharedRatio
        options.noWait = rng.next() % 4 == 0
        options.minimumMbal = host.highestMbal[r] ?? 0
        let ctx = BallotContext(view: host.view, joinedAt: host.joinedAt!, mode: config.mode,
                                verifiedStale: host.stale[r] ?? [:], mutations: config.mutations)
        let op = PaxosAcquire(resource: resources[r], host: PaxosHost(hostID: host.id, generation: host.record!.ownerGeneration),
                              context: ctx, timeouts: config.timeouts, options: options, seed: rng.next())
        if debugLog { print("t=\(Double(now)/1e9) host \(host.id) acquire starts, view age \(Double(host.view.age(now: local) ?? -1)/1e9) readset \(ctx.dblockHosts(now: local))") }
        start(host, .worker, .acquire(op, resource: r))
    }

    func chance(_ p: Double) -> Bool { p > 0 && Double(rng.next() % 1_000_000) / 1e6 < p }

    /// Leaving as rem_lockspace does, once the host holds nothing and its device has no write
    /// in flight (a daemon drains its AIO context first: a ballot write landing after others
    /// dropped our block as stale could carry a value nobody reads). No ballot or renewal
    /// starts once it begins, and the watchdog is disarmed.
    func leave(_ host: SimHost) {
        stats.leaves += 1
        let last = host.record!
        host.joinedAt = nil
        host.lastSuccess = -1
        start(host, .renewal, .leave(DeltaLeave(layout: lockspace, hostID: host.id, last: last)))
    }

    /// A few seconds after leaving, or (when aiming) on a cue: the instant another host starts
    /// a renewal after it has shown our old block stale, so its view read meets our join write
    /// and its ballots no longer read our block. A fallback join keeps a missed cue harmless.
    func scheduleRejoin(_ host: SimHost) {
        if config.aimAtBounds, chance(config.aimOdds) {
            host.awaitingRejoinCue = true
            schedule(at: now + Clock.seconds(15 * N), .join(host: host.id, incarnation: host.incarnation))
        } else {
            schedule(at: now + Clock.seconds(1) + quantized(Nanos(rng.next() % UInt64(Clock.seconds(4 * N)))),
                     .join(host: host.id, incarnation: host.incarnation))
        }
    }

    /// Aiming: `renewing` starts a renewal; a host waiting for its rejoin cue may join now.
    func cueRejoins(_ renewing: SimHost) {
        guard renewing.grants.isEmpty else { return }  // it will ballot soon
        for j in hosts where j.awaitingRejoinCue && j.up && j.id != renewing.id {
            guard let left = j.record else { continue }
            let gone = HostIncarnation(generation: left.ownerGeneration, timestamp: 0)
            guard resources.indices.allSatisfy({ renewing.stale[$0]?[j.id] == gone }), chance(0.5) else { continue }  // half the cues: room for other timings
            if j.pausedUntil <= now && j.lanes[.renewal]!.op == nil { startJoin(j) }
        }
    }

    func writesInFlight(_ host: SimHost) -> Bool {
        queue.contains { e in
            if case let .land(h, inc, _, _) = e.kind { return h == host.id && inc == host.incarnation }
            return false
        }
    }

    func injectFaults(_ host: SimHost) {
        let f = config.faults
        if chance(f.crash) { return crash(host, why: "injected crash") }
        if chance(f.pause) {
            stats.pauses += 1
            let long = rng.next() % 5 == 0
            let secs = long ? config.timeouts.hostDeadSeconds + 1 + Int(rng.next() % 5) : 1 + Int(rng.next() % UInt64(3 * N))
            host.pausedUntil = now + Clock.seconds(secs)
        }
        if chance(f.lockspacePathLoss) {
            host.lockspaceLostUntil = now + Nanos(rng.next() % UInt64(Clock.seconds(f.lockspaceLossMaxSeconds * N)))
        }
        if chance(f.storageLoss) {
            stats.storageLosses += 1
            host.storageLostUntil = now + Clock.seconds(1 + Int(rng.next() % UInt64(12 * N)))
        }
    }

    // MARK: - Operations and I/O

    func start(_ host: SimHost, _ lane: LaneID, _ op: LaneOp) {
        host.lanes[lane] = Lane(op: op, token: host.lanes[lane]!.token + 1)
        advance(host, lane, nil)
    }

    func advance(_ host: SimHost, _ lane: LaneID, _ result: IOResult?) {
        guard var op = host.lanes[lane]!.op else { return }
        let (action, output) = op.advance(result, now: host.local(now))
        host.lanes[lane]!.op = op
        if case .acquire(let a, let r) = op, let d = a.decided, host.lanes[lane]!.decidedLver != d.lver {
            host.lanes[lane]!.decidedLver = d.lver
            recordDecision(resource: r, lver: d.lver, DecidedValue(ownerID: d.ownerID, generation: d.generation, timestamp: d.timestamp), by: host)
        }
        if let action { return perform(host, lane, action) }
        host.lanes[lane]!.op = nil
        finished(host, lane, op, output!)
    }

    func perform(_ host: SimHost, _ lane: LaneID, _ action: IOAction) {
        let token = host.lanes[lane]!.token
        let inc = host.incarnation
        if case .sleep(let until) = action {
            return schedule(at: host.global(until), .deliver(host: host.id, incarnation: inc, lane: lane, token: token, result: .slept))
        }
        let f = config.faults
        var latency = Nanos(rng.next() % 10_000_000) + 200_000  // 0.2–10.2 ms, a SAN's range
        var timedOut = false
        let lockspaceIO: Bool = {
            switch action {
            case .read(let r): return r[0].offset < UInt64(config.geometry.alignSize)
            case .write(let w): return w[0].offset < UInt64(config.geometry.alignSize)
            case .sleep: return false
            }
        }()
        // Aiming: a sprinting worker's I/O takes no time; a phase-2 write lands and completes
        // just as its ballot reaches its bound.
        let sprint = config.aimAtBounds && lane == .worker && host.sprint
        var aimedAt: Nanos? = nil
        if config.aimAtBounds, !sprint, case .acquire(let a, _)? = host.lanes[lane]!.op, a.writingPhase2, chance(config.aimOdds) {
            let bound = host.global(a.ballotStartedAt + Clock.seconds(config.timeouts.ballotMaxDurationSeconds))
            if bound >= now && bound - now <= ioTimeout {
                aimedAt = bound
                host.sprint = true  // the rest of this ballot takes no time: it decides at the bound
            }
            if debugLog { print("t=\(Double(now)/1e9) host \(host.id) phase-2 write aimed at \(aimedAt.map { Double($0) / 1e9 } ?? -1) (bound \(Double(bound) / 1e9))") }
        }
        let pathDown = host.storageLostUntil > now || (lockspaceIO && host.lockspaceLostUntil > now)
        if !pathDown && sprint {
            latency = 0
        } else if !pathDown, let t = aimedAt {
            latency = t - now
        } else if pathDown || chance(f.timeoutIO) {
            timedOut = true
            latency = ioTimeout + Nanos(rng.next() % UInt64(ioTimeout))  // lands (if ever) within 2N
        } else if chance(f.slowIO) {
            latency = ioTimeout / 5 + Nanos(rng.next() % UInt64(ioTimeout * 7 / 10))
        }
        latency = quantized(latency)
        if timedOut { aimedAt = nil }
        let eio = !sprint && aimedAt == nil && !timedOut && chance(f.eio)
        let offset: UInt64
        switch action {
        case .read(let ranges):
            offset = ranges[0].offset
            if timedOut || eio { break }
            let at = instant(within: latency)
            return schedule(at: at, .snapshot(host: host.id, incarnation: inc, lane: lane, token: token, ranges: ranges, completeAt: now + latency))
        case .write(let writes):
            offset = writes[0].offset
            checkIssuedLeaderWrites(writes, by: host)
            if debugLog {
                for w in writes {
                    let d = PaxosDblock(decoding: w.bytes)
                    print("t=\(Double(now)/1e9) host \(host.id)/\(host.incarnation) \(lane) writes @\(w.offset) mbal=\(d.mbal) bal=\(d.bal) lver=\(d.lver) timedOut=\(timedOut) eio=\(eio)")
                }
            }
            let ss = config.geometry.sectorSize
            var lastLand = now
            var lastLandTiebreak: UInt64? = nil
            for w in writes {
                for i in 0..<(w.bytes.count / ss) {
                    if eio && rng.next() % 2 == 0 { continue }
                    if host.storageLostUntil > now && rng.next() % 2 == 0 { continue }
                    let sector = w.offset + UInt64(i * ss)
                    let bytes = Array(w.bytes[i * ss..<(i + 1) * ss])
                    let at: Nanos, tie: UInt64
                    if config.quantum != nil {
                        // Same-instant landings of one host's different sectors may reorder,
                        // as on a real array; one sector's writes still land in issue order,
                        // at the same instant if need be (time stays on the quantum grid).
                        let prior = host.lastLandAtSector[sector]
                        at = max(prior?.time ?? 0, aimedAt ?? instant(within: latency))
                        tie = enqueue(at: at, .land(host: host.id, incarnation: inc, offset: sector, bytes: bytes),
                                      after: prior.flatMap { $0.time == at ? $0.tiebreak : nil })
                        host.lastLandAtSector[sector] = (at, tie)
                    } else {
                        at = max(host.lastLandAt + 1, instant(within: latency))
                        host.lastLandAt = at
                        tie = enqueue(at: at, .land(host: host.id, incarnation: inc, offset: sector, bytes: bytes))
                    }
                    if at > lastLand || lastLandTiebreak == nil { lastLandTiebreak = tie } else if at == lastLand { lastLandTiebreak = max(lastLandTiebreak!, tie) }
                    lastLand = max(lastLand, at)
                }
            }
            if chance(f.crashOnWrite) { crash(host, why: "crash with a write in flight"); return }
            if !timedOut && !eio {
                // The completion comes after the last sector landed, also at the same instant.
                let at = max(now + latency, lastLand)
                schedule(at: at, .deliver(host: host.id, incarnation: inc, lane: lane, token: token, result: .written),
                         after: at == lastLand ? lastLandTiebreak : nil)
                return
            }
        case .sleep:
            preconditionFailure("handled above")
        }
        let path = "sim-h\(host.id)"
        if timedOut {
            stats.ioTimeouts += 1
            let e = BlockIOError.timeout(path: path, offset: offset, inFlight: 1, timeoutMilliseconds: Int64(N) * 1000)
            schedule(at: now + ioTimeout, .deliver(host: host.id, incarnation: inc, lane: lane, token: token, result: .failed(e)))
        } else {
            let e = BlockIOError.ioError(path: path, offset: offset, length: 512, errno: 5)
            schedule(at: now + latency, .deliver(host: host.id, incarnation: inc, lane: lane, token: token, result: .failed(e)))
        }
    }

    func finished(_ host: SimHost, _ lane: LaneID, _ op: LaneOp, _ output: Any) {
        let local = host.local(now)
        switch op {
        case .join:
            switch output as! DeltaJoin.Output {
            case .success(let j):
                host.record = j.record
                host.lastRenewOK = true
                host.joinedAt = j.writtenAt
                if debugLog { print("t=\(Double(now)/1e9) host \(host.id) joined, written at t=\(Double(host.global(j.writtenAt))/1e9)") }
                host.lastSuccess = j.writtenAt
                host.nextRenewAt = j.writtenAt + Clock.seconds(config.timeouts.renewalSeconds)
                armWatchdog(host)
                // The first renewal is due as the join ends (the join waited 2·io_timeout after
                // its write); it also brings the first view of the other hosts.
                renewIfDue(host, local: local)
                // An acquire waiting for the join goes now; aiming treats it as one at the end
                // of the join wait (it may be, if the join took that long).
                host.joinWaitEnded = true
                host.sprint = config.aimAtBounds && chance(config.aimOdds)
                work(host, local: local)
            case .failure(let e):
                if debugLog { print("t=\(Double(now)/1e9) host \(host.id) join failed: \(e)") }
                schedule(at: now + Clock.seconds(1), .join(host: host.id, incarnation: host.incarnation))
            }
        case .renew:
            switch output as! DeltaRenew.Output {
            case .success(let done):
                host.record = done.record
                host.lastRenewOK = true
                host.lastSuccess = done.renewedAt
                host.nextRenewAt = done.renewedAt + Clock.seconds(config.timeouts.renewalSeconds)
                host.view.refresh(done.snapshot, layout: lockspace, space: "sim")
                armWatchdog(host)
            case .failure(let e):
                if debugLog { print("t=\(Double(now)/1e9) host \(host.id) renew failed: \(e)") }
                host.lastRenewOK = false
                switch e {
                case .renewOwner, .renewDiff, .format: if !host.fenced { fence(host) }
                default: host.nextRenewAt = local + Clock.seconds(1)
                }
            }
        case .refresh:
            if case .success(let v) = output as! ViewRefresh.Output {
                host.view.refresh(v, layout: lockspace, space: "sim")
                // Refreshed on demand: the acquire that asked goes ahead now, as a daemon's would.
                if host.up, host.pausedUntil <= now { work(host, local: local) }
            } else {
                host.workerIdleUntil = local + Clock.seconds(1)
            }
        case .acquire(let a, let r):
            if debugLog { print("t=\(Double(now)/1e9) host \(host.id)/\(host.incarnation) acquire r\(r) -> \(output)") }
            host.stale[r] = a.verifiedStale
            host.highestMbal[r] = max(host.highestMbal[r] ?? 0, a.highestMbal)
            // Only a refresh on demand keeps the acquire at the join wait's end.
            if case .failure(.viewTooOld) = output as! PaxosAcquire.Output {} else { host.joinWaitEnded = false; host.sprint = false }
            switch output as! PaxosAcquire.Output {
            case .success(let g):
                stats.ballots += g.ballots
                if host.fenced { return }
                if g.shared { stats.grantsShared += 1 } else { stats.grantsExclusive += 1 }
                host.grants[r] = g
                host.holdUntil[r] = local + Nanos(rng.next() % UInt64(Clock.seconds(4 * N)))
                if !g.shared { recordExclusiveGrant(resource: r, lver: g.lver, host: host) }
            case .failure(let e):
                switch e {
                case .viewTooOld:
                    start(host, .worker, .refresh(ViewRefresh(layout: lockspace)))
                case .joinWaitPending(let until):
                    host.workerIdleUntil = until
                    host.joinWaitEnded = true
                    host.sprint = config.aimAtBounds && chance(config.aimOdds)
                case .held:
                    host.workerIdleUntil = local + Clock.seconds(1) / 2 + Nanos(rng.next() % UInt64(Clock.seconds(2)))
                default:
                    host.workerIdleUntil = local + Nanos(rng.next() % UInt64(Clock.seconds(2)))
                }
            }
        case .leave:
            // Gone (or, if the write failed, silent until others call it DEAD); back in a while
            // under the same name, so the rejoin writes at once when the slot reads FREE.
            // `record` stays as the incarnation that left; joinedAt nil says we are out.
            host.view = LiveView(ourHostID: host.id, timeouts: config.timeouts)
            scheduleRejoin(host)
        case .release:
            host.workerIdleUntil = local + Nanos(rng.next() % UInt64(Clock.seconds(2)))
        }
    }

    func armWatchdog(_ host: SimHost) {
        let deadline = host.lastSuccess + Clock.seconds(config.timeouts.renewalFailSeconds + config.timeouts.watchdogFireSeconds)
        schedule(at: host.global(deadline), .watchdog(host: host.id, incarnation: host.incarnation, lastSuccess: host.lastSuccess))
    }

    // MARK: - Checker

    func fail(_ message: String) {
        if violation == nil { violation = Violation(seed: config.seed, step: stepCount, time: now, message: message) }
    }

    func recordDecision(resource r: Int, lver: UInt64, _ v: DecidedValue, by host: SimHost) {
        if let prior = decisions[r]?[lver], prior != v {
            fail("two values decided for r\(r) lver \(lver): \(prior) and \(v) (by host \(host.id))")
        }
        decisions[r, default: [:]][lver] = v
    }

    func recordExclusiveGrant(resource r: Int, lver: UInt64, host: SimHost) {
        let key = "\(host.id)/\(host.incarnation)"
        var set = exclusiveGrants[r]?[lver] ?? []
        set.insert(key)
        if set.count > 1 { fail("two exclusive grants of r\(r) at lver \(lver): \(set.sorted())") }
        exclusiveGrants[r, default: [:]][lver] = set
    }

    func checkBeliefs() {
        for r in resources.indices {
            let holders = hosts.filter { $0.up && $0.grants[r] != nil }
            let ex = holders.filter { !$0.grants[r]!.shared }
            if ex.count > 1 {
                fail("hosts \(ex.map(\.id)) both hold r\(r) exclusively (lvers \(ex.map { $0.grants[r]!.lver }))")
            } else if let e = ex.first, let sh = holders.first(where: { $0.id != e.id && $0.grants[r]!.shared }) {
                fail("host \(e.id) holds r\(r) exclusively while host \(sh.id) holds it shared")
            }
        }
    }

    /// Remembers the highest leader lver each host has read per resource.
    func noteLeadersSeen(_ ranges: [IORange], by host: SimHost) {
        let area = UInt64(config.geometry.alignSize)
        for r in ranges where r.offset >= area && r.offset % area == 0 {
            let l = LeaderRecord(decoding: disk.sector(at: r.offset))
            let res = Int(r.offset / area) - 1
            if l.magic == LeaderRecord.paxosMagic { host.maxLverSeen[res] = max(host.maxLverSeen[res] ?? 0, l.lver) }
        }
    }

    /// lver never goes backwards in what a host writes: a leader write below a lver the host
    /// has read is a protocol bug. (A write issued before a newer commit it could not have seen
    /// may still land after it: reads and writes take time. That is counted, not failed; the
    /// decision and belief checks judge whether it does harm.)
    func checkIssuedLeaderWrites(_ writes: [SectorWrite], by host: SimHost) {
        let area = UInt64(config.geometry.alignSize)
        for w in writes where w.offset >= area && w.offset % area == 0 {
            let r = Int(w.offset / area) - 1
            let l = LeaderRecord(decoding: w.bytes)
            let seen = host.maxLverSeen[r] ?? 0
            if l.magic == LeaderRecord.paxosMagic && l.lver < seen {
                fail("host \(host.id) wrote r\(r)'s leader at lver \(l.lver) after reading lver \(seen)")
            }
        }
    }

    func land(_ offset: UInt64, _ bytes: [UInt8]) {
        let g = config.geometry
        if offset >= UInt64(g.alignSize) {
            let r = Int(offset / UInt64(g.alignSize)) - 1
            let sector = Int((offset % UInt64(g.alignSize)) / UInt64(g.sectorSize))
            if sector == 0 {
                let l = LeaderRecord(decoding: bytes)
                if l.magic == LeaderRecord.paxosMagic && l.lver < diskLver[r, default: 0] {
                    // A timed-out commit landing late, after a newer one: a storage fact, not a
                    // decision going back (the newer value lives in its decider's dblock).
                    stats.staleLeaderLandings += 1
                }
                diskLver[r] = l.magic == LeaderRecord.paxosMagic ? l.lver : diskLver[r, default: 0]
            } else if sector >= 2 {
                if bytes.isAllZero {
                    dblockSeen[offset] = nil
                } else {
                    let d = PaxosDblock(decoding: bytes)
                    if let prior = dblockSeen[offset], d.mbal < prior.mbal || d.lver < prior.lver {
                        fail("dblock at \(offset) went back: mbal \(prior.mbal)→\(d.mbal), lver \(prior.lver)→\(d.lver)")
                    }
                    dblockSeen[offset] = (d.mbal, d.lver)
                }
            }
        }
        disk.land(offset, bytes)
    }
}
