import DeltaLease
import DirectIO
import DiskLeaseClient
import DiskPaxos
import Foundation
import LeaseFormat
import LeaseRunner
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The host daemon: lockspaces, the leases local processes hold, and the requests that change
/// them. One lock (`cond`) guards all of its state; disk I/O always runs outside it.
///
/// Guarantees:
/// * a lease is granted to a local process only after a committed ballot (or, for a second SH
///   holder on this host, while this host's SH grant is held); its lver is the fencing token;
/// * waiters for one resource on this host are admitted in arrival order, and woken by a
///   local release at once, by a remote one no later than the next renewal;
/// * when a process's connection closes, its non-persistent leases are released on disk;
/// * when a lockspace's renewals fail for renewal_fail_seconds, its holders get the kill hook,
///   SIGTERM, then SIGKILL, and the lockspace issues no more I/O.
public final class Daemon: @unchecked Sendable {
    public let config: DaemonConfig
    let log: Logger
    let cond = NSCondition()
    let metrics = DaemonMetrics()
    var lockspaces: [String: Lockspace] = [:]
    var holdings: [ResourceKey: [Holding]] = [:]
    var queues: [ResourceKey: [UInt64]] = [:]
    var nextTicket: UInt64 = 1
    var stopping = false
    let stateFile: LeaseStateFile
    /// Changes to the lease state, and how many of them are in the state file. Guarded by
    /// the lock; see `saveState`.
    var stateVersion: UInt64 = 0
    var savedVersion: UInt64 = 0
    var stateWriterRunning = false
    /// Leases the previous incarnation held, by lockspace, until that lockspace is joined.
    var previous: [String: [LeaseInfo]] = [:]
    let instance: String

    public init(config: DaemonConfig, logger: Logger) {
        self.config = config
        self.log = logger
        stateFile = LeaseStateFile(runDir: config.runDir)
        var rng = SystemRandomNumberGenerator()
        instance = String(rng.next() & 0xFFFF_FFFF, radix: 16)
    }

    static func now() -> Nanos { MonotonicClock.now() }

    // MARK: - Start and stop

    /// Loads the previous incarnation's leases and joins the configured lockspaces.
    public func start() throws(WireError) {
        for l in stateFile.load() { previous[l.lockspace, default: []].append(l) }
        cond.lock()
        stateWriterRunning = true
        cond.unlock()
        let writer = Thread { [self] in stateWriterLoop() }
        writer.name = "state"
        writer.start()
        for (ls, leases) in previous.sorted(by: { $0.key < $1.key }) {
            log.warning("previous incarnation held leases", metadata: [
                "lockspace": "\(ls)", "leases": "\(leases.map { "\($0.resource)@lver\($0.lver)" })", "policy": "\(config.orphans.rawValue)"])
        }
        for s in config.lockspaces {
            _ = try addLockspace(try LockspaceSpec(parsing: s), wait: false)
        }
    }

