import DeltaLease
import DiskPaxos
import HostCore
import LeaseFormat

/// The daemon's shell, simulated: booting, (re)starting the daemon, stepping its host core
/// and carrying out every effect it returns, as diskleased does.
extension Simulation {
    // MARK: - Power and daemon lifecycle

    func boot(_ host: SimHost) {
        host.powerCycle += 1
        host.powered = true
        host.daemonUp = false
        host.suspendedUntil = 0
        host.pausedUntil = 0
        host.storageLostUntil = 0
        host.lockspaceLostUntil = 0
        host.processes = [:]
        host.dying = [:]
        host.guardEntries = [:]
        host.watchdogArmed = false
        host.ops = [:]
        schedule(at: now + quantized(Clock.seconds(1) / 2), .daemonStart(host: host.id, cycle: host.powerCycle))
        schedule(at: now + tickInterval(), .tick(host: host.id, cycle: host.powerCycle))
    }

    func tickInterval() -> Nanos {
        config.quantum ?? (Clock.seconds(1) / 10 + Nanos(rng.next() % UInt64(Clock.seconds(1) / 3)))
    }

    func daemonStart(_ host: SimHost, cycle: Int) {
        guard host.powerCycle == cycle, host.powered else { return }
        if host.suspendedUntil > now {
            return schedule(at: host.suspendedUntil, .daemonStart(host: host.id, cycle: cycle))
        }
        host.incarnation += 1
        host.daemonUp = true
        host.pausedUntil = 0
        host.requests = [:]
        host.leaving = false
        var hc = HostConfig()
        hc.mutations = config.mutations
        hc.orphans = rng.next() % 2 == 0 ? .release : .adopt
        host.core = HostCore(config: hc, seed: rng.next())
        // The device is opened (which starts, or restarts, its countdown) only at the first
        // feed the core allows: a restart with a holder still stuck must not extend it.
        debug(
            "host \(host.id) daemon incarnation \(host.incarnation) starts; state file \(host.stateFile.count) leases")
        feed(host, .start(previous: host.stateFile))
        feed(host, .addLockspace(setup(for: host), reply: nil, waitJoined: false))
        for _ in 0..<config.processesPerHost { spawnProcess(host) }
    }

    func setup(for host: SimHost) -> LockspaceSetup {
        LockspaceSetup(
            name: "sim", hostID: config.diskID(host.id), path: "sim", offset: 0, layout: lockspace,
            timeouts: host.timeouts,
            mode: config.mode, hostName: "\(LiveView.nameMarker)h\(host.id)")
    }

    func hostTick(_ host: SimHost, cycle: Int) {
        guard host.powerCycle == cycle, host.powered else { return }
        if host.suspendedUntil > now { return schedule(at: host.suspendedUntil, .tick(host: host.id, cycle: cycle)) }
        schedule(at: now + tickInterval(), .tick(host: host.id, cycle: cycle))
        injectFaults(host)
        guard host.powerCycle == cycle, host.running(at: now) else { return }
        enforceGuard(host)
        if host.daemonRuns(at: now) { feed(host, .tick) }
    }

    /// The independent fencer: a process apart from the daemon, so it acts while the daemon is
    /// stopped or gone. It stops every victim of a lockspace whose lease has expired.
    func enforceGuard(_ host: SimHost) {
        let boot = host.clocks(now).boot
        for (_, entry) in host.guardEntries.sorted(by: { $0.key < $1.key }) {
            guard let expiry = entry.expiry, expiry <= boot else { continue }
            for v in entry.victims { stopVictim(host, v.process, notify: false) }
        }
    }

    /// A host coming back from a suspend: the fencer, whose timers count the suspended time
    /// (CLOCK_BOOTTIME), stops every holder whose lease expired meanwhile before they run
    /// again (the documented assumption for suspend: see docs/AGREEMENT.md).
    func resumeSuspendedHosts() {
        for host in hosts where host.powered && host.resumePending && host.suspendedUntil <= now {
            host.resumePending = false
            let boot = host.clocks(now).boot
            for (_, entry) in host.guardEntries.sorted(by: { $0.key < $1.key }) {
                guard let expiry = entry.expiry, expiry <= boot else { continue }
                for v in entry.victims {
                    guard let p = host.processes[v.pid], p.alive, p.client.startTime == v.startTime else { continue }
                    debug("host \(host.id) resumes past its lease: pid \(v.pid) stopped before it runs")
                    stats.victimsKilled += 1
                    host.processes[v.pid] = nil
                }
            }
        }
    }

