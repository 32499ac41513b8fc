import DeltaLease
import DirectIO
import DiskPaxos
import HostCore
import LeaseFormat

/// Running operations' I/O on the simulated disk: latency, timeouts whose writes land later
/// (sometimes much later), EIO, sector-by-sector landing, a failed path, and the rule the
/// real device enforces: no write to a sector that still has a timed-out write to land.
extension Simulation {
    /// Where an I/O comes from: a daemon host's operation, or a direct host's.
    struct IOSource {
        var host: Int
        var cycle: Int
        var incarnation: Int
        var op: OpID
        var token: Int
    }

    func advanceOp(_ host: SimHost, _ id: OpID, _ result: IOResult?) {
        guard var r = host.ops[id] else { return }
        if debugLog, result == nil, case .acquire(let a) = r.op {
            let v = a.finalContext.view
            let mono = host.clocks(now).mono
            let states = v.hosts.keys.sorted().map { h in
                let o = v.hosts[h]!
                return
                    "\(h):\(v.state(of: h, now: mono).rawValue)/g\(o.generation)/ts\(o.timestamp)"
                    + "/chk\((mono - o.lastCheck) / 1_000_000)ms/live\((mono - o.lastLive) / 1_000_000)ms"
            }
            debug(
                "host \(host.id) op \(id) acquire \(a.resource.name) starts; epoch "
                    + "\(a.finalContext.membership.epoch); reads \(a.finalContext.dblockHosts(now: mono)) "
                    + "\(a.finalContext.effectiveMode); view \(states)"
            )
        }
        let progress = r.op.advance(result, now: host.clocks(now).mono)
        if case .acquire(let a) = r.op, let d = a.decided, let ri = resourceIndex(a.resource) {
            recordDecision(resource: ri, d, by: host.id)
        }
        switch progress {
        case .perform(let action):
            r.actionsAsked += 1
            let seq = r.actionsAsked
            host.ops[id] = r
            let src = IOSource(
                host: host.id, cycle: host.powerCycle, incarnation: host.incarnation, op: id, token: r.token)
            if case .read? = result, case .write = action, case .acquire(let a) = r.op {
                if aimAtCommit(host, id, a, src, action) { return }
                // Another host's ballot reaches this point: writes held back elsewhere go now,
                // so the two ballots interleave.
                releaseHeldWrites(besides: host)
                if chance(config.faults.midBallot), let ri = resourceIndex(a.resource),
                    let until = disruptMidBallot(host, resource: ri, hold: (id, r.token, seq, action))
                {
                    return schedule(
                        at: until,
                        .performLater(
                            host: host.id, cycle: host.powerCycle, op: id, opToken: r.token,
                            token: seq, action: action))
                }
            }
            host.ops[id]!.actionsDone = seq
            perform(action, from: src, hostClock: host.clocks(now).mono, local: host)
        case .finished(let output):
            host.ops[id] = nil
            noteOutput(output, host: host.id)
            feed(host, .finished(id, output))
            leaveAfterFailedCommit(host, id, output)
        }
    }

    /// An action held back while its daemon was stopped.
    /// `seq`: which of the operation's actions this is; it goes once. `opToken` names the
    /// operation across daemon incarnations (op ids restart with each incarnation; a killed
    /// daemon's held-back write never goes).
    func performLater(_ host: SimHost, cycle: Int, op: OpID, opToken: Int, token seq: Int, _ action: IOAction) {
        guard host.powerCycle == cycle, host.powered, let r = host.ops[op], r.token == opToken,
            r.actionsAsked == seq, r.actionsDone < seq
        else { return }
        if !host.daemonRuns(at: now) {
            return schedule(
                at: max(host.pausedUntil, host.suspendedUntil, now + 1),
                .performLater(host: host.id, cycle: cycle, op: op, opToken: opToken, token: seq, action: action))
        }
        host.ops[op]!.actionsDone = seq
        let src = IOSource(host: host.id, cycle: host.powerCycle, incarnation: host.incarnation, op: op, token: r.token)
        perform(action, from: src, hostClock: host.clocks(now).mono, local: host)
    }

