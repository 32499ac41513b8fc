import DeltaLease
import DiskPaxos
import LeaseFormat

extension HostCore {
    // MARK: - Release

    mutating func release(_ id: RequestID, client c: ClientRef, _ k: ResourceKey) {
        guard let i = holdings[k]?.firstIndex(where: { $0.client?.id == c.id }) else {
            return fail(id, .notOwner, "\(k) is not held by this process")
        }
        dropHolding(at: i, of: k, reply: id)
    }

    /// Root releasing a lease on behalf of a process (sanlock's `client release -p`); pid 0
    /// names an orphan.
    mutating func releaseFor(_ id: RequestID, pid: Int32, _ k: ResourceKey) {
        guard let i = holdings[k]?.firstIndex(where: { pid == 0 ? $0.orphan : ($0.client?.pid == pid) }) else {
            return fail(id, .notOwner, "\(k) is not held by \(pid == 0 ? "an orphan" : "pid \(pid)")")
        }
        log(.notice, "released on behalf of a process", ["resource": "\(k)", "pid": "\(pid)"])
        dropHolding(at: i, of: k, reply: id)
    }

    /// Removes one holding; the last one of a resource is released on disk (the reply comes
    /// after that write).
    mutating func dropHolding(at i: Int, of k: ResourceKey, reply id: RequestID?) {
        let h = holdings[k]!.remove(at: i)
        if !holdings[k]!.isEmpty {
            persist()
            reply(id, .ok)
            return pump(k)
        }
        holdings[k] = nil
        persist()
        guard let ls = lockspaces[k.lockspace], ls.state == .joined || ls.state == .leaving else {
            reply(id, .ok)
            return
        }
        work[k, default: []].append(.release(h.grant, reply: id))
        pump(k)
    }

    /// The process behind a connection is gone: its leases are released on disk, persistent
    /// ones become orphans; its waits are abandoned.
    mutating func clientGone(_ c: ClientRef) {
        for k in waiters.keys.sorted() {
            for i in waiters[k]!.indices where waiters[k]![i].client?.id == c.id { waiters[k]![i].abandoned = true }
        }
        for k in holdings.keys.sorted() {
            guard let i = holdings[k]?.firstIndex(where: { $0.client?.id == c.id }) else { continue }
            if holdings[k]![i].persistent {
                holdings[k]![i].client = nil
                persist()
                log(
                    .notice, "process exited: persistent lease kept as orphan", ["resource": "\(k)", "pid": "\(c.pid)"])
                continue
            }
            log(
                .info, "process exited: releasing",
                ["resource": "\(k)", "pid": "\(c.pid)", "lver": "\(holdings[k]![i].grant.lver)"])
            dropHolding(at: i, of: k, reply: nil)
        }
        for k in waiters.keys.sorted() where busy[k] == nil { pump(k) }
    }

    // MARK: - Convert and request

    mutating func convert(_ id: RequestID, _ c: ClientRef, _ k: ResourceKey, toShared: Bool) {
        guard let h = holdings[k]?.first(where: { $0.client?.id == c.id }) else {
            return fail(id, .notOwner, "\(k) is not held by this process")
        }
        if h.grant.shared == toShared { return reply(id, .granted(lver: h.grant.lver)) }
        if let refusal = usable(k.lockspace) { return reply(id, .failed(refusal)) }
        if !toShared && holdings[k]!.count > 1 {
            return fail(id, .busy, "\(k) is also held shared by other processes on this host")
        }
        work[k, default: []].append(.convert(id, c, toShared: toShared))
        pump(k)
    }

    mutating func requestRelease(_ id: RequestID, _ r: PaxosResource, lver: UInt64?) {
        let k = ResourceKey(lockspace: r.space, name: r.name)
        if let refusal = usable(k.lockspace) { return reply(id, .failed(refusal)) }
        work[k, default: []].append(.request(id, r, lver: lver))
        pump(k)
    }

    /// Starts one queued piece of work; false when it needed no I/O (done already).
    mutating func startWork(_ k: ResourceKey, _ w: ResourceWork) -> Bool {
        switch w {
        case let .release(g, id):
            guard let ls = lockspaces[k.lockspace], ls.state == .joined || ls.state == .leaving else {
                reply(id, .ok)
                return false
            }
            startResourceOp(k, .release(reply: id), .release(PaxosRelease(grant: g)))
        case let .convert(id, c, toShared):
            guard let h = holdings[k]?.first(where: { $0.client?.id == c.id }), let ls = lockspaces[k.lockspace] else {
                fail(id, .notOwner, "\(k) is not held by this process")
                return false
            }
            if let refusal = usable(k.lockspace) {
                reply(id, .failed(refusal))
                return false
            }
            if toShared {
                startResourceOp(
                    k, .convert(id, c, toShared: true), .release(PaxosRelease(grant: h.grant, toShared: true)))
            } else {
                guard let ctx = ls.ballotContext(for: k.name, mutations: mutations) else { return false }
                var options = PaxosAcquire.Options(shared: false, noWait: true, convertFromShared: true)
                options.minimumMbal = ls.highestMbal[k.name] ?? 0
                options.minimumLver = ls.highestLver[k.name] ?? 0
                let op = PaxosAcquire(
                    resource: h.grant.resource, host: h.grant.host, context: ctx, options: options, seed: nonce())
                startResourceOp(k, .convert(id, c, toShared: false), .acquire(op))
            }
        case let .request(id, r, lver):
            startResourceOp(k, .request(id), .request(PaxosRequest(resource: r, lver: lver, forceMode: 0)))
        }
        return true
    }

