import DeltaLease
import DiskPaxos
import LeaseFormat

/// One local process's hold on a lease. Several processes may share one SH grant of this host
/// (one grant on disk); an EX lease has exactly one holding.
struct Holding: Sendable {
    var key: ResourceKey
    var path: String
    var offset: UInt64
    var grant: Grant
    /// nil for an orphan: held on disk for nobody (a persistent lease whose process exited, or
    /// one adopted from the previous incarnation); the next local acquire takes it over.
    var client: ClientRef?
    var persistent: Bool
    var releaseRequested = false

    var orphan: Bool { client == nil }

    var persisted: PersistedLease {
        PersistedLease(
            lockspace: key.lockspace, resource: key.name, path: path, offset: offset, lver: grant.lver,
            shared: grant.shared, pid: client?.pid ?? 0, startTime: client?.startTime ?? 0,
            persistent: persistent, orphan: orphan, releaseRequested: releaseRequested)
    }

    func victim(_ c: ClientRef) -> Victim {
        Victim(pid: c.pid, startTime: c.startTime, lockspace: key.lockspace, resource: key.name)
    }
}

/// A local acquire waiting its turn (local waiters are admitted in arrival order).
struct Waiter: Sendable {
    var request: RequestID?
    var client: ClientRef?
    var req: AcquireRequest
    var ticket: UInt64
    /// The reply is no longer wanted (timed out, or the process went away): a grant that still
    /// arrives is released.
    var abandoned = false
    /// Held elsewhere at this renewal count: retried after the next renewal.
    var remoteAt: Int? = nil
    /// Recovering a lease of the previous incarnation (no process; `orphan` policy decides).
    var recovering = false
}

/// Disk work on one resource besides the head waiter's acquire, run one at a time.
enum ResourceWork: Sendable {
    case release(Grant, reply: RequestID?)
    case convert(RequestID, ClientRef, toShared: Bool)
    case request(RequestID, PaxosResource, lver: UInt64?)
}

enum ResourceWorkKind: Sendable {
    case acquire(ticket: UInt64)
    case release(reply: RequestID?)
    case convert(RequestID, ClientRef, toShared: Bool)
    case request(RequestID)
}

extension HostCore {
    // MARK: - Acquire

    mutating func acquire(_ id: RequestID, _ c: ClientRef, _ req: AcquireRequest) {
        let k = req.key
        if let refusal = usable(k.lockspace) { return reply(id, .failed(refusal)) }
        if shutdownReply != nil { return fail(id, .busy, "daemon is stopping") }
        if let mine = holdings[k]?.first(where: { $0.client?.id == c.id }) {
            return fail(id, .exists, "\(k) is already held by this process at lver \(mine.grant.lver)")
        }
        if waiters[k]?.contains(where: { $0.client?.id == c.id && !$0.abandoned }) == true {
            return fail(id, .exists, "\(k) is already being acquired by this process")
        }
        // An orphan of the same mode is handed over as it is: same lease, same lver.
        if let i = holdings[k]?.firstIndex(where: { $0.orphan && $0.grant.shared == req.shared }) {
            holdings[k]![i].client = c
            holdings[k]![i].persistent = req.persistent
            log(
                .info, "orphan adopted",
                ["resource": "\(k)", "pid": "\(c.pid)", "lver": "\(holdings[k]![i].grant.lver)"])
            persist()
            return reply(id, .granted(lver: holdings[k]![i].grant.lver))
        }
        waiters[k, default: []].append(Waiter(request: id, client: c, req: req, ticket: nextTicket))
        nextTicket += 1
        pump(k)
    }

    /// nil when ballots can run in `name`, else why not.
    func usable(_ name: String) -> HostFailure? {
        guard let ls = lockspaces[name] else {
            return HostFailure(.noLockspace, "no lockspace \(name) (add_lockspace first)")
        }
        switch ls.state {
        case .joined: return ls.leaveRequested ? HostFailure(.noLockspace, "lockspace \(name) is being left") : nil
        case .joining, .clearingLeftovers: return HostFailure(.joining, "lockspace \(name) is joining: \(ls.detail)")
        case .failed: return HostFailure(.fenced, "lockspace \(name) \(ls.detail)")
        case .leaving, .left: return HostFailure(.noLockspace, "lockspace \(name) is being left")
        }
    }