    /// The churn profile's aim: disrupts a host whose acquire is between a read and a write.
    /// Returns when the held-back write may go (the daemon stopped, or the write is stuck in
    /// the device queue), or nil when it goes now.
    func disruptMidBallot(
        _ host: SimHost, resource r: Int, hold: (op: OpID, opToken: Int, token: Int, action: IOAction)
    ) -> Nanos? {
        let n = host.timeouts.ioTimeoutSeconds
        let longestDead = hosts.map(\.timeouts.hostDeadSeconds).max() ?? 0
        // The races profile stalls a ballot for joiners more often than it does the rest.
        switch config.faults.contend && rng.next() % 5 < 2 ? 0 : rng.next() % 5 {
        case 4:
            // The write sits in the device queue until another host's ballot is mid-way (or
            // 6·io_timeout passes), while hosts outside the lockspace join.
            heldWrites.append((host.id, host.powerCycle, hold.op, hold.opToken, hold.token, hold.action))
            rejoinLeftHosts(besides: host)
            contendBesides(host, resource: r, after: 0)
            return now + Clock.seconds(6 * n)
        case 0:
            stats.pauses += 1
            host.pausedUntil = now + Clock.seconds(2 * n + Int(rng.next() % UInt64(4 * n + 1)))
            debug("host \(host.id) daemon stopped mid-ballot until \(Double(host.pausedUntil) / 1e9)")
            joinersContend(host, resource: r, until: host.pausedUntil)
            return host.pausedUntil
        case 1:
            stats.pauses += 1
            // Aimed: stopped until every host has called it DEAD, and they contend meanwhile.
            let dead = config.faults.contend ? longestDead + 12 : host.timeouts.hostDeadSeconds + 1
            host.pausedUntil = now + Clock.seconds(dead + Int(rng.next() % 5))
            contendBesides(host, resource: r, after: Clock.seconds(longestDead + 6))
            debug("host \(host.id) daemon stopped mid-ballot past host_dead until \(Double(host.pausedUntil) / 1e9)")
            return host.pausedUntil
        case 2:
            // rem_lockspace now, while this ballot's next write sits in the device queue.
            leaveLockspace(host)
            contendBesides(host, resource: r, after: Clock.seconds(1))
            return now + Clock.seconds(2 * n + Int(rng.next() % UInt64(4 * n + 1)))
        default:
            rejoinLeftHosts(besides: host)
            contendBesides(host, resource: r, after: 0)
            return nil
        }
    }

    func releaseHeldWrites(besides host: SimHost) {
        let held = heldWrites.filter { $0.host != host.id }
        guard !held.isEmpty else { return }
        heldWrites.removeAll { $0.host != host.id }
        for w in held {
            debug("host \(w.host) op \(w.op): held write goes now")
            schedule(
                at: now,
                .performLater(
                    host: w.host, cycle: w.cycle, op: w.op, opToken: w.opToken, token: w.token,
                    action: w.action))
        }
    }

    func rejoinLeftHosts(besides host: SimHost) {
        for other in hosts where other.id != host.id && other.leaving && other.daemonRuns(at: now) {
            debug("host \(other.id) rejoins as host \(host.id)'s ballot is mid-way")
            rejoinLockspace(other, cycle: other.powerCycle, incarnation: other.incarnation)
        }
    }

    func deliver(_ h: Int, cycle: Int, op: OpID, token: Int, _ result: IOResult) {
        if let host = daemonHost(h) {
            guard host.powerCycle == cycle, host.powered, let r = host.ops[op], r.token == token else { return }
            if !host.daemonRuns(at: now) {
                return schedule(
                    at: max(host.pausedUntil, host.suspendedUntil, now + 1),
                    .deliver(host: h, cycle: cycle, op: op, token: token, result: result))
            }
            advanceOp(host, op, result)
        } else {
            directDeliver(directs[h - config.hosts - 1], cycle: cycle, token: token, result)
        }
    }

