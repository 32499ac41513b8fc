import DeltaLease
import DirectIO
import DiskPaxos
import HostCore
import LeaseFormat

/// A shared disk and hand-driven operations: a test schedules, action by action and even range
/// by range, how the real protocol operations of several hosts interleave (the schedules the
/// spin model's counterexamples describe), so a broken rule is shown breaking agreement on
/// the very code diskleased runs.
final class InterleavedDisk {
    var bytes: [UInt8]
    let geometry: Geometry
    let lockspace: AreaLayout

    init(resources: Int = 1, geometry: Geometry = .g512_1M, numHosts: Int = 64) {
        self.geometry = geometry
        bytes = [UInt8](repeating: 0, count: (1 + resources) * geometry.alignSize)
        lockspace = AreaLayout(offset: 0, geometry: geometry)
        land(0, try! InitImage.lockspace(space: "LS", geometry: geometry, ioTimeout: 1).final)
        for r in 0..<resources {
            land(
                UInt64((1 + r) * geometry.alignSize),
                try! InitImage.resource(space: "LS", resource: "r\(r)", geometry: geometry, numHosts: numHosts).final)
        }
    }

    func resource(_ r: Int = 0) -> PaxosResource {
        PaxosResource(
            space: "LS", name: "r\(r)",
            layout: AreaLayout(offset: UInt64((1 + r) * geometry.alignSize), geometry: geometry))
    }

    func read(_ r: IORange) -> [UInt8] { Array(bytes[Int(r.offset)..<Int(r.end)]) }
    func land(_ offset: UInt64, _ b: [UInt8]) { bytes.replaceSubrange(Int(offset)..<Int(offset) + b.count, with: b) }

    var epoch: EpochStamp {
        EpochStamp(sector: read(IORange(offset: lockspace.epochOffset, length: geometry.sectorSize)))
    }

    /// Writes host `h`'s delta lease as joined (present), outside any operation.
    func placeMember(_ h: Int, generation: UInt64 = 1, timestamp: UInt64 = 100) {
        var r = LeaderRecord.delta(space: "LS", geometry: geometry, ioTimeout: 1)
        r.ownerID = UInt64(h)
        r.ownerGeneration = generation
        r.timestamp = timestamp
        r.resourceName = "dl:h\(h)"
        land(lockspace.deltaOffset(hostID: h), r.sector(size: geometry.sectorSize))
    }

    /// The membership as the disk holds it now (epoch, then slots).
    func membership() -> Membership {
        Membership(
            epoch: epoch, slotBytes: read(IORange(offset: 0, length: lockspace.slotsLength)), layout: lockspace,
            space: "LS")
    }

    /// A view in which `hosts` are LIVE for `us`.
    func liveView(us: Int, hosts: [Int]) -> LiveView {
        var v = LiveView(ourHostID: us, timeouts: Timeouts(ioTimeoutSeconds: 1, watchdogFireSeconds: 4))
        for h in hosts {
            var r = LeaderRecord.delta(space: "LS", geometry: geometry, ioTimeout: 1)
            r.ownerID = UInt64(h); r.ownerGeneration = 1; r.resourceName = "dl:h\(h)"
            r.timestamp = 100
            v.observe(hostID: h, record: r, damaged: false, now: Clock.seconds(100))
            r.timestamp = 101
            v.observe(hostID: h, record: r, damaged: false, now: Clock.seconds(101))
        }
        return v
    }
}

/// One operation, stepped by hand: its pending action is carried out when the test says, a
/// read range by range if it wants, a write sector by sector.
final class Driven {
    var op: HostOperation
    let disk: InterleavedDisk
    private(set) var pending: IOAction? = nil
    private(set) var output: HostOutput? = nil
    private var readParts: [Int: [UInt8]] = [:]
    /// Writes completed so far.
    private(set) var writes = 0
    var now: Nanos = Clock.seconds(200)

    init(_ op: HostOperation, on disk: InterleavedDisk) {
        self.op = op
        self.disk = disk
        take(self.op.advance(nil, now: now))
    }

    private func take(_ p: OperationProgress) {
        switch p {
        case .perform(.sleep):
            // Sleeps pass at once: the schedule is about order, not time.
            take(op.advance(.slept, now: now))
        case .perform(let a):
            pending = a
            readParts = [:]
        case .finished(let o):
            pending = nil
            output = o
        }
    }

    var isRead: Bool { if case .read? = pending { true } else { false } }
    var isWrite: Bool { if case .write? = pending { true } else { false } }
    var done: Bool { output != nil }

    /// Samples some ranges of the pending read now (all when `ranges` is nil); the read
    /// completes once every range has been sampled.
    func read(_ ranges: [Int]? = nil) {
        guard case .read(let all)? = pending else { preconditionFailure("no read pending") }
        for i in ranges ?? Array(all.indices) where readParts[i] == nil { readParts[i] = disk.read(all[i]) }
        if readParts.count == all.count { take(op.advance(.read(all.indices.map { readParts[$0]! }), now: now)) }
    }

    /// Lands some sectors of the pending write (all when nil) without completing it.
    func land(_ writes: [Int]? = nil) {
        guard case .write(let all)? = pending else { preconditionFailure("no write pending") }
        for i in writes ?? Array(all.indices) { disk.land(all[i].offset, all[i].bytes) }
    }

    /// Lands the pending write and completes it.
    func write() {
        land()
        writes += 1
        take(op.advance(.written, now: now))
    }

    /// Runs until the operation is about to issue its `n`th write (or finishes).
    func run(toWrite n: Int) { run(until: { $0.isWrite && $0.writes == n - 1 }) }

    /// The pending action fails (a timeout); whatever was landed stays landed.
    func fail() {
        take(op.advance(.failed(.timeout(path: "test", offset: 0, inFlight: 1, timeoutMilliseconds: 1000)), now: now))
    }

    /// Carries out actions until the operation finishes or `stop` says wait.
    func run(until stop: (Driven) -> Bool = { _ in false }) {
        while !done && !stop(self) {
            if isRead { read() } else { write() }
        }
    }

    /// The value this acquire has decided (issued its commit for), if any.
    var decided: (lver: UInt64, ownerID: UInt64)? {
        guard case .acquire(let a) = op, let d = a.decided else { return nil }
        return (d.lver, d.ownerID)
    }

    /// The pending write's leader sector, if the pending action is a commit.
    var commitPending: Bool {
        guard case .write(let w)? = pending else { return false }
        return w.contains { $0.offset % UInt64(disk.geometry.alignSize) == 0 && $0.offset > 0 }
    }
}
