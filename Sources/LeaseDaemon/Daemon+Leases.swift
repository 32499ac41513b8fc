import DeltaLease
import DiskLeaseClient
import DiskPaxos
import Foundation
import LeaseFormat
import LeaseRunner

/// Who sent a request: the connection (registration) and its peer credentials.
public struct ClientIdentity: Sendable {
    public var id: UInt64
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
}

extension Daemon {
    /// Answers one request. Never throws: every failure is a response.
    public func handle(_ q: Request, from c: ClientIdentity) -> Response {
        defer { flushState() }
        do {
            var r = try dispatch(q, from: c)
            r.id = q.id
            return r
        } catch {
            metrics.requestFailed(q.op, error.code)
            return .failure(error, id: q.id)
        }
    }

    func dispatch(_ q: Request, from c: ClientIdentity) throws(WireError) -> Response {
        guard q.v == Wire.version else {
            throw WireError(.unsupportedVersion, "protocol version \(q.v) is not supported (this daemon speaks \(Wire.version))")
        }
        var ok = Response(ok: true)
        switch q.op {
        case .register:
            ok.pid = c.pid
        case .addLockspace:
            let spec = LockspaceSpec(name: try need(q.lockspace, "lockspace"), hostID: try need(q.hostId, "host_id"),
                                     path: try need(q.path, "path"), offset: q.offset ?? 0)
            guard spec.hostID >= 1 else { throw WireError(.badRequest, "host_id must be 1 or more") }
            let ls = try addLockspace(spec, wait: q.wait ?? false)
            cond.lock()
            ok.lockspaces = [ls.info(now: Self.now())]
            cond.unlock()
        case .remLockspace:
            try remLockspace(try need(q.lockspace, "lockspace"))
        case .acquire:
            ok.lver = try acquire(q, from: c)
        case .release:
            if let pid = q.pid, pid != c.pid {
                guard c.uid == 0 else { throw WireError(.permission, "only root may release another process's lease") }
                try release(key(q), pid: pid)
            } else {
                try release(key(q), clientID: c.id)
            }
        case .convert:
            ok.lver = try convert(key(q), toShared: try need(q.shared, "shared"), clientID: c.id)
        case .request:
            try requestRelease(q)
        case .inquire:
            let pid = q.pid ?? c.pid
            if pid != c.pid && c.uid != 0 { throw WireError(.permission, "only root may inquire about another pid") }
            cond.lock()
            ok.leases = holdings.keys.sorted().flatMap { holdings[$0]! }.filter { $0.pid == pid && !$0.orphan }.map(\.info)
            cond.unlock()
        case .status:
            cond.lock()
            let now = Self.now()
            ok.lockspaces = lockspaces.keys.sorted().map { lockspaces[$0]!.info(now: now) }
            ok.leases = holdings.keys.sorted().flatMap { holdings[$0]! }.map(\.info)
            cond.unlock()
        case .hostStatus:
            let name = try need(q.lockspace, "lockspace")
            cond.lock()
            defer { cond.unlock() }
            guard let ls = lockspaces[name] else { throw WireError(.noLockspace, "no lockspace \(name)") }
            ok.hosts = ls.hosts(now: Self.now())
        }
        return ok
    }

    func need<T>(_ v: T?, _ field: String) throws(WireError) -> T {
        guard let v else { throw WireError(.badRequest, "missing field \(field)") }
        return v
    }

    func key(_ q: Request) throws(WireError) -> ResourceKey {
        let name = try need(q.resource, "resource")
        let space = try need(q.lockspace, "lockspace")
        do {
            try LeaseName.validate(name, what: "resource")
            try LeaseName.validate(space, what: "lockspace")
        } catch {
            throw WireError(.badRequest, "\(error)")
        }
        return ResourceKey(lockspace: space, name: name)
    }

