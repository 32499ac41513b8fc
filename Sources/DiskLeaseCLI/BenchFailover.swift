import ArgumentParser
import DeltaLease
import DirectIO
import DiskLeaseClient
import DiskPaxos
import Foundation
import LeaseFormat
import LeaseRunner

/// `disklease bench failover`: host 1 takes over RESOURCES leases whose owner (host 2) died and
/// came back with a new generation, as after a host reboot. `--setup` writes that state (the
/// owner's new delta lease; each resource's leader naming generation 1 of host 2 at lver 1,
/// and host 2's committed dblock) so that sanlock can be timed on the same bytes. Without it,
/// the takeover runs in process, all ballots batched into shared submits by `BatchRunner`
/// (or one resource after another with `--one-at-a-time`), then every lease is released.
struct BenchFailover: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Take over N leases of a host that died, batched; print one JSON line (used by Tools/bench.sh).")
    @Option(name: .customShort("s"), help: "LOCKSPACE = name:1:path:offset (host 1 is us)") var lockspace: LockspaceSpec
    @Option(help: "Resources, named r0, r1, … in the areas right after the lockspace.") var resources = 1000
    @Flag(help: "Write the dead owner's state instead of taking over.") var setup = false
    @Flag(help: "One resource after another instead of batched ballots.") var oneAtATime = false
    @Option(help: "live or full.") var mode = "live"
    @OptionGroup var timing: TimeoutOptions

    func run() throws {
        try reporting {
            guard resources >= 1, let readMode = ReadMode(rawValue: mode) else {
                throw CLIFailure("bench failover: --resources ≥ 1, --mode live|full", .usage)
            }
            // Room for every lease's request of a phase in one submit.
            let host = try DirectHost(lockspace, options: timing, queueDepth: max(512, 2 * resources))
            let g = host.layout.geometry
            let device = host.access.device
            guard host.layout.offset + UInt64((resources + 1) * g.alignSize) <= device.sizeBytes else {
                throw CLIFailure(
                    "\(lockspace.path): \(resources) resource areas of \(g.alignSize) bytes after offset "
                        + "\(host.layout.offset) do not fit a device of \(device.sizeBytes) bytes",
                    .usage)
            }
            let res = (0..<resources).map {
                PaxosResource(
                    space: lockspace.name, name: "r\($0)",
                    layout: AreaLayout(offset: host.layout.offset + UInt64(($0 + 1) * g.alignSize), geometry: g))
            }
            if setup { return try writeDeadOwnerState(host, res) }
            try takeOver(host, res, readMode)
        }
    }

    /// Host 2 at generation 2 in the lockspace (host 1's slot left free for whoever joins as
    /// host 1); every resource owned by host 2 generation 1 at lver 1.
    func writeDeadOwnerState(_ host: DirectHost, _ res: [PaxosResource]) throws(CLIFailure) {
        let g = host.layout.geometry, ss = g.sectorSize
        let now = Clock.diskTimestamp(MonotonicClock.now())
        var owner = LeaderRecord.delta(
            space: lockspace.name, geometry: g, ioTimeout: UInt16(host.timeouts.ioTimeoutSeconds))
        owner.ownerID = 2
        owner.ownerGeneration = 2
        owner.timestamp = now
        owner.resourceName = "\(LiveView.nameMarker)bench-rebooted-owner"
        let free = LeaderRecord.delta(
            space: lockspace.name, geometry: g, ioTimeout: UInt16(host.timeouts.ioTimeoutSeconds))
        var writes = [
            SectorWrite(offset: host.layout.deltaOffset(hostID: 1), bytes: free.sector(size: ss)),
            SectorWrite(offset: host.layout.deltaOffset(hostID: 2), bytes: owner.sector(size: ss)),
        ]
        for r in res {
            var l = LeaderRecord.paxos(space: r.space, resource: r.name, geometry: g, numHosts: g.maxHosts)
            l.ownerID = 2
            l.ownerGeneration = 1
            l.lver = 1
            l.timestamp = now
            l.writeID = 2
            l.writeGeneration = 1
            l.writeTimestamp = now
            writes.append(SectorWrite(offset: r.layout.leaderOffset, bytes: l.sector(size: ss)))
            writes.append(
                SectorWrite(offset: r.layout.leaderOffset + UInt64(ss), bytes: [UInt8](repeating: 0, count: ss)))
            var committed = [UInt8](repeating: 0, count: ss)
            var block = PaxosDblock(mbal: 2, bal: 2, inp: 2, inp2: 1, inp3: now, lver: 1)
            block.encode(into: &committed)
            writes.append(SectorWrite(offset: r.layout.dblockOffset(hostID: 2), bytes: committed))
            writes.append(
                SectorWrite(offset: r.layout.dblockOffset(hostID: 1), bytes: [UInt8](repeating: 0, count: ss)))
        }
        do throws(BlockIOError) {
            try device(host).write(writes, timeout: .seconds(60))
        } catch {
            throw CLIFailure(error)
        }
        FileHandleStream.stdout.write("{\"setup\":\(res.count)}\n")
    }

    func device(_ host: DirectHost) -> any SectorDevice { host.access.device }

    /// We are host 1, freshly joined (the join is not what this measures): our delta lease
    /// written, the epoch and the slots read, as a daemon's membership.
    func survivorContext(_ host: DirectHost, _ readMode: ReadMode) throws(CLIFailure) -> BallotContext {
        let g = host.layout.geometry, ss = g.sectorSize
        var me = LeaderRecord.delta(
            space: lockspace.name, geometry: g, ioTimeout: UInt16(host.timeouts.ioTimeoutSeconds))
        me.ownerID = 1
        me.ownerGeneration = 1
        me.timestamp = Clock.diskTimestamp(MonotonicClock.now())
        me.resourceName = "\(LiveView.nameMarker)bench-survivor"
        let area: [UInt8], epoch: [UInt8]
        do throws(BlockIOError) {
            try device(host).write(
                offset: host.layout.deltaOffset(hostID: 1), bytes: me.sector(size: ss), timeout: .seconds(10))
            epoch = try device(host).read(offset: host.layout.epochOffset, length: ss, timeout: .seconds(10))
            area = try device(host).read(
                offset: host.layout.offset, length: host.layout.slotsLength, timeout: .seconds(10))
        } catch {
            throw CLIFailure(error)
        }
        var view = LiveView(ourHostID: 1, timeouts: host.timeouts)
        let t = MonotonicClock.now()
        view.refresh(AreaSnapshot(bytes: area, issuedAt: t, completedAt: t), layout: host.layout, space: lockspace.name)
        let membership = Membership(
            epoch: EpochStamp(sector: epoch), slotBytes: area, layout: host.layout, space: lockspace.name)
        return BallotContext(lockspace: host.layout, membership: membership, view: view, mode: readMode)
    }

    func takeOver(_ host: DirectHost, _ res: [PaxosResource], _ readMode: ReadMode) throws(CLIFailure) {
        let g = host.layout.geometry
        let ctx = try survivorContext(host, readMode)
        var acquires = res.enumerated().map { i, r in
            PaxosAcquire(
                resource: r, host: PaxosHost(hostID: 1, generation: 1), context: ctx,
                options: PaxosAcquire.Options(), seed: UInt64(i))
        }
        let runner = host.runner
        let c0 = device(host).counters
        let t0 = MonotonicClock.now()
        let outcomes: [PaxosAcquire.Output]
        if oneAtATime {
            outcomes = acquires.indices.map { runner.run(acquires[$0]) }
        } else {
            outcomes = BatchRunner(runner).run(&acquires)
        }
        let t1 = MonotonicClock.now()
        let c1 = device(host).counters
        var grants: [Grant] = []
        for (i, o) in outcomes.enumerated() {
            switch o {
            case .success(let grant) where grant.lver == 2 && grant.leader.ownerID == 1:
                grants.append(grant)
            case .success(let grant):
                throw CLIFailure(
                    "bench failover: \(res[i].name) granted at lver \(grant.lver) to \(grant.leader.ownerID), "
                        + "expected lver 2 to host 1",
                    .busy)
            case .failure(let e):
                throw CLIFailure("bench failover: \(res[i].name): \(e)", e.exitStatus)
            }
        }
        var releases = grants.map { PaxosRelease(grant: $0) }
        let released = oneAtATime ? releases.map { runner.run($0) } : BatchRunner(runner).run(&releases)
        let t2 = MonotonicClock.now()
        let c2 = device(host).counters
        for (i, r) in released.enumerated() {
            if case .failure(let e) = r {
                throw CLIFailure("bench failover: release \(res[i].name): \(e)", e.exitStatus)
            }
        }
        let acq = c1.minus(c0), rel = c2.minus(c1)
        FileHandleStream.stdout.write(
            """
            {"resources":\(res.count),"mode":"\(mode)","batched":\(!oneAtATime),"geometry":"\(g)",\
            "acquire_ms":\(Double(t1 - t0) / 1e6),"release_ms":\(Double(t2 - t1) / 1e6),\
            "acquire_bytes_read":\(acq.bytesRead),"acquire_bytes_written":\(acq.bytesWritten),\
            "acquire_submits":\(acq.submits),\
            "release_bytes_read":\(rel.bytesRead),"release_bytes_written":\(rel.bytesWritten),\
            "release_submits":\(rel.submits)}

            """)
    }
}
