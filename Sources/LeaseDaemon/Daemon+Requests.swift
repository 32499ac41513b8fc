import DeltaLease
import DiskLeaseClient
import DiskPaxos
import Foundation
import HostCore
import LeaseFormat

/// Who sent a request: the connection (registration) and its peer credentials.
public struct ClientIdentity: Sendable {
    public var id: UInt64
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// The pid's start time (0 if it could not be read), so a reused pid is never mistaken
    /// for this process.
    public var startTime: UInt64

    var ref: ClientRef { ClientRef(id: id, pid: pid, startTime: startTime) }
}

extension Daemon {
    /// Answers one request. Never throws: every failure is a response.
    public func handle(_ q: Request, from c: ClientIdentity) -> Response {
        var r: Response
        do {
            r = try dispatch(q, from: c)
            r.id = q.id
        } catch {
            metrics.requestFailed(q.op, error.code)
            r = .failure(error, id: q.id)
        }
        return c.uid == 0 ? r : Self.redacted(r)
    }

    /// What a non-root client is told: errors and lockspace details without the bytes that
    /// records on the device were found to hold (its path may name any file root can read).
    static func redacted(_ r: Response) -> Response {
        var r = r
        if let m = r.error?.message { r.error?.message = FormatError.redacted(m) }
        r.lockspaces = r.lockspaces?.map { l in
            var l = l
            l.detail = FormatError.redacted(l.detail)
            return l
        }
        return r
    }

    /// Root may name any device; other uids only what `allow-path` lists (the path itself or
    /// anything under a listed directory, after resolving symlinks and `..`), so an allowed uid
    /// cannot make the root daemon open, say, /etc/shadow read-write.
    func checkPath(_ path: String, for c: ClientIdentity) throws(WireError) {
        guard c.uid != 0 else { return }
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        let allowed = config.allowPaths.contains { prefix in
            let p = URL(fileURLWithPath: prefix).resolvingSymlinksInPath().standardizedFileURL.path
            return resolved == p || resolved.hasPrefix(p.hasSuffix("/") ? p : p + "/")
        }
        guard allowed else {
            throw WireError(.permission, "uid \(c.uid) may not use \(path): not under an allow-path of this daemon")
        }
    }