    /// Call with the lock held: the lockspace, if it can run ballots.
    func usableLockspace(_ name: String) throws(WireError) -> Lockspace {
        guard let ls = lockspaces[name] else { throw WireError(.noLockspace, "no lockspace \(name) (add_lockspace first)") }
        switch ls.state {
        case .joined: return ls
        case .joining: throw WireError(.joining, "lockspace \(name) is joining: \(ls.detail)")
        case .failed: throw WireError(.fenced, "lockspace \(name) \(ls.detail)")
        case .leaving, .left: throw WireError(.noLockspace, "lockspace \(name) is being left")
        }
    }

    // MARK: - Acquire

    func acquire(_ q: Request, from c: ClientIdentity) throws(WireError) -> UInt64 {
        let k = try key(q)
        let path = try need(q.path, "path")
        let offset = try need(q.offset, "offset")
        let shared = q.shared ?? false
        let wait = q.wait ?? true
        let deadline = q.timeoutMs.map { Date(timeIntervalSinceNow: Double($0) / 1000) }
        cond.lock()
        defer { cond.unlock() }
        let ls = try usableLockspace(k.lockspace)
        if stopping { throw WireError(.busy, "daemon is stopping") }
        if let mine = holdings[k]?.first(where: { $0.clientID == c.id }) {
            throw WireError(.exists, "\(k) is already held by this process at lver \(mine.grant.lver)")
        }
        // An orphan of the same mode is handed over as it is: same lease, same lver.
        if let o = holdings[k]?.first(where: { $0.orphan && $0.grant.shared == shared }) {
            o.orphan = false
            o.clientID = c.id
            o.pid = c.pid
            saveState()
            log.info("orphan adopted", metadata: ["resource": "\(k)", "pid": "\(c.pid)", "lver": "\(o.grant.lver)"])
            return o.grant.lver
        }
        let ticket = nextTicket
        nextTicket += 1
        queues[k, default: []].append(ticket)
        defer {
            queues[k]?.removeAll { $0 == ticket }
            if queues[k]?.isEmpty == true { queues[k] = nil }
            cond.broadcast()
        }
        // Local admission, in arrival order.
        while true {
            _ = try usableLockspace(k.lockspace)
            let local = holdings[k] ?? []
            let conflict = !local.isEmpty && (!shared || local.contains { !$0.grant.shared })
            if queues[k]?.first == ticket && !conflict { break }
            if !wait {
                let who = local.first.map { "pid \($0.pid)" } ?? "an earlier waiter"
                throw WireError(.busy, "\(k) is held on this host by \(who)")
            }
            try waitUntil(deadline, k)
        }
        // A second SH holder on this host shares the host's SH grant.
        if shared, let h = holdings[k]?.first, h.grant.shared {
            holdings[k]!.append(Holding(key: k, path: path, offset: offset, grant: h.grant, clientID: c.id, pid: c.pid,
                                        persistent: q.persistent ?? false, orphan: false))
            saveState()
            return h.grant.lver
        }
        let resource = try paxosResource(k, path: path, offset: offset, ls: ls)
        var options = PaxosAcquire.Options(shared: shared, noWait: !wait, requiredLver: q.lver)
        while true {
            let ls = try usableLockspace(k.lockspace)
            options.minimumMbal = ls.highestMbal[k.name] ?? 0
            let ctx = BallotContext(view: ls.view, joinedAt: ls.joinedAt, mode: ls.mode, verifiedStale: ls.verifiedStale[k.name] ?? [:])
            let renewalsBefore = ls.renewals
            var op = PaxosAcquire(resource: resource, host: PaxosHost(hostID: ls.spec.hostID, generation: ls.generation),
                                  context: ctx, timeouts: ls.timeouts, options: options, seed: UInt64.random(in: 0...UInt64.max))
            var trace = IOTrace()
            cond.unlock()
            let result = ls.exclusively(on: k.name) { ls.ballotRunner.run(&op, trace: &trace) }
            cond.lock()
            ls.verifiedStale[k.name] = op.verifiedStale
            ls.highestMbal[k.name] = max(ls.highestMbal[k.name] ?? 0, op.highestMbal)
            metrics.ballot(trace: trace, result: result)
            switch result {
            case .success(let g):
                guard ls.state == .joined else {
                    throw WireError(.fenced, "lockspace \(ls.name) failed during the acquire: \(ls.detail)")
                }
                holdings[k, default: []].append(Holding(key: k, path: path, offset: offset, grant: g, clientID: c.id, pid: c.pid,
                                                        persistent: q.persistent ?? false, orphan: false))
                saveState()
                log.info("acquired", metadata: ["resource": "\(k)", "lver": "\(g.lver)", "shared": "\(g.shared)", "pid": "\(c.pid)",
                                                "bytes_read": "\(trace.bytesRead)", "round_trips": "\(trace.roundTrips)", "ballots": "\(g.ballots)"])
                return g.lver
            case .failure(let e):
                switch e {
                case .viewTooOld:
                    cond.unlock()
                    refreshView(ls)
                    cond.lock()
                case .joinWaitPending(let until):
                    if !wait { throw WireError(.joining, e.description) }
                    let ends = Date(timeIntervalSinceNow: Double(until - Self.now()) / 1e9)
                    if let deadline, deadline <= ends {
                        try waitUntil(deadline, k)
                    } else {
                        _ = cond.wait(until: ends)
                    }
                case .held, .acquiredByOther, .sharedHolders, .contended, .ballotTooLong, .leaderBehind:
                    if !wait { throw WireError(.busy, "\(k): \(e)") }
                    // A remote holder's release shows at our next renewal at the latest.
                    while ls.renewals == renewalsBefore && ls.state == .joined { try waitUntil(deadline, k) }
                case .lverMismatch:
                    throw WireError(.busy, "\(k): \(e)")
                case .io(let io):
                    throw WireError(.io, "\(k): \(io)")
                case .leader, .corruptDblock, .geometryMismatch:
                    throw WireError(.corrupt, "\(resource.layout.offset): \(k): \(e)")
                case .notOwner:
                    throw WireError(.internalError, "\(k): \(e)")
                }
            }
        }
    }