    // MARK: - Operation results

    mutating func finished(_ id: OpID, _ output: HostOutput) {
        guard let pending = ops.removeValue(forKey: id) else { return }
        switch pending {
        case .join(let n), .renew(let n), .scan(let n), .drain(let n), .leave(let n):
            lockspaces[n]?.laneOp = nil
        case .checkRequests(let n):
            lockspaces[n]?.ballotOps.remove(id)
        case .resource(let k, _):
            busy[k] = nil
            lockspaces[k.lockspace]?.ballotOps.remove(id)
        }
        switch (pending, output) {
        case (.join(let n), .join(let r)): joined(n, r)
        case (.renew(let n), .renew(let r)): renewed(n, r)
        case (.scan(let n), .scan(let r)): scanned(n, r)
        case (.drain(let n), .drained(let outstanding)): drainedIO(n, outstanding: outstanding)
        case (.leave(let n), .leave(let r)):
            if case .failure(let e) = r { log(.error, "leave failed", ["lockspace": n, "error": "\(e)"]) }
            finishLeave(n, freed: (try? r.get()) != nil, why: "leave write failed")
        case (.checkRequests(let n), .checkRequests(let r)): requestsChecked(n, r)
        case let (.resource(k, .acquire(ticket)), .acquire(r, op)): acquired(k, ticket: ticket, r, op)
        case let (.resource(k, .release(reply)), .release(r)): releasedOnDisk(k, r, reply: reply)
        case let (.resource(k, .convert(rid, c, toShared)), .release(r)): converted(k, rid, c, toShared, r.map { $0 })
        case let (.resource(k, .convert(rid, c, toShared)), .acquire(r, op)):
            let prior = lockspaces[k.lockspace]?.highestMbal[k.name] ?? 0
            lockspaces[k.lockspace]?.highestMbal[k.name] = max(prior, op.highestMbal)
            lockspaces[k.lockspace]?.highestLver[k.name] = op.highestLver
            // A failed convert ballot wrote our block past the SH grant's: what we write there
            // next (the release) must carry that, not the grant's older block.
            if case .failure = r, let written = op.lastWritten, holdings[k] != nil {
                for i in holdings[k]!.indices { holdings[k]![i].grant.dblock = written }
            }
            converted(k, rid, c, toShared, r.map { Optional($0) })
        case let (.resource(k, .request(rid)), .request(r)): requested(k, rid, r)
        default:
            preconditionFailure("operation \(id) finished with the wrong kind of output")
        }
        if case .resource(let k, _) = pending { pump(k) }
        for name in lockspaces.keys.sorted() {
            driveLockspace(name)
            forgetIfIdle(name)
        }
        finishShutdownIfDone()
    }

    mutating func releasedOnDisk(_ k: ResourceKey, _ r: PaxosRelease.Output, reply id: RequestID?) {
        switch r {
        case .success:
            log(.info, "released", ["resource": "\(k)"])
            reply(id, .ok)
        case .failure(let e):
            log(.error, "release failed", ["resource": "\(k)", "error": "\(e)"])
            fail(id, .io, "\(k): release: \(e)")
        }
    }

    mutating func converted(
        _ k: ResourceKey, _ id: RequestID, _ c: ClientRef, _ toShared: Bool, _ r: Result<Grant?, PaxosError>
    ) {
        guard let i = holdings[k]?.firstIndex(where: { $0.client?.id == c.id }) else {
            // The holder let go meanwhile; a new grant (EX after convert) is released.
            if case .success(let g?) = r { work[k, default: []].append(.release(g, reply: nil)) }
            return fail(id, .notOwner, "\(k) was released during the convert")
        }
        switch r {
        case .success(let g):
            if let g { holdings[k]![i].grant = g } else { holdings[k]![i].grant.shared = toShared }
            persist()
            reply(id, .granted(lver: holdings[k]![i].grant.lver))
        case .failure(let e) where toShared:
            // EX → SH failed part way: our RELEASED block and SHARED mode block may be on disk,
            // so others may already hold it shared. We are shared from now on whatever landed
            // (the process stopped exclusive use when it asked); a later EX needs a ballot.
            holdings[k]![i].grant.shared = true
            holdings[k]![i].grant.dblock.flags |= PaxosDblock.flagReleased
            persist()
            log(
                .warning, "convert to shared failed part way; holding as shared", ["resource": "\(k)", "error": "\(e)"])
            reply(id, .granted(lver: holdings[k]![i].grant.lver))
        case .failure(let e):
            // SH → EX failed: the SH holding stands (its mode block was kept, rule 8).
            fail(id, .busy, "\(k): convert: \(e)")
        }
    }

