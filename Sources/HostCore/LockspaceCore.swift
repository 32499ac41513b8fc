import DeltaLease
import DiskPaxos
import LeaseFormat

/// One lockspace as the host core keeps it.
struct LockspaceCore: Sendable {
    enum State: String, Sendable {
        /// Waiting for the previous incarnation's holders to be confirmed gone.
        case clearingLeftovers = "clearing"
        case joining, joined, failed, leaving, left

        /// The transitions the core may make: joined only from a join, never back to clearing
        /// leftovers, and nothing after left (a lockspace left is removed; a new add starts
        /// afresh).
        func mayBecome(_ next: State) -> Bool {
            switch (self, next) {
            case (.left, _): return next == .left
            case (_, .joined): return self == .joining || self == .joined
            case (_, .clearingLeftovers): return self == .clearingLeftovers
            default: return true
            }
        }
    }

    let setup: LockspaceSetup
    var state = State.clearingLeftovers {
        didSet { precondition(oldValue.mayBecome(state), "lockspace \(setup.name): \(oldValue) → \(state)") }
    }
    var detail = "starting"
    var record: LeaderRecord? = nil
    /// The start of our last successful renewal (or join write), on both clocks.
    var lastSuccess: HostTime? = nil
    var previousRenewOK = true
    var renewals = 0
    var nextRenewal: Nanos? = nil
    /// The renewal lane's operation in flight, and when a renewal started.
    var laneOp: OpID? = nil
    var renewalStartedAt: HostTime? = nil
    /// When the join in flight started: its delta write (our first "renewal") is no earlier.
    var joinStartedAt: HostTime? = nil
    var membership: Membership? = nil
    /// An epoch seen that differs from the membership's: a scan labelled with it is due.
    var scanEpoch: EpochStamp? = nil
    var view: LiveView
    var dominated: [String: [Int: UInt64]] = [:]
    var highestMbal: [String: UInt64] = [:]
    /// The highest lver we wrote in our block per resource (`PaxosAcquire.Options.minimumLver`).
    var highestLver: [String: UInt64] = [:]
    /// Hosts whose slots every renewal reads: owners and shared holders we wait for.
    var watched: [Int: Set<ResourceKey>] = [:]
    /// Hosts we asked to release something, and until when their bit stays set (mono).
    var requestBits: [Int: Nanos] = [:]
    var joinReplies: [RequestID] = []
    var leaveReply: RequestID? = nil
    var leaveRequested = false
    /// Ballot-lane operations in flight in this lockspace.
    var ballotOps: Set<OpID> = []
    var rejoinAt: Nanos? = nil
    var rejoinAttempts = 0
    var drained = false

    init(setup: LockspaceSetup) {
        self.setup = setup
        view = LiveView(ourHostID: setup.hostID, timeouts: setup.timeouts)
    }

    var timeouts: Timeouts { setup.timeouts }
    var name: String { setup.name }
    var generation: UInt64 { record?.ownerGeneration ?? 0 }

    func status(now: HostTime) -> LockspaceStatus {
        let age = state == .joined ? lastSuccess.map { Double(now.boot - $0.boot) / 1e9 } ?? 0 : 0
        let mode =
            membership.map {
                BallotContext(lockspace: setup.layout, membership: $0, view: view, mode: setup.mode).effectiveMode
            }
            ?? setup.mode
        return LockspaceStatus(
            name: setup.name, hostID: setup.hostID, path: setup.path, offset: setup.offset,
            state: state == .clearingLeftovers ? "joining" : state.rawValue, detail: detail,
            generation: generation, ioTimeout: timeouts.ioTimeoutSeconds, renewalAgeSeconds: age,
            readMode: mode.rawValue, epoch: membership?.epoch.description ?? "")
    }

    func ballotContext(for resource: String, mutations: SafetyMutations) -> BallotContext? {
        guard let membership else { return nil }
        return BallotContext(
            lockspace: setup.layout, membership: membership, view: view, mode: setup.mode,
            dominated: dominated[resource] ?? [:], mutations: mutations)
    }