    /// Waits on the lock for a change, until `deadline`. Call with the lock held.
    func waitUntil(_ deadline: Date?, _ k: ResourceKey) throws(WireError) {
        if let deadline {
            if !cond.wait(until: deadline) && Date() >= deadline {
                throw WireError(.timeout, "\(k): not acquired within the timeout")
            }
        } else {
            cond.wait()
        }
    }

    func refreshView(_ ls: Lockspace) {
        // Concurrent refreshes read the same sectors; the coalescing device merges them.
        let r = ls.ballotRunner.run(ViewRefresh(layout: ls.layout))
        if case .success(let snap) = r {
            cond.lock()
            ls.view.refresh(snap, layout: ls.layout, space: ls.name)
            cond.unlock()
        }
    }

    /// The resource's area, checked against the lockspace's device and its declared geometry.
    func paxosResource(_ k: ResourceKey, path: String, offset: UInt64, ls: Lockspace) throws(WireError) -> PaxosResource {
        guard path == ls.spec.path else {
            throw WireError(.badRequest, "\(k): resource areas must be on the lockspace's device \(ls.spec.path), not \(path)")
        }
        let g = ls.layout.geometry
        guard offset % UInt64(g.alignSize) == 0, offset != ls.spec.offset, offset + UInt64(g.alignSize) <= ls.ballotRunner.device.sizeBytes else {
            throw WireError(.badRequest, "\(path): offset \(offset) is not a \(g.alignSize)-aligned resource area inside the device, apart from the lockspace")
        }
        return PaxosResource(space: k.lockspace, name: k.name, layout: AreaLayout(offset: offset, geometry: g))
    }

    // MARK: - Release, convert, request