    func crashDaemon(_ host: SimHost, why: String) {
        stats.daemonCrashes += 1
        debug("host \(host.id) daemon crashes (\(why))")
        host.daemonUp = false
        host.core = nil
        host.ops = [:]
        host.requests = [:]
        // Processes waiting for an answer see the connection close; holders go on running.
        for pid in host.processes.keys.sorted() {
            host.processes[pid]!.waiting = nil
            if host.processes[pid]!.beliefs.isEmpty { host.processes[pid] = nil }
        }
        // The kernel keeps a dying process until its AIO has completed (exit_aio waits), and
        // the run-dir lock is released only then: the next incarnation starts after the last
        // write of this one has landed, or been lost.
        var lastLanding = now
        for e in queue.entries {
            if case let .land(h, c, inc, _, _) = e.kind, h == host.id, c == host.powerCycle, inc == host.incarnation {
                lastLanding = max(lastLanding, e.time)
            }
        }
        let restart = now + Clock.seconds(1) + quantized(Nanos(rng.next() % UInt64(Clock.seconds(3))))
        schedule(
            at: max(restart, lastLanding + (config.quantum ?? 1)), .daemonStart(host: host.id, cycle: host.powerCycle))
    }

    /// Power loss: every write of the host still in flight is on the array now or never.
    func settleWritesAtPowerLoss(host h: Int, cycle: Int) {
        var pending: [EventQueue.Entry] = []
        queue.removeAll { e in
            if case let .land(hh, c, _, _, _) = e.kind, hh == h, c == cycle { pending.append(e); return true }
            return false
        }
        var after: UInt64? = nil
        for e in pending.sorted(by: { ($0.time, $0.tiebreak) < ($1.time, $1.tiebreak) }) {
            guard case let .land(_, _, inc, offset, _) = e.kind else { continue }
            if rng.next() % 2 == 0 {
                notePending(
                    IOSource(host: h, cycle: cycle, incarnation: inc, op: 0, token: 0), sector: offset, delta: -1)
                continue
            }
            after = enqueue(at: now, e.kind, after: after)
        }
    }

    func crashHost(_ host: SimHost, why: String, downFor: Nanos? = nil) {
        stats.hostCrashes += 1
        debug("host \(host.id) loses power (\(why))")
        host.powered = false
        host.daemonUp = false
        host.core = nil
        host.ops = [:]
        host.processes = [:]
        settleWritesAtPowerLoss(host: host.id, cycle: host.powerCycle)
        host.powerCycle += 1  // events of the old cycle are dropped; boot() bumps it again
        var down = Clock.seconds(1) + quantized(Nanos(rng.next() % UInt64(Clock.seconds(3))))
        if let d = downFor {
            down = d
        } else if chance(config.faults.longOutage) {
            down += Clock.seconds(host.timeouts.hostDeadSeconds + Int(rng.next() % 10))
        }
        schedule(at: now + down, .boot(host: host.id))
    }

    // MARK: - Stepping the core

    /// Feeds an event to the host's core and carries out its effects; effects that produce
    /// further events queue them here, so the core is never re-entered.
    func feed(_ host: SimHost, _ event: HostEvent) {
        guard host.daemonUp, host.core != nil else { return }
        host.pendingCoreEvents.append(event)
        if host.feeding { return }
        host.feeding = true
        defer { host.feeding = false }
        while !host.pendingCoreEvents.isEmpty, host.core != nil {
            let e = host.pendingCoreEvents.removeFirst()
            if debugLog {
                switch e {
                case .tick, .finished: break
                default: debug("host \(host.id) core <- \(e)")
                }
            }
            let effects = host.core!.step(e, now: host.clocks(now))
            for effect in effects { apply(effect, on: host) }
        }
        host.pendingCoreEvents = []
    }

    func apply(_ effect: HostEffect, on host: SimHost) {
        switch effect {
        case let .run(id, _, lane, op):
            if debugLog, case .release(let r) = op { debug("host \(host.id) op \(id) release starts: \(r)") }
            host.nextToken += 1
            host.ops[id] = RunningOp(id: id, op: op, token: host.nextToken, lane: lane)
            if case .drain(let timeout) = op { return startDrain(host, id, timeout: timeout) }
            advanceOp(host, id, nil)
        case let .reply(id, r):
            if let pid = host.requests.removeValue(forKey: id) { processReply(host, pid: pid, id, r) }
        case .persist(let leases):
            host.stateFile = leases
        case let .fence(_, victims, reason):
            stats.fenced += 1
            debug("host \(host.id) fences \(victims) (\(reason))")
            for v in victims { stopVictim(host, v.process, notify: true) }
        case .guardState(let g):
            host.guardEntries = g
        case .watchdog(let ok):
            if ok && host.hasWatchdog {
                host.watchdogArmed = true
                feedWatchdog(host)
            }
        case let .log(level, message, meta):
            if message == "orphan adopted" { stats.orphansAdopted += 1 }
            if debugLog && level != .debug {
                debug("host \(host.id) [\(level)] \(message) \(meta.sorted { $0.key < $1.key })")
            }
        }
    }

