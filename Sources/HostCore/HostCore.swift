import DeltaLease
import DiskPaxos
import LeaseFormat

/// What to do, at start, with leases the previous incarnation held (from the state file). Our
/// rejoin bumps the host generation, so other hosts treat them as free once we have joined;
/// the policy says what *this* host does with them.
public enum OrphanPolicy: String, Sendable, CaseIterable {
    /// Acquire each (the old generation cannot refuse) and release it: the leader ends free.
    case release
    /// Acquire each and hold it as an orphan until a local acquire adopts it.
    case adopt
}

public struct HostConfig: Sendable, Hashable {
    public var orphans = OrphanPolicy.release
    /// Read every present member's slot in one renewal out of this many (host status, and
    /// release requests addressed to us).
    public var memberScanEvery = 3
    /// Broken rules, for mutation tests only.
    public var mutations: SafetyMutations = []
    public init() {}
}

/// The host's policy, once: when to renew, when to fence, what each ballot outcome means,
/// what a ballot carries to the next, what a restart does with the previous incarnation's
/// holders, when the watchdog may be fed, who waits for which lease (etcd raft's `RawNode`:
/// events in, effects out). No clock, no syscall, no thread: `diskleased` runs it under one
/// lock and performs its effects; the simulator drives the very same value.
///
/// Guarantees (checked by `checkInvariants` after every step, in release builds too):
/// * a lease is granted to a process only after a committed ballot of this incarnation, or by
///   sharing this host's SH grant, or by handing over an orphan; at most one exclusive holding
///   per resource, never beside a shared one;
/// * a lockspace whose last renewal is older than renewal_fail_seconds on the boot clock is
///   fenced before anything else is done with it, and never renews over that gap;
/// * the watchdog may be fed only while every lockspace is healthy or every process it
///   fenced is confirmed gone, and never while a previous incarnation's holder may run;
/// * one disk operation at a time per resource, one on each lockspace's renewal lane;
/// * a lockspace is left only with no ballot of ours running and our I/O drained.
public struct HostCore: Sendable {
    public let config: HostConfig
    var lockspaces: [String: LockspaceCore] = [:]
    var holdings: [ResourceKey: [Holding]] = [:]
    var waiters: [ResourceKey: [Waiter]] = [:]
    var work: [ResourceKey: [ResourceWork]] = [:]
    var busy: [ResourceKey: OpID] = [:]
    var ops: [OpID: PendingOp] = [:]
    var nextOp: OpID = 1
    var nextTicket: UInt64 = 1
    var rng: SplitMix64
    var now = HostTime(mono: 0, boot: 0)
    /// The previous incarnation's leases, per lockspace, until that lockspace has joined.
    var previous: [String: [PersistedLease]] = [:]
    /// Processes being stopped (fenced holders, or leftovers of the previous incarnation),
    /// and those the fencer could not confirm gone (the watchdog stays unfed).
    var stopping: [ProcessRef: String] = [:]
    var unconfirmed: Set<ProcessRef> = []
    var lastGuard: [String: GuardEntry] = [:]
    var shutdownReply: RequestID? = nil
    var started = false
    var effects: [HostEffect] = []

    public init(config: HostConfig = HostConfig(), seed: UInt64) {
        self.config = config
        rng = SplitMix64(seed: seed)
    }

    var mutations: SafetyMutations { config.mutations }

    /// Feeds one event at `now`; returns what the shell must do, in order.
    public mutating func step(_ event: HostEvent, now: HostTime) -> [HostEffect] {
        precondition(now.mono >= self.now.mono && now.boot >= self.now.boot, "the host core's clocks went backwards")
        self.now = now
        effects = []
        // Before anything else: a lockspace whose lease has run out (a pause, a suspend, a
        // hung renewal) is fenced before any result or request is looked at.
        for name in lockspaces.keys.sorted() { checkFenceDeadline(name) }
        switch event {
        case .tick: tick()
        case .start(let previous): start(previous)
        case let .addLockspace(setup, reply, wait): addLockspace(setup, reply: reply, waitJoined: wait)
        case let .remLockspace(name, reply): remLockspace(name, reply: reply)
        case let .acquire(id, client, req): acquire(id, client, req)
        case let .release(id, client, key): release(id, client: client, key)
        case let .releaseFor(id, pid, key): releaseFor(id, pid: pid, key)
        case let .convert(id, client, key, toShared): convert(id, client, key, toShared: toShared)
        case let .requestRelease(id, resource, lver): requestRelease(id, resource, lver: lver)
        case .clientGone(let c): clientGone(c)
        case let .finished(id, output): finished(id, output)
        case .victimGone(let v): victimGone(v.process)
        case .victimUnconfirmed(let v): victimUnconfirmed(v)
        case .shutdown(let id): shutdown(id)
        }
        emitGuardIfChanged()
        checkInvariants()
        return effects
    }