    func release(_ k: ResourceKey, clientID: UInt64) throws(WireError) {
        cond.lock()
        defer { cond.unlock() }
        guard let i = holdings[k]?.firstIndex(where: { $0.clientID == clientID }) else {
            throw WireError(.notOwner, "\(k) is not held by this process")
        }
        try releaseHolding(at: i, of: k)
    }

    /// Root releasing a lease on behalf of a process (sanlock's `client release -p`); pid 0
    /// names an orphan.
    func release(_ k: ResourceKey, pid: Int32) throws(WireError) {
        cond.lock()
        defer { cond.unlock() }
        guard let i = holdings[k]?.firstIndex(where: { pid == 0 ? $0.orphan : ($0.pid == pid && !$0.orphan) }) else {
            throw WireError(.notOwner, "\(k) is not held by \(pid == 0 ? "an orphan" : "pid \(pid)")")
        }
        log.notice("released on behalf of a process", metadata: ["resource": "\(k)", "pid": "\(pid)"])
        try releaseHolding(at: i, of: k)
    }

    /// Removes one holding; the last one of a resource is released on disk. Lock held.
    func releaseHolding(at i: Int, of k: ResourceKey) throws(WireError) {
        let h = holdings[k]!.remove(at: i)
        defer { cond.broadcast() }
        if !holdings[k]!.isEmpty { saveState(); return }
        holdings[k] = nil
        saveState()
        guard let ls = lockspaces[k.lockspace], ls.state == .joined else { return }
        cond.unlock()
        let r = diskRelease(h.grant, in: ls)
        cond.lock()
        if let e = r { throw e }
        log.info("released", metadata: ["resource": "\(k)", "lver": "\(h.grant.lver)", "pid": "\(h.pid)"])
    }

    /// Lock not held.
    func diskRelease(_ g: Grant, in ls: Lockspace) -> WireError? {
        let r = ls.exclusively(on: g.resource.name) { ls.ballotRunner.run(PaxosRelease(grant: g)) }
        if case .failure(let e) = r {
            log.error("release failed", metadata: ["resource": "\(g.resource)", "error": "\(e)"])
            return WireError(.io, "\(g.resource): release: \(e)")
        }
        return nil
    }

    func convert(_ k: ResourceKey, toShared: Bool, clientID: UInt64) throws(WireError) -> UInt64 {
        cond.lock()
        defer { cond.unlock() }
        guard let h = holdings[k]?.first(where: { $0.clientID == clientID }) else {
            throw WireError(.notOwner, "\(k) is not held by this process")
        }
        if h.grant.shared == toShared { return h.grant.lver }
        let ls = try usableLockspace(k.lockspace)
        if !toShared && holdings[k]!.count > 1 {
            throw WireError(.busy, "\(k) is also held shared by other processes on this host")
        }
        cond.unlock()
        let result: Result<Grant?, PaxosError> = ls.exclusively(on: k.name) {
            if toShared {
                return ls.ballotRunner.run(PaxosRelease(grant: h.grant, toShared: true))
            }
            var options = PaxosAcquire.Options(shared: false, noWait: true, convertFromShared: true)
            options.minimumMbal = 0
            cond.lock()
            let ctx = BallotContext(view: ls.view, joinedAt: ls.joinedAt, mode: ls.mode, verifiedStale: ls.verifiedStale[k.name] ?? [:])
            cond.unlock()
            let op = PaxosAcquire(resource: h.grant.resource, host: h.grant.host, context: ctx, timeouts: ls.timeouts,
                                  options: options, seed: UInt64.random(in: 0...UInt64.max))
            return ls.ballotRunner.run(op).map { Optional($0) }
        }
        cond.lock()
        switch result {
        case .success(let g):
            if let g { h.grant = g } else { h.grant.shared = toShared }
            saveState()
            return h.grant.lver
        case .failure(let e):
            throw WireError(.busy, "\(k): convert: \(e)")
        }
    }

