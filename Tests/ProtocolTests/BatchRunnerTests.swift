import DeltaLease
import DirectIO
import DiskPaxos
import LeaseFormat
import LeaseRunner
import Testing

/// Batched ballots: many resources acquired side by side must give every one the grant it
/// would get alone, while the device sees one submit per phase instead of one per resource.
@Suite struct BatchRunnerTests {
    @Test func fortyAcquiresShareTheSubmitsOfOne() throws {
        let f = ProtocolFixture(resources: 40)
        let ctx = f.context(for: 1, hosts: [1, 2, 3, 4], mode: .live)
        var ops = (0..<40).map {
            PaxosAcquire(
                resource: f.resource($0), host: PaxosHost(hostID: 1, generation: 1), context: ctx,
                seed: UInt64($0))
        }
        let before = f.device.counters
        let outputs = BatchRunner(f.runner).run(&ops)
        let used = f.device.counters
        var grants: [Grant] = []
        for (i, o) in outputs.enumerated() {
            let g = try o.get()
            #expect(g.resource.name == "r\(i)" && g.lver == 1 && g.leader.ownerID == 1)
            grants.append(g)
        }
        // Alone, one acquire is 3 reads and 3 writes; batched, forty still are.
        #expect(used.submits - before.submits == 6)
        // Each reads leader, request, our dblock and 3 live hosts' dblocks, 3 times, and the
        // epoch sector with each read (one copy per submit: the engine merges the forty).
        #expect(used.bytesRead - before.bytesRead == 40 * 3 * 6 * 512 + 3 * 512)
        var releases = grants.map { PaxosRelease(grant: $0) }
        for r in BatchRunner(f.runner).run(&releases) { _ = try r.get() }
        // The leases are free again: a second host takes one at the next version.
        let other = f.context(for: 2, hosts: [1, 2, 3, 4], mode: .live)
        let again = f.runner.run(
            PaxosAcquire(
                resource: f.resource(7), host: PaxosHost(hostID: 2, generation: 1),
                context: other, seed: 99))
        #expect(try again.get().lver == 2)
    }

    @Test func aFailedBatchFailsEveryOperationInItAndWritesNothing() {
        let f = ProtocolFixture(resources: 3)
        let ctx = f.context(for: 1, hosts: [1], mode: .live)
        var ops = (0..<3).map {
            PaxosAcquire(
                resource: f.resource($0), host: PaxosHost(hostID: 1, generation: 1), context: ctx,
                seed: UInt64($0))
        }
        var faults = MemoryFaults()
        faults.eio = [IORange(offset: f.resource(1).layout.offset, length: 512)]  // one resource's leader
        f.device.setFaults(faults)
        let outputs = BatchRunner(f.runner).run(&ops)
        for o in outputs {
            guard case .failure(.io) = o else { Issue.record("expected an I/O failure, got \(o)"); continue }
        }
        #expect(f.device.counters.bytesWritten == 0)
    }
}
