import DeltaLease
import DirectIO
import DiskPaxos
import LeaseFormat
import LeaseRunner

/// A lockspace at 0 and resources after it on one in-memory device, with a fake clock that
/// sleeps by jumping forward, so protocol runs are instant and exact.
final class ProtocolFixture: @unchecked Sendable {
    let geometry: Geometry
    let device: MemoryDevice
    let lockspace: AreaLayout
    let timeouts: Timeouts
    var clock: Nanos = Clock.seconds(1000)

    init(
        geometry: Geometry = .g512_1M, resources: Int = 1, numHosts: Int? = nil,
        timeouts: Timeouts = Timeouts(ioTimeoutSeconds: 1, watchdogFireSeconds: 10)
    ) {
        self.geometry = geometry
        self.timeouts = timeouts
        device = MemoryDevice(size: (1 + resources) * geometry.alignSize, alignment: geometry.sectorSize)
        lockspace = AreaLayout(offset: 0, geometry: geometry)
        device.load(
            try! InitImage.lockspace(space: "LS", geometry: geometry, ioTimeout: UInt16(timeouts.ioTimeoutSeconds))
                .final, at: 0)
        for r in 0..<resources {
            let image = try! InitImage.resource(
                space: "LS", resource: "r\(r)", geometry: geometry, numHosts: numHosts ?? geometry.maxHosts)
            device.load(image.final, at: (1 + r) * geometry.alignSize)
        }
    }

    func resource(_ r: Int = 0) -> PaxosResource {
        PaxosResource(
            space: "LS", name: "r\(r)",
            layout: AreaLayout(offset: UInt64((1 + r) * geometry.alignSize), geometry: geometry))
    }

    var runner: Runner {
        Runner(
            device: device, ioTimeout: .seconds(1), now: { [unowned self] in self.clock },
            sleep: { [unowned self] t in self.clock = max(self.clock, t) })
    }

    /// Writes live delta leases for `hosts` directly (as if they had joined), and returns a
    /// view in which they are LIVE (two observations with a change between them).
    func liveView(for us: Int, hosts: [Int]) -> LiveView {
        var view = LiveView(ourHostID: us, timeouts: timeouts)
        for round in 0..<2 {
            for h in hosts {
                var r = LeaderRecord.delta(
                    space: "LS", geometry: geometry, ioTimeout: UInt16(timeouts.ioTimeoutSeconds))
                r.ownerID = UInt64(h)
                r.ownerGeneration = 1
                r.resourceName = "dl:host\(h)"
                r.timestamp = UInt64(clock / Clock.nanosPerSecond) + UInt64(round)
                device.load(r.sector(size: geometry.sectorSize), at: (h - 1) * geometry.sectorSize)
                view.observe(hostID: h, record: r, damaged: false, now: clock + Clock.seconds(round))
            }
        }
        clock += Clock.seconds(1)
        return view
    }

    /// The membership as the slots and the epoch on the device are now.
    func membership() -> Membership {
        let epoch = EpochStamp(sector: device.contents(at: Int(lockspace.epochOffset), length: geometry.sectorSize))
        return Membership(
            epoch: epoch, slotBytes: device.contents(at: 0, length: lockspace.slotsLength), layout: lockspace,
            space: "LS")
    }

    func context(for us: Int, hosts: [Int], mode: ReadMode) -> BallotContext {
        let view = liveView(for: us, hosts: hosts)
        return BallotContext(lockspace: lockspace, membership: membership(), view: view, mode: mode)
    }
}
