import DeltaLease
import DirectIO
import DiskLeaseClient
import DiskPaxos
import HostCore
import LeaseFormat
import LeaseRunner

/// The two device handles of a joined lockspace: renewals never queue behind ballots.
/// Ballots, releases and requests share one handle whose I/O is coalesced across threads.
final class LockspaceDevices: Sendable {
    let renewal: Runner
    let ballot: Runner

    init(renewal: Runner, ballot: Runner) {
        self.renewal = renewal
        self.ballot = ballot
    }

    func runner(_ lane: Lane) -> Runner { lane == .renewal ? renewal : ballot }

    /// Opens `spec`'s device, checks that a lockspace area is at its offset, and returns the
    /// setup the host core needs plus the devices. Errors name the path and offset and never
    /// echo the device's bytes.
    static func open(
        _ spec: LockspaceSpec, config: DaemonConfig, hostName: String
    ) throws(WireError)
        -> (LockspaceSetup, LockspaceDevices)
    {
        let (first, g) = try probeArea(path: spec.path, offset: spec.offset, faultFile: config.faultFile)
        guard spec.hostID >= 1, spec.hostID <= g.maxHosts else {
            throw WireError(.badRequest, "\(spec.path): host_id \(spec.hostID) is outside 1...\(g.maxHosts)")
        }
        let second: FaultGate
        do {
            second = FaultGate(try FileDevice(path: spec.path), controlFile: config.faultFile)
        } catch {
            throw WireError(.io, error.description)
        }
        let timeouts = Timeouts(ioTimeoutSeconds: config.ioTimeout, watchdogFireSeconds: config.watchdogFireSeconds)
        let setup = LockspaceSetup(
            name: spec.name, hostID: spec.hostID, path: spec.path, offset: spec.offset,
            layout: AreaLayout(offset: spec.offset, geometry: g), timeouts: timeouts,
            mode: ReadMode(rawValue: config.readMode) ?? .live, hostName: hostName)
        let devices = LockspaceDevices(
            renewal: Runner(device: first, ioTimeout: timeouts.ioTimeout, now: HostClocks.mono),
            ballot: Runner(device: CoalescingDevice(second), ioTimeout: timeouts.ioTimeout, now: HostClocks.mono))
        return (setup, devices)
    }
}

/// Opens a device and reads the geometry an area at `offset` declares.
func probeArea(path: String, offset: UInt64, faultFile: String?) throws(WireError) -> (FaultGate, Geometry) {
    let device: FileDevice
    do {
        device = try FileDevice(path: path)
    } catch {
        throw WireError(.io, error.description)
    }
    let unit = UInt64(device.alignment)
    guard offset % unit == 0, offset < device.sizeBytes else {
        throw WireError(
            .badRequest,
            "\(path): offset \(offset) is not a multiple of \(unit) inside the device (\(device.sizeBytes) bytes)")
    }
    let length = Int(min(4096, device.sizeBytes - offset)) / Int(unit) * Int(unit)
    let start: [UInt8]
    do {
        start = try device.read(offset: offset, length: length, timeout: .seconds(10))
    } catch {
        throw WireError(.io, error.description)
    }
    // The error never echoes the device's bytes: a client may name any file.
    let head = LeaderRecord(decoding: start)
    guard head.magic == LeaderRecord.deltaMagic, let g = try? head.geometry(deviceOffset: offset) else {
        throw WireError(.corrupt, "\(path): offset \(offset): no lockspace area here (no valid delta lease record)")
    }
    let (end, overflow) = offset.addingReportingOverflow(UInt64(g.alignSize))
    guard g.sectorSize >= device.alignment, !overflow, end <= device.sizeBytes else {
        throw WireError(
            .corrupt,
            "\(path): offset \(offset): a \(g) area does not fit a device of \(device.sizeBytes) bytes with "
                + "\(device.alignment)-byte sectors"
        )
    }
    return (FaultGate(device, controlFile: faultFile), g)
}

/// Runs one host-core operation to completion on a runner (`drain` reaps the lockspace's
/// timed-out I/O on both handles instead).
func perform(_ op: HostOperation, on devices: LockspaceDevices, lane: Lane) -> (HostOutput, IOTrace) {
    if case .drain(let timeout) = op {
        let d = Duration.nanoseconds(timeout)
        let left = devices.renewal.device.reapParked(timeout: d) + devices.ballot.device.reapParked(timeout: d)
        return (.drained(outstanding: left), IOTrace())
    }
    let runner = devices.runner(lane)
    var op = op
    var trace = IOTrace()
    var progress = op.advance(nil, now: runner.now())
    while true {
        switch progress {
        case .finished(let out): return (out, trace)
        case .perform(let action):
            trace.actions.append(action)
            let result = runner.perform(action)
            progress = op.advance(result, now: runner.now())
        }
    }
}