    /// The bitmap our next renewal writes: bits of hosts we asked to release, while they last.
    func bitmap(now: Nanos) -> HostBitmap {
        var b = HostBitmap()
        for (h, until) in requestBits where until > now { b.insert(hostID: h) }
        return b
    }
}

/// What an operation in flight is for.
enum PendingOp: Sendable {
    case join(String)
    case renew(String)
    case scan(String)
    case drain(String)
    case leave(String)
    case checkRequests(String)
    case resource(ResourceKey, ResourceWorkKind)
}

extension HostCore {
    // MARK: - Add and remove

    mutating func addLockspace(_ setup: LockspaceSetup, reply: RequestID?, waitJoined: Bool) {
        var inherited: Set<OpID> = []
        if let old = lockspaces[setup.name], old.state == .left { inherited = old.ballotOps }
        if let ls = lockspaces[setup.name], ls.state != .left {
            guard ls.setup == setup else {
                return fail(
                    reply, .exists,
                    "lockspace \(setup.name) is already joined as host_id \(ls.setup.hostID) on \(ls.setup.path)")
            }
            if waitJoined && ls.state != .joined && ls.state != .failed {
                lockspaces[setup.name]!.joinReplies.append(reply ?? 0)
            } else {
                self.reply(reply, .ok)
            }
            return
        }
        if let twin = lockspaces.values.first(where: {
            $0.state != .left && $0.setup.path == setup.path && $0.setup.offset == setup.offset
        }) {
            return fail(reply, .exists, "\(setup.path):\(setup.offset) is already joined as lockspace \(twin.name)")
        }
        lockspaces[setup.name] = LockspaceCore(setup: setup)
        // Ballots of an earlier membership still running report back here; they are counted
        // so that a later leave still waits for them.
        lockspaces[setup.name]!.ballotOps = inherited
        log(
            .info, "joining lockspace",
            [
                "lockspace": setup.name, "host_id": "\(setup.hostID)", "path": setup.path,
                "timeouts": "\(setup.timeouts)",
            ])
        if waitJoined, let reply { lockspaces[setup.name]!.joinReplies.append(reply) } else { self.reply(reply, .ok) }
        driveLockspace(setup.name)
    }

    mutating func remLockspace(_ name: String, reply: RequestID) {
        guard let ls = lockspaces[name], ls.state != .left else {
            return fail(reply, .noLockspace, "no lockspace \(name)")
        }
        if holdings.keys.contains(where: { $0.lockspace == name }) {
            return fail(reply, .busy, "lockspace \(name) still has leases held")
        }
        for k in waiters.keys.sorted() where k.lockspace == name {
            for w in waiters[k]! where !w.abandoned { fail(w.request, .noLockspace, "lockspace \(name) is being left") }
            waiters[k] = nil
        }
        lockspaces[name]!.leaveRequested = true
        lockspaces[name]!.leaveReply = reply
        if ls.state != .joined && ls.state != .failed {
            lockspaces[name]!.state = .leaving
        }
        driveLockspace(name)
    }

    // MARK: - The renewal lane

    /// Starts whatever the lockspace's renewal lane should do next.
    mutating func driveLockspace(_ name: String) {
        guard var ls = lockspaces[name], ls.laneOp == nil else { return }
        switch ls.state {
        case .clearingLeftovers:
            if stoppingIn(name) {
                ls.detail = "stopping the previous incarnation's holders"
                lockspaces[name] = ls
                return
            }
            ls.state = .joining
            lockspaces[name] = ls
            startJoin(name)
        case .joining:
            if ls.record == nil, (ls.rejoinAt ?? now.mono) <= now.mono { startJoin(name) }
        case .joined:
            if ls.leaveRequested { return beginLeave(name) }
            if let e = ls.scanEpoch { return startScan(name, epoch: e) }
            if let due = ls.nextRenewal, due <= now.mono { startRenewal(name) }
        case .failed:
            if ls.leaveRequested { return finishLeave(name, freed: false, why: "fenced") }
            if stoppingIn(name) { return }
            if let at = ls.rejoinAt, at <= now.mono {
                ls.state = .joining
                ls.record = nil
                lockspaces[name] = ls
                startJoin(name)
            } else if ls.rejoinAt == nil {
                lockspaces[name]!.rejoinAt = now.mono + Clock.nanosPerSecond
                lockspaces[name]!.detail = "fenced: rejoining"
            }
        case .leaving:
            continueLeave(name)
        case .left:
            return
        }
    }

