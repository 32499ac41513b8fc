import DeltaLease
import DirectIO
import DiskPaxos
import LeaseFormat
import LeaseRunner
import Testing

/// Exact I/O figures of an uncontended acquire (bytes and round trips are exact and asserted;
/// time never is).
@Suite struct IOFigureTests {
    /// Leader, request, our dblock and three others', plus the epoch sector in the same submit.
    @Test func liveModeReadsSixSectorsAndTheEpochThreeTimesWithFourLiveHosts() throws {
        let f = ProtocolFixture()
        let ctx = f.context(for: 1, hosts: [1, 2, 3, 4], mode: .live)
        var op = PaxosAcquire(resource: f.resource(), host: PaxosHost(hostID: 1, generation: 1), context: ctx, seed: 1)
        var trace = IOTrace()
        let grant = try f.runner.run(&op, trace: &trace).get()
        #expect(grant.lver == 1 && grant.ballots == 1)
        #expect(trace.bytesRead == 3 * (6 + 1) * 512)
        #expect(trace.reads == 3 && trace.writes == 3)
        #expect(trace.roundTrips <= 6)
        // Every read is one contiguous request for sectors 0..5 and the epoch sector.
        let epoch = IORange(offset: f.lockspace.epochOffset, length: 512)
        for case .read(let r) in trace.actions { #expect(r == [IORange(offset: 1 << 20, length: 6 * 512), epoch]) }
    }

    @Test func fullModeReadsTheWholeAreaThreeTimes() throws {
        let f = ProtocolFixture()
        let ctx = f.context(for: 1, hosts: [1, 2, 3, 4], mode: .full)
        var op = PaxosAcquire(resource: f.resource(), host: PaxosHost(hostID: 1, generation: 1), context: ctx, seed: 1)
        var trace = IOTrace()
        _ = try f.runner.run(&op, trace: &trace).get()
        #expect(trace.bytesRead == 3 << 20 + 3 * 512)
        #expect(trace.roundTrips == 6)
    }

    @Test func fourKSectorsLiveReadIsSixSectors() throws {
        let f = ProtocolFixture(geometry: .g4K_8M)
        let ctx = f.context(for: 2, hosts: [1, 2, 3, 4], mode: .live)
        var op = PaxosAcquire(resource: f.resource(), host: PaxosHost(hostID: 2, generation: 1), context: ctx, seed: 1)
        var trace = IOTrace()
        _ = try f.runner.run(&op, trace: &trace).get()
        #expect(trace.bytesRead == 3 * (6 + 1) * 4096)
    }

    @Test func plannerMergesThroughCheapGapsAndKeepsFarHostsSeparate() {
        let layout = AreaLayout(offset: 0, geometry: .g512_1M)
        // Hosts 10 ids apart: every gap is cheaper to read through than to skip: one request.
        let spread = stride(from: 1, through: 1991, by: 10).map { $0 }
        let merged = ReadPlanner.plan(layout: layout, numHosts: 2000, hostIDs: spread, mode: .live)
        #expect(merged.ranges.count == 1 && merged.ranges[0] == IORange(offset: 0, length: 1993 * 512))
        #expect(merged.hostIDs.count == 1991)  // every dblock read is examined
        // Far-apart hosts stay separate: 3 requests, 5 sectors.
        let few = ReadPlanner.plan(layout: layout, numHosts: 2000, hostIDs: [1, 900, 1800], mode: .live)
        #expect(few.mode == .live && few.ranges.count == 3 && few.bytes == 5 * 512)
        // Small gaps are read through.
        let gappy = ReadPlanner.plan(layout: layout, numHosts: 2000, hostIDs: [1, 5, 30], mode: .live)
        #expect(gappy.ranges.count == 1 && gappy.ranges[0] == IORange(offset: 0, length: 32 * 512))
        // Hosts beyond num_hosts are not read.
        #expect(ReadPlanner.plan(layout: layout, numHosts: 4, hostIDs: [1, 9], mode: .live).hostIDs == [1])
    }

    @Test func numHostsCapsTheFullRead() {
        let layout = AreaLayout(offset: 0, geometry: .g512_1M)
        let p = ReadPlanner.fullPlan(layout: layout, numHosts: 4)
        #expect(p.ranges == [IORange(offset: 0, length: 8 * 512)] && p.hostIDs == [1, 2, 3, 4])
    }
}