    func dispatch(_ q: Request, from c: ClientIdentity) throws(WireError) -> Response {
        guard q.v == Wire.version else {
            throw WireError(
                .unsupportedVersion, "protocol version \(q.v) is not supported (this daemon speaks \(Wire.version))")
        }
        var ok = Response(ok: true)
        switch q.op {
        case .register:
            ok.pid = c.pid
        case .addLockspace:
            let spec = LockspaceSpec(
                name: try need(q.lockspace, "lockspace"), hostID: try need(q.hostId, "host_id"),
                path: try need(q.path, "path"), offset: q.offset ?? 0)
            guard spec.hostID >= 1 else { throw WireError(.badRequest, "host_id must be 1 or more") }
            try checkPath(spec.path, for: c)
            try expect(addLockspace(spec, wait: q.wait ?? false))
            ok.lockspaces = query { core, now in
                core.lockspaceStatus(now: now).filter { $0.name == spec.name }.map(\.wire)
            }
        case .remLockspace:
            let name = try need(q.lockspace, "lockspace")
            try expect(call { .remLockspace(name, reply: $0) })
        case .acquire:
            ok.lver = try acquire(q, from: c)
        case .release:
            let k = try key(q)
            if let pid = q.pid, pid != c.pid {
                guard c.uid == 0 else { throw WireError(.permission, "only root may release another process's lease") }
                try expect(call { .releaseFor($0, pid: pid, k) })
            } else {
                try expect(call { .release($0, c.ref, k) })
            }
        case .convert:
            let k = try key(q)
            let toShared = try need(q.shared, "shared")
            ok.lver = try granted(call { .convert($0, c.ref, k, toShared: toShared) })
        case .request:
            let k = try key(q)
            let res = try resource(k, path: try need(q.path, "path"), offset: try need(q.offset, "offset"))
            try expect(call { .requestRelease($0, res, lver: q.lver) })
        case .inquire:
            let pid = q.pid ?? c.pid
            if pid != c.pid && c.uid != 0 { throw WireError(.permission, "only root may inquire about another pid") }
            ok.leases = query { core, _ in core.leases(pid: pid).map(\.wire) }
        case .version:
            ok.version = DiskLeaseVersion.string
            ok.capabilities = DiskLeaseVersion.capabilities
        case .status:
            ok.lockspaces = query { core, now in core.lockspaceStatus(now: now).map(\.wire) }
            ok.leases = query { core, _ in core.leases().map(\.wire) }
        case .hostStatus:
            let name = try need(q.lockspace, "lockspace")
            guard let hosts = query({ core, now in core.hostStatus(name, now: now) }) else {
                throw WireError(.noLockspace, "no lockspace \(name)")
            }
            ok.hosts = hosts.map {
                HostInfo(
                    hostId: $0.hostID, state: $0.state.rawValue, generation: $0.generation,
                    timestamp: $0.timestamp, name: $0.name)
            }
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

    func expect(_ r: HostReply?) throws(WireError) {
        switch r {
        case .ok?, .granted?: return
        case .failed(let f)?: throw WireError(f)
        case nil: throw WireError(.timeout, "no answer from the daemon in time")
        }
    }

    func granted(_ r: HostReply?) throws(WireError) -> UInt64 {
        switch r {
        case .granted(let lver)?: return lver
        case .ok?: throw WireError(.internalError, "no lver in the answer")
        case .failed(let f)?: throw WireError(f)
        case nil: throw WireError(.timeout, "no answer from the daemon in time")
        }
    }

    /// The connection closed: the process is gone (or let go of everything).
    public func connectionOpened(_ c: ClientIdentity) {
        openConnections.withLock { $0[c.ref.process, default: 0] += 1 }
    }

    public func clientGone(_ c: ClientIdentity) {
        openConnections.withLock { open in
            open[c.ref.process, default: 1] -= 1
            if open[c.ref.process] == 0 { open[c.ref.process] = nil }
        }
        submit(.clientGone(c.ref))
    }

    // MARK: - Acquire

    func acquire(_ q: Request, from c: ClientIdentity) throws(WireError) -> UInt64 {
        let k = try key(q)
        let path = try need(q.path, "path")
        let offset = try need(q.offset, "offset")
        _ = try resource(k, path: path, offset: offset)
        if let t = q.timeoutMs, t < 0 || t > 86_400_000 {
            throw WireError(.badRequest, "timeout_ms must be 0...86400000")
        }
        let deadline = q.timeoutMs.map { HostClocks.mono() + Nanos($0) * 1_000_000 }
        let req = AcquireRequest(
            key: k, path: path, offset: offset, shared: q.shared ?? false, wait: q.wait ?? true,
            deadline: deadline, requiredLver: q.lver, persistent: q.persistent ?? false)
        let r = call { .acquire($0, c.ref, req) }
        if case .failed(let f)? = r, f.code == .io, f.message.hasPrefix("the lease state could not be saved") {
            // Granted on disk but not recorded: let it go rather than hold a lease a restart
            // would not know about.
            _ = call { .release($0, c.ref, k) }
        }
        return try granted(r)
    }

    /// The resource's area, checked against the lockspace's device and its declared geometry.
    func resource(_ k: ResourceKey, path: String, offset: UInt64) throws(WireError) -> PaxosResource {
        guard let setup = query({ core, _ in core.lockspaceSetup(k.lockspace) }) else {
            throw WireError(.noLockspace, "no lockspace \(k.lockspace) (add_lockspace first)")
        }
        guard path == setup.path else {
            throw WireError(
                .badRequest, "\(k): resource areas must be on the lockspace's device \(setup.path), not \(path)")
        }
        let g = setup.layout.geometry
        let size = state.withLock { $0.devices[k.lockspace]?.ballot.device.sizeBytes } ?? 0
        let (end, overflow) = offset.addingReportingOverflow(UInt64(g.alignSize))
        guard offset % UInt64(g.alignSize) == 0, offset != setup.offset, !overflow, end <= size else {
            throw WireError(
                .badRequest,
                "\(path): offset \(offset) is not a \(g.alignSize)-aligned resource area inside the device, apart "
                    + "from the lockspace"
            )
        }
        return PaxosResource(space: k.lockspace, name: k.name, layout: AreaLayout(offset: offset, geometry: g))
    }

    // MARK: - Lockspaces

    /// Opens the lockspace's devices and asks the core to join; with `wait`, answers once
    /// joined. Concurrent calls for one name are serialized, so there is never a hidden twin.
    func addLockspace(_ spec: LockspaceSpec, wait: Bool) -> HostReply {
        _ = state.wait { !$0.adding.contains(spec.name) }
        let first = state.withLock { s -> Bool in s.adding.insert(spec.name).inserted }
        guard first else { return addLockspace(spec, wait: wait) }
        defer {
            state.withLock { _ = $0.adding.remove(spec.name) }
            state.broadcast()
        }
        if let existing = query({ core, _ in core.lockspaceSetup(spec.name) }) {
            guard existing.hostID == spec.hostID, existing.path == spec.path, existing.offset == spec.offset else {
                return .failed(
                    HostFailure(
                        .exists,
                        "lockspace \(spec.name) is already joined as host_id \(existing.hostID) on \(existing.path)"))
            }
            return call { .addLockspace(existing, reply: $0, waitJoined: wait) }
                ?? .failed(HostFailure(.timeout, "no answer"))
        }
        let opened: (LockspaceSetup, LockspaceDevices)
        do {
            opened = try LockspaceDevices.open(spec, config: config, hostName: hostName)
        } catch {
            return .failed(HostFailure(HostFailure.Code(rawValue: error.code.rawValue) ?? .io, error.message))
        }
        state.withLock { $0.devices[spec.name] = opened.1 }
        return call { .addLockspace(opened.0, reply: $0, waitJoined: wait) }
            ?? .failed(HostFailure(.timeout, "no answer"))
    }
}

extension WireError {
    init(_ f: HostFailure) {
        self.init(ErrorCode(rawValue: f.code.rawValue) ?? .internalError, f.message)
    }
}

extension PersistedLease {
    var wire: LeaseInfo {
        LeaseInfo(
            lockspace: lockspace, resource: resource, path: path, offset: offset, lver: lver, shared: shared, pid: pid,
            persistent: persistent, orphan: orphan, releaseRequested: releaseRequested)
    }
}

extension LockspaceStatus {
    var wire: LockspaceInfo {
        LockspaceInfo(
            name: name, hostId: hostID, path: path, offset: offset, state: state, detail: detail,
            generation: generation,
            ioTimeout: ioTimeout, renewalAgeSeconds: renewalAgeSeconds, readMode: readMode)
    }
}
