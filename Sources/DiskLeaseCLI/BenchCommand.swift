import ArgumentParser
import DeltaLease
import DirectIO
import DiskLeaseClient
import DiskPaxos
import Foundation
import LeaseFormat
import LeaseRunner

/// `disklease bench acquire`: acquire+release of one resource, in process, on a real device,
/// with N live hosts in the lockspace (hosts 2...N get delta leases written for them and are
/// seen renewing). Prints exact bytes and submits from the device's counters, and latency.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure acquire+release on a real device (used by Tools/bench.sh).",
        subcommands: [BenchAcquire.self, BenchFailover.self, BenchPlot.self])
}

struct BenchAcquire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acquire",
        abstract: "Acquire and release RESOURCE RUNS times as host 1 with N live hosts; print one JSON line.")
    @Option(name: .customShort("s"), help: "LOCKSPACE = name:1:path:offset (host 1 is us)") var lockspace: LockspaceSpec
    @Option(name: .customShort("r"), help: "RESOURCE = lockspace:name:path:offset") var resource: ResourceSpec
    @Option(help: "Live hosts, us included (their ids are 1...N, lowest first as handed out).") var liveHosts = 4
    @Option(help: "live or full.") var mode = "live"
    @Option(help: "Acquire+release cycles.") var runs = 20
    @OptionGroup var timing: TimeoutOptions

    func run() throws {
        try reporting {
            guard let readMode = ReadMode(rawValue: mode), liveHosts >= 1, runs >= 1 else {
                throw CLIFailure("bench: --mode live|full, --live-hosts ≥ 1, --runs ≥ 1", .usage)
            }
            let host = try DirectHost(lockspace, options: timing)
            guard liveHosts <= host.layout.geometry.maxHosts else {
                throw CLIFailure(
                    "bench: --live-hosts \(liveHosts) is above max_hosts \(host.layout.geometry.maxHosts)", .usage)
            }
            let res = try host.resource(resource)
            let device = host.access.device
            let runner = host.runner
            let (view, membership) = try seedLiveHosts(host)
            var acquireLatency: [Double] = [], releaseLatency: [Double] = []
            var acq = IOCounters(), rel = IOCounters()
            var lvers: [UInt64] = []
            var mbal: UInt64 = 0
            for _ in 0..<runs {
                let ctx = BallotContext(lockspace: host.layout, membership: membership, view: view, mode: readMode)
                var o = PaxosAcquire.Options()
                o.minimumMbal = mbal
                var op = PaxosAcquire(
                    resource: res, host: PaxosHost(hostID: 1, generation: 1), context: ctx,
                    options: o, seed: UInt64(lvers.count))
                var trace = IOTrace()
                let c0 = device.counters
                let t0 = MonotonicClock.now()
                let result = runner.run(&op, trace: &trace)
                let t1 = MonotonicClock.now()
                mbal = max(mbal, op.highestMbal)
                let grant: Grant
                switch result {
                case .success(let g): grant = g
                case .failure(let e): throw CLIFailure("bench: acquire: \(e)", e.exitStatus)
                }
                let c1 = device.counters
                if case .failure(let e) = runner.run(PaxosRelease(grant: grant)) {
                    throw CLIFailure("bench: release: \(e)", e.exitStatus)
                }
                let t2 = MonotonicClock.now()
                let c2 = device.counters
                acquireLatency.append(Double(t1 - t0) / 1e3)
                releaseLatency.append(Double(t2 - t1) / 1e3)
                acq = c1.minus(c0)
                rel = c2.minus(c1)
                lvers.append(grant.lver)
            }
            func stats(_ v: [Double]) -> String {
                let s = v.sorted()
                return "{\"median\":\(s[s.count / 2]),\"min\":\(s.first!),\"max\":\(s.last!)}"
            }
            FileHandleStream.stdout.write(
                """
                {"mode":"\(mode)","live_hosts":\(liveHosts),"geometry":"\(host.layout.geometry)","runs":\(runs),\
                "acquire_bytes_read":\(acq.bytesRead),"acquire_bytes_written":\(acq.bytesWritten),\
                "acquire_submits":\(acq.submits),\
                "release_bytes_read":\(rel.bytesRead),"release_bytes_written":\(rel.bytesWritten),\
                "release_submits":\(rel.submits),\
                "acquire_us":\(stats(acquireLatency)),"release_us":\(stats(releaseLatency)),\
                "cycle_us":\(stats(zip(acquireLatency, releaseLatency).map { $0 + $1 })),"last_lver":\(lvers.last!)}

                """)
        }
    }
}

extension BenchAcquire {
    /// Delta leases for hosts 1...N, then a second generation of timestamps, so our view has
    /// seen every one of them renew: all LIVE. Returns that view and the membership as a
    /// daemon would have it (the epoch on disk, then these slots).
    func seedLiveHosts(_ host: DirectHost) throws -> (LiveView, Membership) {
        let device = host.access.device
        var view = LiveView(ourHostID: 1, timeouts: host.timeouts)
        let ss = host.layout.geometry.sectorSize
        let now = MonotonicClock.now()
        var lastArea: [UInt8] = []
        for round in 0..<2 {
            var area = [UInt8](repeating: 0, count: host.layout.geometry.alignSize)
            for h in 1...liveHosts {
                var r = LeaderRecord.delta(
                    space: lockspace.name, geometry: host.layout.geometry,
                    ioTimeout: UInt16(host.timeouts.ioTimeoutSeconds))
                r.ownerID = UInt64(h)
                r.ownerGeneration = 1
                r.timestamp = Clock.diskTimestamp(now) + UInt64(round)
                r.resourceName = "\(LiveView.nameMarker)bench-\(h)"
                area.replaceSubrange((h - 1) * ss..<h * ss, with: r.sector(size: ss))
            }
            if round == 1 {
                do throws(BlockIOError) {
                    try device.write(
                        offset: host.layout.offset, bytes: Array(area[0..<liveHosts * ss]), timeout: .seconds(10))
                } catch {
                    throw CLIFailure(error)
                }
            }
            view.refresh(
                AreaSnapshot(bytes: area, issuedAt: now + Nanos(round), completedAt: now + Nanos(round)),
                layout: host.layout, space: lockspace.name)
            lastArea = area
        }
        let epoch: [UInt8]
        do throws(BlockIOError) {
            epoch = try device.read(offset: host.layout.epochOffset, length: ss, timeout: .seconds(10))
        } catch {
            throw CLIFailure(error)
        }
        let membership = Membership(
            epoch: EpochStamp(sector: epoch), slotBytes: lastArea, layout: host.layout, space: lockspace.name)
        return (view, membership)
    }
}

extension IOCounters {
    /// The figures accumulated since `earlier`.
    func minus(_ earlier: IOCounters) -> IOCounters {
        var d = IOCounters()
        d.batches = batches - earlier.batches
        d.submits = submits - earlier.submits
        d.readRequests = readRequests - earlier.readRequests
        d.writeRequests = writeRequests - earlier.writeRequests
        d.bytesRead = bytesRead - earlier.bytesRead
        d.bytesWritten = bytesWritten - earlier.bytesWritten
        d.timeouts = timeouts - earlier.timeouts
        return d
    }
}