    mutating func startJoin(_ name: String) {
        let ls = lockspaces[name]!
        let s = ls.setup
        lockspaces[name]!.detail =
            "delta lease acquire: read, write, epoch, wait \(ls.timeouts.deltaShortDelaySeconds)s, verify"
        let op = DeltaJoin(
            layout: s.layout, space: s.name, hostID: s.hostID, hostName: s.hostName, timeouts: s.timeouts,
            nonce: nonce(), mutations: mutations)
        lockspaces[name]!.joinStartedAt = now
        lockspaces[name]!.laneOp = run(.join(name), lockspace: name, lane: .renewal, .join(op))
    }

    mutating func startRenewal(_ name: String) {
        let ls = lockspaces[name]!
        guard let last = ls.record else { return }
        var watch = Array(ls.watched.keys)
        if config.memberScanEvery > 0 && ls.renewals % config.memberScanEvery == 0, let m = ls.membership {
            watch += m.presentHosts
        }
        let op = DeltaRenew(
            layout: ls.setup.layout, space: name, hostID: ls.setup.hostID, last: last, timeouts: ls.timeouts,
            previousSucceeded: ls.previousRenewOK, bitmap: ls.bitmap(now: now.mono), watch: watch)
        lockspaces[name]!.renewalStartedAt = now
        lockspaces[name]!.laneOp = run(.renew(name), lockspace: name, lane: .renewal, .renew(op))
    }

    mutating func startScan(_ name: String, epoch: EpochStamp?) {
        let ls = lockspaces[name]!
        let op = MembershipScan(layout: ls.setup.layout, space: name, epoch: epoch, mutations: mutations)
        lockspaces[name]!.laneOp = run(.scan(name), lockspace: name, lane: .renewal, .scan(op))
    }

    // MARK: - Results

    mutating func joined(_ name: String, _ r: DeltaJoin.Output) {
        guard var ls = lockspaces[name] else { return }
        switch r {
        case .success(let j):
            if ls.state != .joining { return }
            // Others date our lease from our delta write, which was no earlier than the join's
            // start; if that is already past the fail limit (we were stopped meanwhile), the
            // lease may be dead in their eyes: join again rather than use it.
            let started = ls.joinStartedAt ?? now
            if now.boot - started.boot > Clock.seconds(ls.timeouts.renewalFailSeconds) {
                ls.rejoinAt = now.mono
                ls.detail = "join took too long; joining again"
                lockspaces[name] = ls
                log(.warning, "join outlived its lease: joining again", ["lockspace": name])
                return
            }
            ls.record = j.record
            ls.lastSuccess = started
            ls.previousRenewOK = true
            ls.membership = j.membership
            ls.view.refresh(j.snapshot, layout: ls.setup.layout, space: name)
            // The first renewal is due 2·io_timeout after the delta write, which the join
            // already waited out.
            ls.nextRenewal = now.mono
            ls.state = .joined
            ls.detail = ""
            ls.rejoinAttempts = 0
            ls.rejoinAt = nil
            let replies = ls.joinReplies
            ls.joinReplies = []
            lockspaces[name] = ls
            log(
                .info, "joined lockspace",
                [
                    "lockspace": name, "host_id": "\(ls.setup.hostID)", "generation": "\(j.generation)",
                    "name": ls.setup.hostName, "epoch": "\(j.membership.epoch)",
                ])
            for id in replies { reply(id, .ok) }
            recoverPrevious(name)
        case .failure(let e):
            ls.rejoinAttempts += 1
            let backoff = min(
                Clock.seconds(ls.timeouts.renewalSeconds), Clock.nanosPerSecond << min(ls.rejoinAttempts, 5))
            ls.rejoinAt = now.mono + backoff
            ls.detail = "join failed (\(e)); retrying"
            lockspaces[name] = ls
            log(.error, "join failed", ["lockspace": name, "error": "\(e)"])
            if case .badHostName = e { failJoinWaiters(name, .badRequest, "\(e)") }
        }
    }