    /// Writes a request record asking the current owner to release, and sets the owner's bit
    /// in our delta lease bitmap so its next renewal notices.
    func requestRelease(_ q: Request) throws(WireError) {
        let k = try key(q)
        cond.lock()
        let ls: Lockspace
        do {
            ls = try usableLockspace(k.lockspace)
        } catch {
            cond.unlock()
            throw error
        }
        cond.unlock()
        let res = try paxosResource(k, path: try need(q.path, "path"), offset: try need(q.offset, "offset"), ls: ls)
        let r = ls.exclusively(on: k.name) { ls.ballotRunner.run(PaxosRequest(resource: res, lver: q.lver, forceMode: 0)) }
        switch r {
        case .success(.free): return
        case .success(.requested(let owner)):
            cond.lock()
            ls.requestBits[owner] = Self.now() + Clock.seconds(6 * ls.timeouts.ioTimeoutSeconds)
            cond.unlock()
            log.info("requested release", metadata: ["resource": "\(k)", "owner": "\(owner)"])
        case .failure(let e):
            throw WireError(.busy, "\(k): request: \(e)")
        }
    }

    // MARK: - Processes

    /// The process behind a connection is gone: its leases are released on disk, persistent
    /// ones become orphans.
    public func clientClosed(_ clientID: UInt64) {
        cond.lock()
        defer { cond.unlock() }
        for k in holdings.keys.sorted() {
            guard let i = holdings[k]?.firstIndex(where: { $0.clientID == clientID }) else { continue }
            let h = holdings[k]![i]
            if h.persistent {
                h.orphan = true
                h.clientID = nil
                saveState()
                log.notice("process exited: persistent lease kept as orphan", metadata: ["resource": "\(k)", "pid": "\(h.pid)"])
                continue
            }
            log.info("process exited: releasing", metadata: ["resource": "\(k)", "pid": "\(h.pid)", "lver": "\(h.grant.lver)"])
            try? releaseHolding(at: i, of: k)
        }
    }

    // MARK: - Orphans of the previous incarnation

    /// After the join wait, each lease the previous incarnation held here is acquired (our new
    /// generation lets us) and then released or kept as an orphan, as configured.
    func startOrphanWork(_ ls: Lockspace) {
        guard let leases = previous.removeValue(forKey: ls.name), !leases.isEmpty else { return }
        Thread.detachNewThread { [self] in
            var seen = Set<String>()
            for l in leases where seen.insert(l.resource).inserted {
                var q = Request(op: .acquire)
                q.lockspace = l.lockspace
                q.resource = l.resource
                q.path = l.path
                q.offset = l.offset
                q.shared = l.shared
                q.wait = false
                q.persistent = true
                let me = ClientIdentity(id: 0, pid: 0, uid: 0, gid: 0)
                do {
                    let lver = try acquire(q, from: me)
                    cond.lock()
                    if let h = holdings[ResourceKey(lockspace: l.lockspace, name: l.resource)]?.first(where: { $0.clientID == 0 }) {
                        h.clientID = nil
                        h.orphan = true
                    }
                    cond.unlock()
                    if config.orphans == .release {
                        let k = ResourceKey(lockspace: l.lockspace, name: l.resource)
                        cond.lock()
                        if let i = holdings[k]?.firstIndex(where: { $0.orphan }) { try? releaseHolding(at: i, of: k) }
                        cond.unlock()
                        log.notice("previous incarnation's lease released", metadata: ["resource": "\(k)", "lver": "\(lver)"])
                    } else {
                        log.notice("previous incarnation's lease adopted as orphan", metadata: ["resource": "\(l.lockspace):\(l.resource)", "lver": "\(lver)"])
                    }
                } catch {
                    log.warning("previous incarnation's lease not recovered", metadata: ["resource": "\(l.lockspace):\(l.resource)", "error": "\(error)"])
                }
            }
        }
    }
}
