import DeltaLease
import DiskPaxos
import HostCore

/// The local processes of a daemon host (VMs): they acquire (EX or SH, waiting or not, with
/// timeouts, persistent or not, sometimes at a required version), hold, convert, ask other
/// hosts to release, release, or just exit; the fencer may kill them.
extension Simulation {
    func spawnProcess(_ host: SimHost) {
        let pid = host.nextPid
        host.nextPid += 1
        let startTime = UInt64(now / 1000) + 1
        host.processes[pid] = SimProcess(
            client: ClientRef(id: UInt64(host.incarnation) << 32 | UInt64(pid), pid: pid, startTime: startTime))
        wake(host, pid, after: quantized(Nanos(rng.next() % UInt64(Clock.seconds(2)))))
    }

    func wake(_ host: SimHost, _ pid: Int32, after d: Nanos) {
        schedule(at: now + max(d, config.quantum ?? 1), .processWake(host: host.id, cycle: host.powerCycle, pid: pid))
    }

    func processWake(_ host: SimHost, cycle: Int, pid: Int32) {
        guard host.powerCycle == cycle, host.powered, let p = host.processes[pid], p.alive, p.waiting == nil else {
            return
        }
        if !host.daemonRuns(at: now) {
            if host.daemonUp || host.suspendedUntil > now {
                return schedule(
                    at: max(host.pausedUntil, host.suspendedUntil, now + 1),
                    .processWake(host: host.id, cycle: cycle, pid: pid))
            }
            return  // the daemon is down: a holder runs on as a leftover; others wait for the restart
        }
        if let (r, b) = p.beliefs.first {
            if now < p.holdUntil { return wake(host, pid, after: p.holdUntil - now) }
            return actWhileHolding(host, pid, resource: r, belief: b)
        }
        actIdle(host, pid)
    }

    func actWhileHolding(_ host: SimHost, _ pid: Int32, resource r: Int, belief b: Belief) {
        let roll = rng.next() % 10
        if roll < 2 {
            // EX → SH: the process stops writing exclusively before it asks (the disk shows it
            // shared from the convert's first write). SH → EX: exclusive only with the answer.
            if !b.shared { host.processes[pid]!.beliefs[r]!.shared = true }
            send(host, pid, .convert(resource: r, toShared: !b.shared))
        } else if roll < 3 {
            exitProcess(host, pid)
        } else if roll < 4, resources.count > 1 {
            let other = (r + 1) % resources.count
            send(host, pid, .request(resource: other))
        } else {
            // The process stops using the lease before it asks for the release.
            host.processes[pid]!.beliefs[r] = nil
            stats.releases += 1
            send(host, pid, .release(resource: r))
        }
    }

    func actIdle(_ host: SimHost, _ pid: Int32) {
        if rng.next() % 12 == 0 { return exitProcess(host, pid) }
        let r = Int(rng.next() % UInt64(resources.count))
        if let q = quietEnd(r) { return wake(host, pid, after: q - now + Nanos(rng.next() % 1_000_000_000)) }
        let shared = chance(config.sharedRatio)
        let persistent = rng.next() % 5 == 0
        send(host, pid, .acquire(resource: r, shared: shared, persistent: persistent))
    }

    func exitProcess(_ host: SimHost, _ pid: Int32) {
        let c = host.processes[pid]!.client
        host.processes[pid] = nil
        feed(host, .clientGone(c))
        spawnProcess(host)
    }

    func send(_ host: SimHost, _ pid: Int32, _ kind: SimProcess.Kind) {
        let id = host.nextRequest
        host.nextRequest += 1
        host.requests[id] = pid
        host.processes[pid]!.waiting = (id, kind)
        let c = host.processes[pid]!.client
        switch kind {
        case let .acquire(r, shared, persistent):
            let waits = rng.next() % 4 != 0
            let deadline =
                waits && rng.next() % 3 == 0 ? host.clocks(now).mono + Clock.seconds(1 + Int(rng.next() % 6)) : nil
            var req = AcquireRequest(
                key: key(r), path: "sim", offset: resources[r].layout.offset, shared: shared, wait: waits,
                deadline: deadline, persistent: persistent)
            if rng.next() % 20 == 0 { req.requiredLver = rng.next() % 4 }
            feed(host, .acquire(id, c, req))
        case let .convert(r, toShared):
            feed(host, .convert(id, c, key(r), toShared: toShared))
        case .release(let r):
            feed(host, .release(id, c, key(r)))
        case .request(let r):
            feed(host, .requestRelease(id, resources[r], lver: nil))
        }
    }

    func key(_ r: Int) -> ResourceKey { ResourceKey(lockspace: "sim", name: resources[r].name) }

    func processReply(_ host: SimHost, pid: Int32, _ id: RequestID, _ reply: HostReply) {
        guard pid > 0, var p = host.processes[pid], p.alive, let (wid, kind) = p.waiting, wid == id else { return }
        p.waiting = nil
        switch (kind, reply) {
        case let (.acquire(r, shared, _), .granted(lver)):
            p.beliefs[r] = Belief(lver: lver, shared: shared)
            p.holdUntil = now + quantized(Nanos(rng.next() % UInt64(Clock.seconds(4 * config.ioTimeout))))
            if shared { stats.grantsShared += 1 } else { stats.grantsExclusive += 1 }
        case let (.convert(r, toShared), .granted(lver)):
            if p.beliefs[r] != nil { p.beliefs[r] = Belief(lver: lver, shared: toShared) }
            stats.converts += 1
        default:
            break
        }
        host.processes[pid] = p
        wake(host, pid, after: quantized(Nanos(rng.next() % UInt64(Clock.seconds(1)))))
        checkBeliefs()
    }
}