    mutating func failJoinWaiters(_ name: String, _ code: HostFailure.Code, _ message: String) {
        let replies = lockspaces[name]?.joinReplies ?? []
        lockspaces[name]?.joinReplies = []
        for id in replies { fail(id, code, message) }
    }

    mutating func renewed(_ name: String, _ r: DeltaRenew.Output) {
        guard var ls = lockspaces[name] else { return }
        let started = ls.renewalStartedAt ?? now
        ls.renewalStartedAt = nil
        guard ls.state == .joined else { return }
        switch r {
        case .success(let done):
            ls.record = done.record
            ls.lastSuccess = started
            ls.previousRenewOK = true
            ls.renewals += 1
            ls.nextRenewal = started.mono + Clock.seconds(ls.timeouts.renewalSeconds)
            var others = done.slots
            others[ls.setup.hostID] = nil
            ls.view.observe(slots: others, layout: ls.setup.layout, space: name, completedAt: done.readCompletedAt)
            if let m = ls.membership, m.epoch != done.epoch { ls.scanEpoch = done.epoch }
            let askers = others.filter {
                HostBitmap(decoding: $0.value, sectorStart: 0).contains(hostID: ls.setup.hostID)
            }
            lockspaces[name] = ls
            if !askers.isEmpty { checkRequests(name) }
            retryRemoteWaiters(name)
        case .failure(let e):
            ls.previousRenewOK = false
            ls.nextRenewal = now.mono + Clock.nanosPerSecond
            lockspaces[name] = ls
            log(.warning, "renewal failed", ["lockspace": name, "error": "\(e)"])
            switch e {
            case .renewOwner, .renewDiff, .format:
                if !mutations.contains(.ignoreFenceAtOnce) {
                    fence(name, why: "our delta lease changed under us: \(e)")
                }
            default: break
            }
        }
    }

    mutating func scanned(_ name: String, _ r: MembershipScan.Output) {
        guard var ls = lockspaces[name] else { return }
        switch r {
        case .success(let s):
            if ls.scanEpoch == s.membership.epoch || ls.scanEpoch == nil { ls.scanEpoch = nil }
            ls.membership = s.membership
            ls.view.refresh(s.snapshot, layout: ls.setup.layout, space: name)
            lockspaces[name] = ls
            log(
                .info, "membership changed",
                [
                    "lockspace": name, "epoch": "\(s.membership.epoch)",
                    "present": s.membership.presentHosts.map(String.init).joined(separator: ","),
                ])
            retryRemoteWaiters(name)
        case .failure(let e):
            log(.warning, "membership scan failed", ["lockspace": name, "error": "\(e)"])
        }
    }

    // MARK: - Fencing

    mutating func checkFenceDeadline(_ name: String) {
        guard let ls = lockspaces[name], ls.state == .joined, let last = ls.lastSuccess else { return }
        let limit = Clock.seconds(ls.timeouts.renewalFailSeconds)
        if now.boot - last.boot > limit {
            fence(
                name,
                why:
                    "no renewal for \((now.boot - last.boot) / Clock.nanosPerSecond)s (limit "
                    + "\(ls.timeouts.renewalFailSeconds)s)"
            )
        }
    }