    mutating func requested(_ k: ResourceKey, _ id: RequestID, _ r: PaxosRequest.Output) {
        switch r {
        case .success(.free): reply(id, .ok)
        case .success(.requested(let owner)):
            if let ls = lockspaces[k.lockspace] {
                lockspaces[k.lockspace]!.requestBits[owner] = now.mono + Clock.seconds(ls.timeouts.setBitmapSeconds)
            }
            log(.info, "requested release", ["resource": "\(k)", "owner": "\(owner)"])
            reply(id, .ok)
        case .failure(let e):
            fail(id, .busy, "\(k): request: \(e)")
        }
    }

    // MARK: - Release requests addressed to us

    mutating func checkRequests(_ name: String) {
        let held = holdings.keys.sorted().filter { $0.lockspace == name }.compactMap {
            holdings[$0]!.first?.grant.resource
        }
        guard !held.isEmpty else { return }
        let id = run(
            .checkRequests(name), lockspace: name, lane: .ballot, .checkRequests(RequestCheck(resources: held)))
        lockspaces[name]!.ballotOps.insert(id)
    }

    mutating func requestsChecked(_ name: String, _ r: RequestCheck.Output) {
        guard case .success(let records) = r else { return }
        var changed = false
        for (res, rec) in records {
            let k = ResourceKey(lockspace: res.space, name: res.name)
            guard let hs = holdings[k], let first = hs.first, rec.lver > first.grant.lver else { continue }
            for i in hs.indices where !holdings[k]![i].releaseRequested {
                holdings[k]![i].releaseRequested = true
                changed = true
            }
            log(.notice, "release requested by another host", ["resource": "\(k)", "lver": "\(first.grant.lver)"])
        }
        if changed { persist() }
    }

    // MARK: - The previous incarnation's leases

    /// After the join, each lease the previous incarnation held here is acquired (our new
    /// generation lets us) and then released or kept as an orphan, as configured.
    mutating func recoverPrevious(_ name: String) {
        guard let leases = previous.removeValue(forKey: name) else { return }
        var seen = Set<String>()
        for l in leases where seen.insert(l.resource).inserted {
            let req = AcquireRequest(
                key: l.key, path: l.path, offset: l.offset, shared: l.shared, wait: false, persistent: true)
            var w = Waiter(request: nil, client: nil, req: req, ticket: nextTicket)
            w.recovering = true
            nextTicket += 1
            waiters[l.key, default: []].append(w)
            pump(l.key)
        }
    }

    mutating func recovered(_ k: ResourceKey, _ g: Grant, _ w: Waiter) {
        if config.orphans == .release {
            log(.notice, "previous incarnation's lease released", ["resource": "\(k)", "lver": "\(g.lver)"])
            work[k, default: []].append(.release(g, reply: nil))
        } else {
            holdings[k, default: []].append(
                Holding(key: k, path: w.req.path, offset: w.req.offset, grant: g, client: nil, persistent: true))
            persist()
            log(.notice, "previous incarnation's lease adopted as orphan", ["resource": "\(k)", "lver": "\(g.lver)"])
        }
    }

    // MARK: - The independent fencer

    /// What the fencer process must enforce even if we stop: per lockspace, when our lease
    /// expires (our last renewal + renewal_fail_seconds, boot clock) and who holds leases there.
    func guardEntries() -> [String: GuardEntry] {
        var out: [String: GuardEntry] = [:]
        for (name, ls) in lockspaces {
            var victims: [Victim] = []
            for k in holdings.keys.sorted() where k.lockspace == name {
                for h in holdings[k]! { if let c = h.client, c.pid > 0 { victims.append(h.victim(c)) } }
            }
            for (p, lsName) in stopping where lsName == name {
                victims.append(Victim(pid: p.pid, startTime: p.startTime, lockspace: name, resource: "*"))
            }
            let expiry = ls.lastSuccess.map { $0.boot + Clock.seconds(ls.timeouts.renewalFailSeconds) }
            if !victims.isEmpty {
                out[name] = GuardEntry(expiry: expiry, victims: victims.sorted { $0.pid < $1.pid })
            }
        }
        return out
    }

    mutating func emitGuardIfChanged() {
        let g = guardEntries()
        if g != lastGuard {
            lastGuard = g
            emit(.guardState(g))
        }
    }
}