    /// Performs one action of an operation; the result comes back as a `deliver` event.
    func perform(_ action: IOAction, from src: IOSource, hostClock: Nanos, local: SimHost?) {
        let ioTimeout = local?.ioTimeout ?? directs[src.host - config.hosts - 1].timeouts.ioTimeout.nanos
        if case .sleep(let until) = action {
            let at: Nanos = local.map { $0.global(mono: until) } ?? directs[src.host - config.hosts - 1].global(until)
            return schedule(
                at: at, .deliver(host: src.host, cycle: src.cycle, op: src.op, token: src.token, result: .slept))
        }
        let f = config.faults
        var latency = Nanos(rng.next() % 10_000_000) + 200_000  // 0.2–10.2 ms, a SAN's range
        var timedOut = false
        let lockspaceIO: Bool = {
            switch action {
            case .read(let r): return r.contains { $0.offset < UInt64(config.geometry.alignSize) }
            case .write(let w): return w.contains { $0.offset < UInt64(config.geometry.alignSize) }
            case .sleep: return false
            }
        }()
        let pathDown = (local?.storageLostUntil ?? 0) > now || (lockspaceIO && (local?.lockspaceLostUntil ?? 0) > now)
        if pathDown || chance(f.timeoutIO) {
            timedOut = true
            // Lands (if ever) within 2N, or much later now and then.
            let span = chance(f.lateLanding) ? 6 * ioTimeout : ioTimeout
            latency = ioTimeout + Nanos(rng.next() % UInt64(span))
        } else if chance(f.slowIO) {
            latency = ioTimeout / 5 + Nanos(rng.next() % UInt64(ioTimeout * 7 / 10))
        }
        latency = quantized(latency)
        let eio = !timedOut && chance(f.eio)
        switch action {
        case .read(let ranges):
            if timedOut || eio {
                return failIO(src, ranges[0].offset, timedOut: timedOut, latency: latency, ioTimeout: ioTimeout)
            }
            // Each request of a batch is served on its own: its sectors are read at their own
            // instant (a batch is not a snapshot). The completion follows the last of them.
            let id = nextRead
            nextRead += 1
            pendingReads[id] = PendingRead(
                source: src, ranges: ranges, bytes: Array(repeating: nil, count: ranges.count))
            var lastAt = now
            var lastTie: UInt64? = nil
            for i in ranges.indices {
                let at = instant(within: latency)
                let tie = enqueue(at: at, .sample(read: id, index: i))
                if at > lastAt || lastTie == nil { lastTie = tie } else if at == lastAt { lastTie = max(lastTie!, tie) }
                lastAt = max(lastAt, at)
            }
            let done = max(now + latency, lastAt)
            schedule(at: done, .readDone(read: id), after: done == lastAt ? lastTie : nil)
        case .write(let writes):
            performWrite(
                writes, from: src, latency: latency, timedOut: timedOut, eio: eio, ioTimeout: ioTimeout,
                pathDown: pathDown)
        case .sleep:
            preconditionFailure("handled above")
        }
    }

    func failIO(_ src: IOSource, _ offset: UInt64, timedOut: Bool, latency: Nanos, ioTimeout: Nanos) {
        let path = "sim-h\(src.host)"
        if timedOut {
            stats.ioTimeouts += 1
            let e = BlockIOError.timeout(
                path: path, offset: offset, inFlight: 1, timeoutMilliseconds: ioTimeout / 1_000_000)
            schedule(
                at: now + ioTimeout,
                .deliver(host: src.host, cycle: src.cycle, op: src.op, token: src.token, result: .failed(e)))
        } else {
            let e = BlockIOError.ioError(path: path, offset: offset, length: 512, errno: 5)
            schedule(
                at: now + latency,
                .deliver(host: src.host, cycle: src.cycle, op: src.op, token: src.token, result: .failed(e)))
        }
    }

    func performWrite(
        _ writes: [SectorWrite], from src: IOSource, latency: Nanos, timedOut: Bool, eio: Bool, ioTimeout: Nanos,
        pathDown: Bool
    ) {
        let ss = config.geometry.sectorSize
        // The device refuses a write over a sector whose timed-out write may still land.
        for w in writes {
            for i in 0..<(w.bytes.count / ss) where pendingWrites(src, sector: w.offset + UInt64(i * ss)) > 0 {
                let e = BlockIOError.writePending(path: "sim-h\(src.host)", offset: w.offset + UInt64(i * ss))
                return schedule(
                    at: now,
                    .deliver(host: src.host, cycle: src.cycle, op: src.op, token: src.token, result: .failed(e)))
            }
        }
        checkIssuedLeaderWrites(writes, by: src.host)
        if debugLog {
            for w in writes where w.offset >= UInt64(config.geometry.alignSize) {
                let d = PaxosDblock(decoding: w.bytes)
                debug(
                    "host \(src.host)/\(src.incarnation) op \(src.op) writes @\(w.offset) mbal=\(d.mbal) inp=\(d.inp) "
                        + "bal=\(d.bal) lver=\(d.lver) timedOut=\(timedOut) eio=\(eio)"
                )
            }
        }
        var lastLand = now
        var lastTie: UInt64? = nil
        for w in writes {
            for i in 0..<(w.bytes.count / ss) {
                if eio && rng.next() % 2 == 0 { continue }
                if pathDown && rng.next() % 2 == 0 { continue }
                let sector = w.offset + UInt64(i * ss)
                let (at, tie) = scheduleLanding(
                    src, sector: sector, bytes: Array(w.bytes[i * ss..<(i + 1) * ss]), latency: latency)
                if at > lastLand || lastTie == nil {
                    lastTie = tie
                } else if at == lastLand {
                    lastTie = max(lastTie!, tie)
                }
                lastLand = max(lastLand, at)
            }
        }
        if let host = daemonHost(src.host), chance(config.faults.crashOnWrite) {
            return crashHost(host, why: "crash with a write in flight")
        }
        if timedOut || eio {
            return failIO(src, writes[0].offset, timedOut: timedOut, latency: latency, ioTimeout: ioTimeout)
        }
        // The completion comes after the last sector landed, also at the same instant.
        let at = max(now + latency, lastLand)
        schedule(
            at: at, .deliver(host: src.host, cycle: src.cycle, op: src.op, token: src.token, result: .written),
            after: at == lastLand ? lastTie : nil)
    }

