import DeltaLease
import DirectIO
import DiskLeaseClient
import DiskPaxos
import Foundation
import LeaseFormat
import LeaseRunner

/// Where a lockspace lives and which host id we take in it.
/// Opens a device and reads the geometry an area at `offset` declares, with errors that name
/// the path and offset.
func probeArea(path: String, offset: UInt64, faultFile: String?) throws(WireError) -> (FaultGate, Geometry) {
    let device: FileDevice
    do {
        device = try FileDevice(path: path)
    } catch {
        throw WireError(.io, error.description)
    }
    let unit = UInt64(device.alignment)
    guard offset % unit == 0, offset < device.sizeBytes else {
        throw WireError(.badRequest, "\(path): offset \(offset) is not a multiple of \(unit) inside the device (\(device.sizeBytes) bytes)")
    }
    let length = Int(min(4096, device.sizeBytes - offset)) / Int(unit) * Int(unit)
    let start: [UInt8]
    do {
        start = try device.read(offset: offset, length: length, timeout: .seconds(10))
    } catch {
        throw WireError(.io, error.description)
    }
    let g: Geometry
    do {
        g = try LeaderRecord(decoding: start).geometry(deviceOffset: offset)
    } catch {
        throw WireError(.corrupt, "\(path): \(error)")
    }
    guard g.sectorSize >= device.alignment, offset + UInt64(g.alignSize) <= device.sizeBytes else {
        throw WireError(.corrupt, "\(path): offset \(offset): a \(g) area does not fit a device of \(device.sizeBytes) bytes with \(device.alignment)-byte sectors")
    }
    return (FaultGate(device, controlFile: faultFile), g)
}

/// One joined (or joining) lockspace: our delta lease, its renewal thread, our live view of the
/// other hosts, and the device handle ballots use.
///
/// Guarantees: renewals run on their own device handle and thread, so a slow ballot never
/// delays one; after the lockspace fails (renewals failing for renewal_fail_seconds) no I/O
/// of any kind is issued through it again. Mutable state is guarded by the daemon's lock.
final class Lockspace: @unchecked Sendable {
    enum State: String { case joining, joined, failed, leaving, left }

    let spec: LockspaceSpec
    let layout: AreaLayout
    let timeouts: Timeouts
    let mode: ReadMode
    let hostName: String
    let renewalRunner: Runner
    /// Ballots, releases, requests and view refreshes. Its device coalesces the I/O of
    /// concurrent operations, so ballots on many resources share submits.
    let ballotRunner: Runner
    private let resourceLocksGuard = NSLock()
    private var resourceLocks: [String: NSLock] = [:]

    // Guarded by the daemon's lock.
    var state = State.joining
    var detail = "starting"
    var generation: UInt64 = 0
    var record: LeaderRecord? = nil
    var joinedAt: Nanos = 0
    var lastSuccess: Nanos = 0
    var view: LiveView
    var renewals = 0
    var stopRequested = false
    /// Hosts we asked to release something, and until when their bit stays set.
    var requestBits: [Int: Nanos] = [:]
    /// Per resource: blocks shown stale (rule 2) and the highest mbal we wrote.
    var verifiedStale: [String: [Int: HostIncarnation]] = [:]
    var highestMbal: [String: UInt64] = [:]
    /// Hosts whose bitmap names us, from the last renewal read.
    var notifiedBy: Set<Int> = []

    init(spec: LockspaceSpec, config: DaemonConfig, hostName: String) throws(WireError) {
        let (renewalDevice, g) = try probeArea(path: spec.path, offset: spec.offset, faultFile: config.faultFile)
        // A second handle for ballots; the area was checked through the first.
        let ballotDevice: FaultGate
        do {
            ballotDevice = FaultGate(try FileDevice(path: spec.path), controlFile: config.faultFile)
        } catch {
            throw WireError(.io, error.description)
        }
        guard spec.hostID <= g.maxHosts else {
            throw WireError(.badRequest, "\(spec.path): host_id \(spec.hostID) is above max_hosts \(g.maxHosts)")
        }
        self.spec = spec
        layout = AreaLayout(offset: spec.offset, geometry: g)
        guard config.ioTimeout >= 1, config.ioTimeout <= 255, config.viewMaxAge ?? 1 < config.watchdogFireSeconds else {
            throw WireError(.badRequest, "io_timeout must be 1...255 and view_max_age below the watchdog timeout")
        }
        timeouts = Timeouts(ioTimeoutSeconds: config.ioTimeout, watchdogFireSeconds: config.watchdogFireSeconds,
                            viewMaxAgeSeconds: config.viewMaxAge, ballotMaxDurationSeconds: config.ballotMax)
        mode = ReadMode(rawValue: config.readMode) ?? .live
        self.hostName = hostName
        renewalRunner = Runner(device: renewalDevice, ioTimeout: timeouts.ioTimeout)
        ballotRunner = Runner(device: CoalescingDevice(ballotDevice), ioTimeout: timeouts.ioTimeout)
        view = LiveView(ourHostID: spec.hostID, timeouts: timeouts)
    }

    var name: String { spec.name }

    /// Runs `body` as the only disk operation on resource `name` in this lockspace: a
    /// release's write is on disk before the next acquire of it reads, while operations on
    /// different resources run side by side.
    func exclusively<T>(on name: String, _ body: () -> T) -> T {
        resourceLocksGuard.lock()
        let l = resourceLocks[name] ?? NSLock()
        resourceLocks[name] = l
        resourceLocksGuard.unlock()
        l.lock()
        defer { l.unlock() }
        return body()
    }

    func info(now: Nanos) -> LockspaceInfo {
        LockspaceInfo(name: spec.name, hostId: spec.hostID, path: spec.path, offset: spec.offset, state: state.rawValue,
                      detail: detail, generation: generation, ioTimeout: timeouts.ioTimeoutSeconds,
                      renewalAgeSeconds: state == .joined ? Double(now - lastSuccess) / 1e9 : 0,
                      readMode: view.requiresFullReads() || mode == .full ? "full" : "live")
    }

    func hosts(now: Nanos) -> [HostInfo] {
        view.hosts.keys.sorted().map { h in
            let o = view.hosts[h]!
            return HostInfo(hostId: h, state: view.state(of: h, now: now).rawValue, generation: o.generation,
                            timestamp: o.timestamp, name: o.name)
        }
    }

    /// The bitmap our next renewal writes: bits of hosts we asked to release, for as long as
    /// sanlock keeps them (set_bitmap_seconds = 6·io_timeout... we keep 2 renewals' worth more).
    func bitmap(now: Nanos) -> HostBitmap {
        var b = HostBitmap()
        for (h, until) in requestBits where until > now { b.insert(hostID: h) }
        return b
    }
}