    // MARK: - Effects

    mutating func emit(_ e: HostEffect) { effects.append(e) }

    mutating func reply(_ id: RequestID?, _ r: HostReply) {
        if let id { emit(.reply(id, r)) }
    }

    mutating func fail(_ id: RequestID?, _ code: HostFailure.Code, _ message: String) {
        reply(id, .failed(HostFailure(code, message)))
    }

    mutating func log(_ level: LogLevel, _ message: String, _ meta: [String: String] = [:]) {
        emit(.log(level, message, meta))
    }

    mutating func run(_ pending: PendingOp, lockspace: String, lane: Lane, _ op: HostOperation) -> OpID {
        let id = nextOp
        nextOp += 1
        ops[id] = pending
        emit(.run(id, lockspace: lockspace, lane: lane, op))
        return id
    }

    mutating func persist() {
        emit(.persist(persistedLeases()))
    }

    /// Every holding, as the state file keeps it (an SH grant shared by several processes is
    /// one entry per process).
    public func persistedLeases() -> [PersistedLease] {
        let held = holdings.keys.sorted().flatMap { k in holdings[k]!.map(\.persisted) }
        // Fenced holders not yet confirmed gone go in too: a restart must stop them first.
        let fencing = stopping.keys.sorted { $0.pid < $1.pid }.map { p in
            PersistedLease(
                lockspace: stopping[p]!, resource: "*", path: "", offset: 0, lver: 0, shared: false, pid: p.pid,
                startTime: p.startTime, persistent: false, orphan: false, releaseRequested: false, fenced: true)
        }
        return held + fencing
    }

    mutating func nonce() -> UInt64 { rng.next() }

    // MARK: - Time

    mutating func tick() {
        guard started else { return }
        for name in lockspaces.keys.sorted() {
            checkFenceDeadline(name)
            driveLockspace(name)
        }
        expireWaiters()
        emit(.watchdog(feed: watchdogMayFeed()))
    }

    /// The watchdog rule of DESIGN.md and issue 11: fed only while every lockspace renews in
    /// time or every process fenced in it is confirmed gone, and no leftover of a previous
    /// incarnation may still run.
    public func watchdogMayFeed() -> Bool {
        if !unconfirmed.isEmpty && !mutations.contains(.feedWatchdogWhileVictimLives) { return false }
        let anyStopping = !stopping.isEmpty && !mutations.contains(.feedWatchdogWhileVictimLives)
        if anyStopping { return false }
        for ls in lockspaces.values where ls.state == .joined {
            if let last = ls.lastSuccess, now.boot - last.boot > Clock.seconds(ls.timeouts.renewalFailSeconds) {
                return false
            }
        }
        return true
    }

    // MARK: - Start and stop

    mutating func start(_ previous: [PersistedLease]) {
        started = true
        for l in previous where l.fenced != true { self.previous[l.lockspace, default: []].append(l) }
        // Holders of the previous incarnation may still run (the daemon was killed, its VMs
        // were not): they are stopped before we feed the watchdog or rejoin under our name.
        var leftovers: [Victim] = []
        var seen = Set<ProcessRef>()
        for l in previous where l.pid > 0 && !l.orphan {
            let v = Victim(pid: l.pid, startTime: l.startTime, lockspace: l.lockspace, resource: l.resource)
            if seen.insert(v.process).inserted { leftovers.append(v) }
        }
        if !leftovers.isEmpty {
            log(
                .warning, "previous incarnation's holders may still run: stopping them first",
                ["holders": leftovers.map(\.description).joined(separator: ", ")])
            if !mutations.contains(.restartWithoutKillingLeftovers) {
                for v in leftovers { stopping[v.process] = v.lockspace }
                persist()
                emit(.fence(lockspace: "", victims: leftovers, reason: "holder of the previous incarnation"))
            }
        }
        emit(.watchdog(feed: watchdogMayFeed()))
    }

