import DeltaLease
import DiskPaxos
import HostCore

/// The aimed faults of the races profile (`FaultRates.races`): the moments at which a
/// membership mistake grants a lease twice are narrow (a ballot stalled between its reads and
/// writes while another host joins and ballots; a decided value whose commit is lost, held
/// only in the block of a host that is dead or has left), so instead of waiting for chance to
/// line them up, these hooks strike there and bring contenders for the same resource.
extension Simulation {
    /// Called when an acquire asks for its commit write. Returns true when the commit was
    /// taken over here (lost with its host, or failed), false when it goes to the disk.
    func aimAtCommit(_ host: SimHost, _ id: OpID, _ a: PaxosAcquire, _ src: IOSource, _ action: IOAction) -> Bool {
        guard a.isCommitting, chance(config.faults.commitLoss), let r = resourceIndex(a.resource),
            case .write(let writes) = action
        else { return false }
        let others = hosts.filter { $0.id != host.id }
        let longestDead = hosts.map(\.timeouts.hostDeadSeconds).max() ?? 0
        if rng.next() % 2 == 0 {
            // The host dies before its commit leaves it, and stays down until everyone calls it
            // DEAD (renewals look at every present slot each third time, so allow for that):
            // its block is the only place the decided value lives (rule 2).
            crashHost(
                host, why: "power loss before a commit write",
                downFor: Clock.seconds(longestDead + 50 + Int(rng.next() % 10)))
            let at = now + Clock.seconds(longestDead + 20 + Int(rng.next() % 10))
            quiet(resource: r, until: at, besides: host)
            for o in others { contend(o, resource: r, at: at + Nanos(rng.next() % 200_000_000)) }
            return true
        }
        // The commit fails without landing; the ballot retracts, and the host leaves as soon
        // as the acquire has finished: a left block holding the highest lver (rule 6).
        debug("host \(host.id) op \(id): commit write fails; the host will leave")
        host.leaveAfter = (host.incarnation, id)
        quiet(resource: r, until: now + Clock.seconds(4 * longestDead), besides: host)
        failIO(src, writes[0].offset, timedOut: false, latency: 1_000_000, ioTimeout: host.ioTimeout)
        return true
    }

    /// Called when an operation finishes: the host a failed commit marked leaves now, and the
    /// others contend once the leave is on disk.
    func leaveAfterFailedCommit(_ host: SimHost, _ id: OpID, _ output: HostOutput) {
        guard let l = host.leaveAfter, l.incarnation == host.incarnation, l.op == id,
            case .acquire(_, let op) = output, let r = resourceIndex(op.resource)
        else { return }
        host.leaveAfter = nil
        leaveLockspace(host, rejoinAfter: Clock.seconds(25 + Int(rng.next() % 10)))
        let at = now + Clock.seconds(2 + Int(rng.next() % 4))
        quietUntil[r] = at
        for o in hosts where o.id != host.id { contend(o, resource: r, at: at + Nanos(rng.next() % 200_000_000)) }
    }

    /// Until `t`, nobody else ballots for `r`: processes waiting to acquire it give up (exit),
    /// idle ones and the direct host wait. So the first ballot after a lost commit is one of
    /// the contenders', when the host that decided is dead or gone.
    func quiet(resource r: Int, until t: Nanos, besides host: SimHost) {
        quietUntil[r] = max(quietUntil[r] ?? 0, t)
        for h in hosts where h.id != host.id && h.daemonRuns(at: now) {
            for pid in h.processes.keys.sorted() {
                guard let w = h.processes[pid]?.waiting, case .acquire(let wr, _, _) = w.kind, wr == r else { continue }
                exitProcess(h, pid)
            }
        }
    }

    /// The end of the quiet time of resource `r`, if it is quiet now.
    func quietEnd(_ r: Int) -> Nanos? {
        guard let q = quietUntil[r], q > now else { return nil }
        return q
    }

    /// Contenders for resource `r` on every host but `host`, from `delay` on.
    func contendBesides(_ host: SimHost, resource r: Int, after delay: Nanos) {
        guard config.faults.contend else { return }
        for o in hosts where o.id != host.id {
            contend(o, resource: r, at: now + delay + Nanos(rng.next() % 200_000_000))
        }
    }

    /// The stalled ballot meets only joiners: the hosts that left rejoin now and contend as
    /// soon as they have joined, while everyone else keeps quiet (a present host's ballot
    /// would read the stalled one's block and push it aside, hiding the race).
    func joinersContend(_ host: SimHost, resource r: Int, until t: Nanos) {
        let joiners = hosts.filter { $0.id != host.id && $0.leaving && $0.daemonRuns(at: now) }
        rejoinLeftHosts(besides: host)
        guard config.faults.contend, !joiners.isEmpty else { return }
        quiet(resource: r, until: t, besides: host)
        for j in joiners { contend(j, resource: r, at: now) }
    }

    func contend(_ host: SimHost, resource r: Int, at t: Nanos) {
        guard config.faults.contend else { return }
        schedule(at: quantized(t), .contend(host: host.id, cycle: host.powerCycle, resource: r, tries: 0))
    }

    /// An idle process of the host asks for the resource exclusively; while the host's daemon
    /// is stopped or its lockspace is still joining, it asks again a little later (a joiner
    /// ballots as soon as its join completes: there is no join wait).
    func contendNow(_ host: SimHost, cycle: Int, resource r: Int, tries: Int) {
        guard host.powerCycle == cycle, host.powered, host.daemonUp, let core = host.core else { return }
        let joined = core.lockspaceStatus(now: host.clocks(now)).first?.state == "joined"
        guard host.daemonRuns(at: now), joined else {
            guard tries < 300 else { return }
            let next = max(now + 50_000_000, host.pausedUntil, host.suspendedUntil)
            return schedule(at: next, .contend(host: host.id, cycle: cycle, resource: r, tries: tries + 1))
        }
        let idle = host.processes.keys.sorted().first { pid in
            let p = host.processes[pid]!
            return p.alive && p.waiting == nil && p.beliefs.isEmpty
        }
        guard let pid = idle else { return }
        debug("host \(host.id) pid \(pid) contends for r\(r)")
        send(host, pid, .acquire(resource: r, shared: false, persistent: false))
    }
}