    /// Starts the next disk operation on `k`, or admits local waiters that need none.
    mutating func pump(_ k: ResourceKey) {
        while busy[k] == nil {
            if var queue = work[k], !queue.isEmpty {
                let w = queue.removeFirst()
                work[k] = queue.isEmpty ? nil : queue
                if startWork(k, w) { return }
                continue
            }
            guard admitHead(k) else { return }
        }
    }

    /// Admits the head waiter if it can go; true when something changed and the loop goes on.
    mutating func admitHead(_ k: ResourceKey) -> Bool {
        waiters[k]?.removeAll { $0.abandoned }
        if waiters[k]?.isEmpty == true { waiters[k] = nil }
        guard let w = waiters[k]?.first else { return false }
        if let refusal = usable(k.lockspace) {
            waiters[k]!.removeFirst()
            if !w.recovering { reply(w.request, .failed(refusal)) }
            return true
        }
        let local = holdings[k] ?? []
        if !local.isEmpty && (!w.req.shared || local.contains { !$0.grant.shared }) {
            if !w.req.wait {
                waiters[k]!.removeFirst()
                fail(
                    w.request, .busy,
                    "\(k) is held on this host by \(local.first!.client.map { "pid \($0.pid)" } ?? "an orphan")")
                return true
            }
            return false
        }
        if w.req.shared, let h = local.first, h.grant.shared, let c = w.client {
            // A second SH holder on this host shares the host's SH grant.
            waiters[k]!.removeFirst()
            holdings[k]!.append(
                Holding(
                    key: k, path: w.req.path, offset: w.req.offset, grant: h.grant, client: c,
                    persistent: w.req.persistent))
            persist()
            reply(w.request, .granted(lver: h.grant.lver))
            return true
        }
        if let at = w.remoteAt, lockspaces[k.lockspace]!.renewals == at { return false }
        startAcquire(k, w)
        return false
    }

    mutating func startAcquire(_ k: ResourceKey, _ w: Waiter) {
        let ls = lockspaces[k.lockspace]!
        guard var ctx = ls.ballotContext(for: k.name, mutations: mutations) else { return }
        ctx.mode = ls.setup.mode
        var options = PaxosAcquire.Options(shared: w.req.shared, noWait: !w.req.wait, requiredLver: w.req.requiredLver)
        options.minimumMbal = ls.highestMbal[k.name] ?? 0
        options.minimumLver = ls.highestLver[k.name] ?? 0
        let resource = PaxosResource(
            space: k.lockspace, name: k.name,
            layout: AreaLayout(offset: w.req.offset, geometry: ls.setup.layout.geometry))
        let op = PaxosAcquire(
            resource: resource, host: PaxosHost(hostID: ls.setup.hostID, generation: ls.generation),
            context: ctx, options: options, seed: nonce())
        startResourceOp(k, .acquire(ticket: w.ticket), .acquire(op))
    }

    mutating func startResourceOp(_ k: ResourceKey, _ kind: ResourceWorkKind, _ op: HostOperation) {
        let id = run(.resource(k, kind), lockspace: k.lockspace, lane: .ballot, op)
        busy[k] = id
        lockspaces[k.lockspace]!.ballotOps.insert(id)
    }