    mutating func victimGone(_ p: ProcessRef) {
        guard let ls = stopping.removeValue(forKey: p) else { return }
        unconfirmed.remove(p)
        persist()
        log(.notice, "holder stopped", ["pid": "\(p.pid)", "lockspace": ls])
        for name in lockspaces.keys.sorted() { driveLockspace(name) }
    }

    mutating func victimUnconfirmed(_ v: Victim) {
        unconfirmed.insert(v.process)
        log(
            .critical, "could not confirm a holder gone: not feeding the watchdog",
            ["pid": "\(v.pid)", "lockspace": v.lockspace])
    }

    /// Whether a process of `lockspace` (a fenced holder or a leftover) may still run.
    func stoppingIn(_ lockspace: String) -> Bool { stopping.values.contains(lockspace) }

    mutating func shutdown(_ id: RequestID) {
        shutdownReply = id
        for k in waiters.keys.sorted() {
            for w in waiters[k]! where !w.abandoned { fail(w.request, .busy, "daemon is stopping") }
            waiters[k] = nil
        }
        for k in holdings.keys.sorted() {
            let hs = holdings.removeValue(forKey: k)!
            if let first = hs.first, lockspaces[k.lockspace]?.state == .joined {
                work[k, default: []].append(.release(first.grant, reply: nil))
            }
        }
        persist()
        for k in work.keys.sorted() { pump(k) }
        for name in lockspaces.keys.sorted() where lockspaces[name]!.state != .left {
            lockspaces[name]!.leaveRequested = true
            if lockspaces[name]!.state == .joining || lockspaces[name]!.state == .clearingLeftovers {
                lockspaces[name]!.state = .leaving
            }
            driveLockspace(name)
        }
        finishShutdownIfDone()
    }

    mutating func finishShutdownIfDone() {
        guard let id = shutdownReply else { return }
        let done = lockspaces.values.allSatisfy { $0.state == .left || $0.state == .failed }
        if done && busy.isEmpty {
            shutdownReply = nil
            reply(id, .ok)
        }
    }

    // MARK: - Queries (under the shell's lock)

    public func lockspaceStatus(now: HostTime) -> [LockspaceStatus] {
        lockspaces.keys.sorted().map { lockspaces[$0]!.status(now: now) }
    }

    public func hostStatus(_ name: String, now: HostTime) -> [HostStatus]? {
        guard let ls = lockspaces[name] else { return nil }
        return ls.view.hosts.keys.sorted().map { h in
            let o = ls.view.hosts[h]!
            return HostStatus(
                hostID: h, state: ls.view.state(of: h, now: now.mono), generation: o.generation,
                timestamp: o.timestamp, name: o.name)
        }
    }

    public func leases(pid: Int32? = nil) -> [PersistedLease] {
        persistedLeases().filter { $0.fenced != true && (pid == nil || ($0.pid == pid! && !$0.orphan)) }
    }

    public func lockspaceSetup(_ name: String) -> LockspaceSetup? { lockspaces[name]?.setup }

    /// The earliest time the shell should send the next tick (deadlines of waiters, renewals,
    /// fencing), never later than a second from now.
    public func nextWake() -> Nanos {
        var t = now.mono + Clock.nanosPerSecond
        for ls in lockspaces.values { t = min(t, ls.nextRenewal ?? t) }
        for ws in waiters.values { for w in ws { if let d = w.req.deadline { t = min(t, d) } } }
        return max(t, now.mono)
    }
}

public struct LockspaceStatus: Sendable, Hashable {
    public var name: String
    public var hostID: Int
    public var path: String
    public var offset: UInt64
    public var state: String
    public var detail: String
    public var generation: UInt64
    public var ioTimeout: Int
    public var renewalAgeSeconds: Double
    public var readMode: String
    public var epoch: String
}

public struct HostStatus: Sendable, Hashable {
    public var hostID: Int
    public var state: HostState
    public var generation: UInt64
    public var timestamp: UInt64
    public var name: String
}