    /// One sector's landing; one host's writes to one sector land in the order issued.
    func scheduleLanding(_ src: IOSource, sector: UInt64, bytes: [UInt8], latency: Nanos) -> (Nanos, UInt64) {
        let event = EventKind.land(
            host: src.host, cycle: src.cycle, incarnation: src.incarnation, offset: sector, bytes: bytes)
        notePending(src, sector: sector, delta: 1)
        // One sector's writes land in issue order; different sectors in any order, as the
        // requests of one batch (or of two) may complete in any order on a real device.
        let prior = lastLanding(src.host, sector: sector)
        let at = max(prior?.time ?? 0, instant(within: latency))
        let tie = enqueue(at: at, event, after: prior.flatMap { $0.time == at ? $0.tiebreak : nil })
        setLastLanding(src.host, sector: sector, (at, tie))
        return (at, tie)
    }

    func sample(read id: Int, index i: Int) {
        guard var r = pendingReads[id] else { return }
        if i == 0 || r.ranges[i].offset % UInt64(config.geometry.alignSize) == 0 {
            noteLeadersSeen([r.ranges[i]], by: r.source.host)
        }
        r.bytes[i] = disk.read([r.ranges[i]])[0]
        pendingReads[id] = r
    }

    func readDone(_ id: Int) {
        guard let r = pendingReads.removeValue(forKey: id) else { return }
        let s = r.source
        deliver(s.host, cycle: s.cycle, op: s.op, token: s.token, .read(r.bytes.map { $0! }))
    }

    func land(_ h: Int, incarnation: Int, _ offset: UInt64, _ bytes: [UInt8]) {
        notePending(IOSource(host: h, cycle: 0, incarnation: incarnation, op: 0, token: 0), sector: offset, delta: -1)
        checkLanding(offset, bytes)
        disk.land(offset, bytes)
    }

    // MARK: - Per-host write bookkeeping (daemon and direct hosts alike)

    func pendingWrites(_ src: IOSource, sector: UInt64) -> Int {
        if let host = daemonHost(src.host) { return host.pendingWrites(incarnation: src.incarnation, sector: sector) }
        return directs[src.host - config.hosts - 1].inFlight[sector] ?? 0
    }

    func notePending(_ src: IOSource, sector: UInt64, delta: Int) {
        if let host = daemonHost(src.host) {
            host.inFlight[sector, default: [:]][src.incarnation, default: 0] += delta
        } else {
            directs[src.host - config.hosts - 1].inFlight[sector, default: 0] += delta
        }
    }

    func lastLanding(_ h: Int, sector: UInt64) -> (time: Nanos, tiebreak: UInt64)? {
        daemonHost(h)?.lastLandAtSector[sector]
            ?? (h > config.hosts ? directs[h - config.hosts - 1].lastLandAtSector[sector] : nil)
    }

    func setLastLanding(_ h: Int, sector: UInt64, _ v: (time: Nanos, tiebreak: UInt64)) {
        if let host = daemonHost(h) {
            host.lastLandAtSector[sector] = v
        } else {
            directs[h - config.hosts - 1].lastLandAtSector[sector] = v
        }
    }

    // MARK: - Draining (a leave waits for our timed-out writes)

    func startDrain(_ host: SimHost, _ id: OpID, timeout: Nanos) {
        let token = host.ops[id]!.token
        let cycle = host.powerCycle
        let inc = host.incarnation
        var latest: Nanos = now
        for e in queue.entries {
            if case let .land(h, c, i, _, _) = e.kind, h == host.id, c == cycle, i == inc {
                latest = max(latest, e.time)
            }
        }
        let limit = now + Nanos(Double(timeout) / host.rate)
        schedule(at: min(latest, limit), .drained(host: host.id, cycle: cycle, op: id, token: token))
    }

    func drainDone(_ host: SimHost, cycle: Int, op: OpID, token: Int) {
        guard host.powerCycle == cycle, host.powered, let r = host.ops[op], r.token == token else { return }
        if !host.daemonRuns(at: now) {
            return schedule(
                at: max(host.pausedUntil, host.suspendedUntil, now + 1),
                .drained(host: host.id, cycle: cycle, op: op, token: token))
        }
        let outstanding = host.inFlight.values.reduce(0) { $0 + ($1[host.incarnation] ?? 0) }
        host.ops[op] = nil
        feed(host, .finished(op, .drained(outstanding: outstanding)))
    }
}

extension Duration {
    var nanos: Nanos { wholeNanoseconds }
}