    mutating func acquired(_ k: ResourceKey, ticket: UInt64, _ r: PaxosAcquire.Output, _ op: PaxosAcquire) {
        guard var ls = lockspaces[k.lockspace] else { return }
        let ctx = op.finalContext
        ls.dominated[k.name] = ctx.dominated
        ls.highestMbal[k.name] = max(ls.highestMbal[k.name] ?? 0, op.highestMbal)
        ls.highestLver[k.name] = op.highestLver
        if op.membershipRebuilds > 0 {
            // The operation read the slots again: its view saw what ours has not.
            ls.view.merge(ctx.view)
            if let m = ls.membership, m.epoch != ctx.membership.epoch { ls.membership = ctx.membership }
        }
        lockspaces[k.lockspace] = ls
        let index = waiters[k]?.firstIndex { $0.ticket == ticket }
        let w = index.map { waiters[k]![$0] }
        switch r {
        case .success(let g):
            guard ls.state == .joined, let w, !w.abandoned, let wi = index else {
                // Nobody wants it any more (timed out, gone, fenced): let it go on disk.
                if ls.state == .joined || ls.state == .leaving { work[k, default: []].append(.release(g, reply: nil)) }
                if let wi = index { waiters[k]!.remove(at: wi) }
                return
            }
            waiters[k]!.remove(at: wi)
            unwatch(k)
            if w.recovering { return recovered(k, g, w) }
            holdings[k, default: []].append(
                Holding(
                    key: k, path: w.req.path, offset: w.req.offset, grant: g, client: w.client,
                    persistent: w.req.persistent))
            persist()
            log(
                .info, "acquired",
                [
                    "resource": "\(k)", "lver": "\(g.lver)", "shared": "\(g.shared)",
                    "pid": "\(w.client?.pid ?? 0)", "ballots": "\(g.ballots)",
                ])
            reply(w.request, .granted(lver: g.lver))
        case .failure(let e):
            guard let w, let wi = index else { return }
            acquireFailed(k, w, at: wi, e)
        }
    }

    mutating func acquireFailed(_ k: ResourceKey, _ w: Waiter, at wi: Int, _ e: PaxosError) {
        var retry = false
        var failure: HostFailure
        switch e {
        case .held(let owner, _, _, _):
            watch(k, Int(clamping: owner))
            failure = HostFailure(.busy, "\(k): \(e)")
            retry = true
        case .sharedHolders(let hs):
            for h in hs { watch(k, h) }
            failure = HostFailure(.busy, "\(k): \(e)")
            retry = true
        case .acquiredByOther, .contended, .membershipChurn, .alreadyHeld:
            failure = HostFailure(.busy, "\(k): \(e)")
            retry = true
        case .lverMismatch: failure = HostFailure(.busy, "\(k): \(e)")
        case .io, .membership: failure = HostFailure(.io, "\(k): \(e)")
        case .leader, .corruptDblock, .geometryMismatch, .outOfRange: failure = HostFailure(.corrupt, "\(k): \(e)")
        case .notOwner: failure = HostFailure(.internalError, "\(k): \(e)")
        }
        if retry && w.req.wait && !w.abandoned {
            // A remote holder's release shows at a renewal (we now read its slot each one).
            waiters[k]![wi].remoteAt = lockspaces[k.lockspace]!.renewals
            return
        }
        waiters[k]!.remove(at: wi)
        if w.recovering {
            log(.warning, "previous incarnation's lease not recovered", ["resource": "\(k)", "error": "\(e)"])
            return
        }
        if !w.abandoned { reply(w.request, .failed(failure)) }
    }

    mutating func watch(_ k: ResourceKey, _ host: Int) {
        guard host >= 1, var ls = lockspaces[k.lockspace], host != ls.setup.hostID else { return }
        ls.watched[host, default: []].insert(k)
        lockspaces[k.lockspace] = ls
    }

    mutating func unwatch(_ k: ResourceKey) {
        guard var ls = lockspaces[k.lockspace] else { return }
        for h in ls.watched.keys.sorted() {
            ls.watched[h]!.remove(k)
            if ls.watched[h]!.isEmpty { ls.watched[h] = nil }
        }
        lockspaces[k.lockspace] = ls
    }

    /// After a renewal or a membership change: waiters refused by a remote holder try again.
    mutating func retryRemoteWaiters(_ name: String) {
        for k in waiters.keys.sorted() where k.lockspace == name { pump(k) }
    }

    mutating func expireWaiters() {
        for k in waiters.keys.sorted() {
            for i in waiters[k]!.indices {
                guard let d = waiters[k]![i].req.deadline, d <= now.mono, !waiters[k]![i].abandoned else { continue }
                waiters[k]![i].abandoned = true
                fail(waiters[k]![i].request, .timeout, "\(k): not acquired within the timeout")
            }
            if busy[k] == nil {
                waiters[k]!.removeAll { $0.abandoned }
                if waiters[k]!.isEmpty { waiters[k] = nil; unwatch(k) }
                pump(k)
            }
        }
    }
}