    // MARK: - Fencing and the watchdog

    /// Stops a process the way the fencer does (kill hook, SIGTERM, SIGKILL): it is gone
    /// within the grace periods. `notify` reports back to the daemon (the fencer the daemon runs).
    func stopVictim(_ host: SimHost, _ p: ProcessRef, notify: Bool) {
        if let proc = host.processes[p.pid], proc.alive, proc.client.startTime == p.startTime {
            if proc.unkillable || (host.hasWatchdog && chance(config.faults.unkillable)) {
                // Stuck in uninterruptible I/O: no signal reaches it; only a reset will.
                host.processes[p.pid]!.unkillable = true
                if notify {
                    let v = Victim(pid: p.pid, startTime: p.startTime, lockspace: "sim", resource: "")
                    let at = now + quantized(Clock.seconds(config.fenceGraceSeconds))
                    schedule(at: at, .victimStuck(host: host.id, cycle: host.powerCycle, victim: v))
                }
                return
            }
            if host.dying[p] == nil {
                let at = now + quantized(Nanos(rng.next() % UInt64(Clock.seconds(config.fenceGraceSeconds))))
                host.dying[p] = at
                schedule(at: at, .victimDies(host: host.id, cycle: host.powerCycle, process: p))
            }
        } else if notify {
            schedule(at: now, .victimDies(host: host.id, cycle: host.powerCycle, process: p))
        }
    }

    func victimDies(_ host: SimHost, cycle: Int, _ p: ProcessRef) {
        guard host.powerCycle == cycle, host.powered else { return }
        if host.suspendedUntil > now {
            return schedule(at: host.suspendedUntil, .victimDies(host: host.id, cycle: cycle, process: p))
        }
        host.dying[p] = nil
        if let proc = host.processes[p.pid], proc.alive, proc.client.startTime == p.startTime {
            stats.victimsKilled += 1
            debug("host \(host.id) pid \(p.pid) killed (held \(proc.beliefs))")
            host.processes[p.pid] = nil
        }
        if host.daemonRuns(at: now) {
            feed(host, .victimGone(Victim(pid: p.pid, startTime: p.startTime, lockspace: "sim", resource: "")))
        } else if host.daemonUp {
            schedule(at: max(host.pausedUntil, now), .victimDies(host: host.id, cycle: cycle, process: p))
        }
    }

    func feedWatchdog(_ host: SimHost) {
        host.watchdogFeedSerial += 1
        // The device counts the host's own time (it stops while the host is suspended).
        let at = host.global(mono: host.clocks(now).mono + Clock.seconds(host.timeouts.watchdogFireSeconds))
        schedule(at: at, .watchdogFire(host: host.id, cycle: host.powerCycle, serial: host.watchdogFeedSerial))
    }

    func watchdogFire(_ host: SimHost, cycle: Int, serial: Int) {
        guard host.powerCycle == cycle, host.powered, host.watchdogArmed, host.watchdogFeedSerial == serial else {
            return
        }
        if host.suspendedUntil > now {
            let left = host.suspendedUntil - now
            return schedule(at: now + left, .watchdogFire(host: host.id, cycle: cycle, serial: serial))
        }
        stats.watchdogResets += 1
        crashHost(host, why: "watchdog reset")
    }

    // MARK: - Leaving and rejoining (the leave fault)

    func leaveLockspace(_ host: SimHost, rejoinAfter: Nanos? = nil) {
        guard host.daemonRuns(at: now), !host.leaving else { return }
        host.leaving = true
        stats.leaves += 1
        let id = host.nextRequest
        host.nextRequest += 1
        host.requests[id] = -1
        debug("host \(host.id) rem_lockspace")
        feed(host, .remLockspace("sim", reply: id))
        let away =
            rejoinAfter ?? Clock.seconds(2) + quantized(Nanos(rng.next() % UInt64(Clock.seconds(4 * config.ioTimeout))))
        schedule(
            at: now + away,
            .rejoin(host: host.id, cycle: host.powerCycle, incarnation: host.incarnation))
    }

    func rejoinLockspace(_ host: SimHost, cycle: Int, incarnation: Int) {
        guard host.powerCycle == cycle, host.incarnation == incarnation, host.daemonUp else { return }
        if !host.daemonRuns(at: now) {
            return schedule(
                at: max(host.pausedUntil, host.suspendedUntil),
                .rejoin(host: host.id, cycle: cycle, incarnation: incarnation))
        }
        host.leaving = false
        feed(host, .addLockspace(setup(for: host), reply: nil, waitJoined: false))
    }
}