    /// Releases every lease on disk and leaves every lockspace (graceful stop: no watchdog
    /// reset is needed, unlike a crash).
    public func shutdown() {
        cond.lock()
        stopping = true
        let all = holdings.values.flatMap { $0 }
        cond.unlock()
        var firsts: [ResourceKey: Holding] = [:]
        for h in all where firsts[h.key] == nil { firsts[h.key] = h }
        let released = firsts.values.map { (lockspace: $0.key.lockspace, grant: $0.grant) }
        // Side by side: their writes share submits through the coalescing ballot device.
        let workers = min(64, released.count)
        let group = DispatchGroup()
        for w in 0..<workers {
            group.enter()
            Thread.detachNewThread { [self] in
                for h in stride(from: w, to: released.count, by: workers).map({ released[$0] }) {
                    cond.lock()
                    let ls = lockspaces[h.lockspace]
                    let ok = ls?.state == .joined
                    cond.unlock()
                    if let ls, ok { _ = diskRelease(h.grant, in: ls) }
                }
                group.leave()
            }
        }
        group.wait()
        cond.lock()
        holdings = [:]
        saveState()
        for ls in lockspaces.values { ls.stopRequested = true }
        cond.broadcast()
        cond.unlock()
        flushState()
        // Renewal threads leave their lockspaces (timestamp 0) and exit.
        let deadline = Date().addingTimeInterval(Double(config.ioTimeout * 2 + 1))
        while Date() < deadline {
            cond.lock()
            let done = lockspaces.values.allSatisfy { $0.state == .left || $0.state == .failed }
            cond.unlock()
            if done { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        log.info("stopped", metadata: ["leases_released": "\(released.count)"])
    }

    // MARK: - Lockspaces

    func addLockspace(_ spec: LockspaceSpec, wait: Bool) throws(WireError) -> Lockspace {
        cond.lock()
        if let existing = lockspaces[spec.name], existing.state != .left, existing.state != .failed {
            cond.unlock()
            guard existing.spec == spec else { throw WireError(.exists, "lockspace \(spec.name) is already joined as \(existing.spec.hostID) on \(existing.spec.path)") }
            if wait { try waitJoined(existing) }
            return existing
        }
        cond.unlock()
        let name = String("\(LiveView.joinWaitMarker)\(config.hostName ?? nodeName())-\(instance)".prefix(LeaseName.hostNameMax))
        let ls = try Lockspace(spec: spec, config: config, hostName: name)
        cond.lock()
        lockspaces[spec.name] = ls
        cond.unlock()
        log.info("joining lockspace", metadata: ["lockspace": "\(spec.name)", "host_id": "\(spec.hostID)", "path": "\(spec.path)",
                                                  "timeouts": "\(ls.timeouts)"])
        let t = Thread { [self] in renewalLoop(ls) }
        t.name = "renew-\(spec.name)"
        t.start()
        if wait { try waitJoined(ls) }
        return ls
    }

    func waitJoined(_ ls: Lockspace) throws(WireError) {
        cond.lock()
        defer { cond.unlock() }
        while ls.state == .joining { cond.wait() }
        if ls.state != .joined { throw WireError(.fenced, "lockspace \(ls.name): \(ls.state.rawValue): \(ls.detail)") }
    }

    func remLockspace(_ name: String) throws(WireError) {
        cond.lock()
        defer { cond.unlock() }
        guard let ls = lockspaces[name] else { throw WireError(.noLockspace, "no lockspace \(name)") }
        if holdings.keys.contains(where: { $0.lockspace == name }) {
            throw WireError(.busy, "lockspace \(name) still has leases held")
        }
        ls.stopRequested = true
        cond.broadcast()
        while ls.state != .left && ls.state != .failed { cond.wait() }
        lockspaces[name] = nil
    }

    /// The renewal thread: join, then renew every 2·io_timeout; fence when renewals have
    /// failed for renewal_fail_seconds; leave when asked.
    func renewalLoop(_ ls: Lockspace) {
        let t = ls.timeouts
        setDetail(ls, "delta lease acquire: read, write, wait \(t.deltaShortDelaySeconds)s, verify")
        let joined = ls.renewalRunner.run(DeltaJoin(layout: ls.layout, space: ls.name, hostID: ls.spec.hostID,
                                                     hostName: ls.hostName, timeouts: t))
        guard case .success(let j) = joined else {
            if case .failure(let e) = joined {
                log.error("join failed", metadata: ["lockspace": "\(ls.name)", "error": "\(e)"])
                setState(ls, .failed, "join failed: \(e)")
            }
            return
        }
        cond.lock()
        ls.generation = j.generation
        ls.record = j.record
        ls.joinedAt = j.writtenAt
        ls.lastSuccess = j.writtenAt
        cond.unlock()
        log.info("joined lockspace", metadata: ["lockspace": "\(ls.name)", "host_id": "\(ls.spec.hostID)",
                                                 "generation": "\(j.generation)", "name": "\(ls.hostName)"])
        // The first renewal gives the view; ballots wait for the join wait (rule 5) anyway.
        var nextRenew = j.writtenAt + Clock.seconds(t.renewalSeconds)
        var previousOK = true
        var joinWaitAnnounced = false
        _ = renewOnce(ls, previousOK: &previousOK)
        while true {
            cond.lock()
            let now = Self.now()
            let joinWaitEnds = ls.joinedAt + Clock.seconds(t.joinWaitSeconds)
            if ls.state == .joining {
                if now >= joinWaitEnds || ls.stopRequested {
                    ls.state = .joined
                    ls.detail = ""
                    cond.broadcast()
                    if !joinWaitAnnounced { startOrphanWork(ls) }
                    joinWaitAnnounced = true
                } else {
                    ls.detail = "join wait: first ballot in \(Int((joinWaitEnds - now) / Clock.nanosPerSecond) + 1)s"
                }
            }
            if ls.stopRequested {
                cond.unlock()
                break
            }
            let wake = min(nextRenew, ls.state == .joining ? joinWaitEnds : nextRenew)
            if wake > now { _ = cond.wait(until: Date(timeIntervalSinceNow: Double(wake - now) / 1e9)) }
            let due = Self.now() >= nextRenew && !ls.stopRequested
            cond.unlock()
            guard due else { continue }
            let started = Self.now()
            if renewOnce(ls, previousOK: &previousOK) {
                nextRenew = started + Clock.seconds(t.renewalSeconds)
            } else {
                nextRenew = Self.now() + Clock.seconds(1)
            }
            cond.lock()
            let failedFor = Self.now() - ls.lastSuccess
            let fatal = ls.state == .failed
            cond.unlock()
            if fatal { return }
            if failedFor > Clock.seconds(t.renewalFailSeconds) {
                fence(ls, why: "renewals failed for \(failedFor / Clock.nanosPerSecond)s (limit \(t.renewalFailSeconds)s)")
                return
            }
        }
        // Leave: timestamp 0, so others see us gone at once.
        cond.lock()
        ls.state = .leaving
        let last = ls.record
        cond.unlock()
        // Timestamp 0 lets others drop our blocks from their ballots once read stale, so no
        // write of ours may land after it: a timed-out ballot write still in the device queue
        // could carry a value nobody reads. If any is still outstanding, our slot is left to
        // expire (others wait host_dead_seconds) instead of being freed.
        let wait = t.ioTimeout * 2
        let outstanding = ls.ballotRunner.device.reapParked(timeout: wait) + ls.renewalRunner.device.reapParked(timeout: wait)
        if outstanding > 0 {
            log.error("not freeing our host id: timed-out writes still outstanding", metadata: [
                "lockspace": "\(ls.name)", "outstanding": "\(outstanding)"])
        } else if let last {
            let r = ls.renewalRunner.run(DeltaLeave(layout: ls.layout, hostID: ls.spec.hostID, last: last))
            if case .failure(let e) = r { log.error("leave failed", metadata: ["lockspace": "\(ls.name)", "error": "\(e)"]) }
        }
        setState(ls, .left, "left")
        log.info("left lockspace", metadata: ["lockspace": "\(ls.name)"])
    }

    /// One renewal. Returns whether it succeeded; fences at once when our slot was taken.
    func renewOnce(_ ls: Lockspace, previousOK: inout Bool) -> Bool {
        cond.lock()
        guard let last = ls.record, ls.state != .failed else { cond.unlock(); return false }
        let bitmap = ls.bitmap(now: Self.now())
        cond.unlock()
        let started = Self.now()
        let r = ls.renewalRunner.run(DeltaRenew(layout: ls.layout, space: ls.name, hostID: ls.spec.hostID, last: last,
                                                timeouts: ls.timeouts, previousSucceeded: previousOK, bitmap: bitmap))
        metrics.renewal(seconds: Double(Self.now() - started) / 1e9, ok: (try? r.get()) != nil)
        switch r {
        case .success(let done):
            previousOK = true
            cond.lock()
            ls.record = done.record
            ls.lastSuccess = done.renewedAt
            ls.view.refresh(done.snapshot, layout: ls.layout, space: ls.name)
            ls.renewals += 1
            ls.notifiedBy = notifiers(in: done.snapshot.bytes, ls: ls)
            metrics.hosts(ls.hosts(now: Self.now()), lockspace: ls.name)
            cond.broadcast()
            let askers = ls.notifiedBy
            cond.unlock()
            if !askers.isEmpty { checkRequests(ls) }
            return true
        case .failure(let e):
            previousOK = false
            log.warning("renewal failed", metadata: ["lockspace": "\(ls.name)", "error": "\(e)"])
            switch e {
            case .renewOwner, .renewDiff, .format:
                fence(ls, why: "our delta lease changed under us: \(e)")
            default: break
            }
            return false
        }
    }

    /// Hosts whose delta lease bitmap has our bit set (they asked us to release something).
    func notifiers(in area: [UInt8], ls: Lockspace) -> Set<Int> {
        let ss = ls.layout.geometry.sectorSize
        var out = Set<Int>()
        for h in ls.view.hosts.keys where h != ls.spec.hostID && h * ss <= area.count {
            if HostBitmap(decoding: area, sectorStart: (h - 1) * ss).contains(hostID: ls.spec.hostID) { out.insert(h) }
        }
        return out
    }

    /// Reads the request record of each lease we hold in `ls` and marks those asked for.
    func checkRequests(_ ls: Lockspace) {
        cond.lock()
        let held = holdings.values.compactMap { $0.first }.filter { $0.key.lockspace == ls.name }
        cond.unlock()
        for h in held {
            let layout = h.grant.resource.layout
            guard let bytes = try? ls.renewalRunner.device.read(offset: layout.requestOffset, length: layout.geometry.sectorSize,
                                                                 timeout: ls.timeouts.ioTimeout),
                  let req = try? RequestRecord.verify(bytes, at: 0, deviceOffset: layout.requestOffset) else { continue }
            if req.lver > h.grant.lver {
                cond.lock()
                var newly = false
                for x in holdings[h.key] ?? [] where !x.releaseRequested { x.releaseRequested = true; newly = true }
                cond.unlock()
                if newly { log.notice("release requested by another host", metadata: ["resource": "\(h.key)", "lver": "\(h.grant.lver)"]) }
            }
        }
    }

    func setState(_ ls: Lockspace, _ s: Lockspace.State, _ detail: String) {
        cond.lock()
        ls.state = s
        ls.detail = detail
        cond.broadcast()
        cond.unlock()
    }

    func setDetail(_ ls: Lockspace, _ detail: String) {
        cond.lock()
        ls.detail = detail
        cond.unlock()
    }

    // MARK: - Fencing

    /// The lockspace failed: no more I/O through it; every holder gets the kill hook, then
    /// SIGTERM, then SIGKILL, all before other hosts may take over (host_dead_seconds =
    /// renewal_fail + watchdog after our last renewal; the graces must fit in the watchdog time).
    func fence(_ ls: Lockspace, why: String) {
        cond.lock()
        guard ls.state != .failed else { cond.unlock(); return }
        ls.state = .failed
        ls.detail = "failed: \(why)"
        var victims: [(pid: Int32, resource: String)] = []
        for (key, hs) in holdings where key.lockspace == ls.name {
            for h in hs where h.pid > 0 && !h.orphan { victims.append((h.pid, key.name)) }
            holdings[key] = nil
        }
        saveState()
        cond.broadcast()
        cond.unlock()
        metrics.fenced()
        log.critical("lockspace failed: revoking leases", metadata: ["lockspace": "\(ls.name)", "reason": "\(why)",
                                                                      "holders": "\(victims.map { "\($0.pid):\($0.resource)" })"])
        let group = DispatchGroup()
        for v in victims {
            group.enter()
            Thread.detachNewThread { [self] in
                Fencer(killHook: config.killHook, killGrace: config.killGraceSeconds, termGrace: config.termGraceSeconds, log: log)
                    .stop(pid: v.pid, lockspace: ls.name, resource: v.resource)
                group.leave()
            }
        }
        group.wait()
        log.critical("lockspace fenced: all holders stopped", metadata: ["lockspace": "\(ls.name)"])
    }

    // MARK: - Persisted state

    /// Call with the lock held.
    /// Marks the lease state changed. The state writer saves it outside the lock, one write
    /// for every change that arrived meanwhile, so a thousand acquires at once do not encode
    /// a thousand-lease file a thousand times under the lock. Lock held.
    func saveState() {
        metrics.leasesHeld(holdings.values.reduce(0) { $0 + $1.count })
        stateVersion += 1
        cond.broadcast()
    }

    /// Waits until the state file holds every change made so far; a reply is sent only after
    /// it, so a daemon killed right after answering still finds the lease on restart.
    /// Lock not held.
    func flushState() {
        cond.lock()
        let target = stateVersion
        while stateWriterRunning && savedVersion < target { cond.wait() }
        cond.unlock()
    }

    private func stateWriterLoop() {
        cond.lock()
        while true {
            while savedVersion == stateVersion { cond.wait() }
            let version = stateVersion
            let leases = holdings.keys.sorted().flatMap { k in holdings[k]!.prefix(1).map(\.info) }
            cond.unlock()
            stateFile.save(leases)
            cond.lock()
            savedVersion = version
            cond.broadcast()
        }
    }
}

extension Daemon {
    /// Arms the watchdog device (if any) and feeds it every second while every lockspace has
    /// renewed within renewal_fail_seconds.
    public func armWatchdog() -> WatchdogHandle {
        let w = Watchdog(device: config.watchdogDevice, log: log)
        if w.armed {
            Thread.detachNewThread { [self] in
                while true {
                    cond.lock()
                    let now = Self.now()
                    let healthy = lockspaces.values.allSatisfy { ls in
                        ls.state != .joined || now - ls.lastSuccess <= Clock.seconds(ls.timeouts.renewalFailSeconds)
                    }
                    let done = stopping
                    cond.unlock()
                    if done { return }
                    if healthy { w.feed() }
                    Thread.sleep(forTimeInterval: 1)
                }
            }
        }
        return WatchdogHandle(w)
    }
}

/// What the service keeps of the watchdog: the clean-stop disarm.
public struct WatchdogHandle: Sendable {
    let watchdog: Watchdog
    init(_ w: Watchdog) { watchdog = w }
    public func disarm() { watchdog.disarm() }
}