    /// The lockspace failed: no more I/O through it; every holder is stopped (kill hook,
    /// SIGTERM, SIGKILL) before other hosts may take over; once all are confirmed gone, we rejoin.
    mutating func fence(_ name: String, why: String) {
        guard var ls = lockspaces[name], ls.state == .joined || ls.state == .leaving else { return }
        ls.state = .failed
        ls.detail = "failed: \(why)"
        ls.nextRenewal = nil
        ls.scanEpoch = nil
        ls.rejoinAt = nil
        lockspaces[name] = ls
        var victims: [Victim] = []
        for k in holdings.keys.sorted() where k.lockspace == name {
            for h in holdings[k]! { if let c = h.client, c.pid > 0 { victims.append(h.victim(c)) } }
            holdings[k] = nil
            work[k] = nil
        }
        for k in waiters.keys.sorted() where k.lockspace == name {
            for w in waiters[k]! where !w.abandoned { fail(w.request, .fenced, "lockspace \(name) \(ls.detail)") }
            waiters[k] = nil
        }
        for v in victims { stopping[v.process] = name }
        persist()
        log(
            .critical, "lockspace failed: revoking leases",
            [
                "lockspace": name, "reason": why,
                "holders": victims.map(\.description).joined(separator: ", "),
            ])
        failJoinWaiters(name, .fenced, "lockspace \(name) \(ls.detail)")
        if !victims.isEmpty { emit(.fence(lockspace: name, victims: victims, reason: why)) }
    }

    // MARK: - Leaving (rule 5)

    mutating func beginLeave(_ name: String) {
        lockspaces[name]!.state = .leaving
        lockspaces[name]!.detail = "leaving: waiting for ballots and I/O"
        continueLeave(name)
    }

    mutating func continueLeave(_ name: String) {
        let ls = lockspaces[name]!
        guard ls.laneOp == nil else { return }
        if ls.record == nil { return finishLeave(name, freed: false, why: "never joined") }
        let skipWaits = mutations.contains(.leaveDuringBallot)
        if !skipWaits {
            // No ballot of ours may still run or write after others drop our block.
            if !ls.ballotOps.isEmpty || busy.keys.contains(where: { $0.lockspace == name }) { return }
            if !ls.drained {
                let op = HostOperation.drain(timeoutNanos: Clock.seconds(2 * ls.timeouts.ioTimeoutSeconds))
                lockspaces[name]!.laneOp = run(.drain(name), lockspace: name, lane: .renewal, op)
                return
            }
        }
        let op = DeltaLeave(
            layout: ls.setup.layout, space: name, hostID: ls.setup.hostID, last: ls.record!, nonce: nonce())
        lockspaces[name]!.laneOp = run(.leave(name), lockspace: name, lane: .renewal, .leave(op))
    }

    mutating func drainedIO(_ name: String, outstanding: Int) {
        if outstanding > 0 {
            log(
                .error, "not freeing our host id: timed-out writes still outstanding",
                ["lockspace": name, "outstanding": "\(outstanding)"])
            return finishLeave(name, freed: false, why: "writes outstanding")
        }
        lockspaces[name]!.drained = true
        continueLeave(name)
    }

    mutating func finishLeave(_ name: String, freed: Bool, why: String) {
        lockspaces[name]!.state = .left
        lockspaces[name]!.detail = freed ? "left" : "left without freeing the host id (\(why))"
        lockspaces[name]!.nextRenewal = nil
        let r = lockspaces[name]!.leaveReply
        lockspaces[name]!.leaveReply = nil
        log(.info, "left lockspace", ["lockspace": name, "freed": "\(freed)"])
        reply(r, .ok)
        failJoinWaiters(name, .noLockspace, "lockspace \(name) was left")
        forgetIfIdle(name)
        finishShutdownIfDone()
    }

    /// A left lockspace is forgotten once none of its operations is still running (they
    /// report back to it).
    mutating func forgetIfIdle(_ name: String) {
        guard let ls = lockspaces[name], ls.state == .left, ls.ballotOps.isEmpty, ls.laneOp == nil else { return }
        lockspaces[name] = nil
    }
}
