import DeltaLease
import DirectIO
import DiskPaxos
import LeaseFormat
import LeaseRunner
import Testing

@Suite struct LeaseLifecycleTests {
    func acquire(
        _ f: ProtocolFixture, host: Int, ctx: BallotContext, options: PaxosAcquire.Options = .init()
    ) -> (PaxosAcquire.Output, IOTrace) {
        var op = PaxosAcquire(
            resource: f.resource(), host: PaxosHost(hostID: host, generation: 1), context: ctx,
            options: options, seed: 11)
        var trace = IOTrace()
        return (f.runner.run(&op, trace: &trace), trace)
    }

    /// A DEAD owner's lease is taken over at once, and its block stays in the read set (it
    /// is present in the lockspace until it rejoins, leaves, or is cleared): reading it costs
    /// one sector, dropping it would let a value it accepted be lost.
    @Test func aDeadOwnersLeaseIsTakenOverAndItsBlockIsStillRead() throws {
        let f = ProtocolFixture()
        _ = try acquire(f, host: 2, ctx: f.context(for: 2, hosts: [1, 2], mode: .live)).0.get()
        // Host 2 stops renewing: host 1 read its slot unchanged host_dead_seconds + 1 later.
        var view = f.liveView(for: 1, hosts: [1, 2])
        let seen = view.hosts[2]!
        f.clock += Clock.seconds(f.timeouts.hostDeadSeconds + 1)
        var r = LeaderRecord.delta(space: "LS", geometry: f.geometry, ioTimeout: 1)
        r.ownerID = 2; r.ownerGeneration = seen.generation; r.timestamp = seen.timestamp; r.resourceName = seen.name
        view.observe(hostID: 2, record: r, damaged: false, now: f.clock)
        #expect(view.state(of: 2, now: f.clock) == .dead)
        let ctx = BallotContext(lockspace: f.lockspace, membership: f.membership(), view: view, mode: .live)
        #expect(ctx.dblockHosts(now: f.clock) == [1, 2])
        let op = PaxosAcquire(resource: f.resource(), host: PaxosHost(hostID: 1, generation: 1), context: ctx, seed: 3)
        let g = try f.runner.run(op).get()
        #expect(g.lver == 2)
        #expect(ctx.dblockHosts(now: f.clock) == [1, 2])
    }

    /// A host that left cleanly (timestamp 0, generation kept) costs a read only until a
    /// present host's block passes its own: the frontier of docs/AGREEMENT.md rule 6.
    @Test func aLeftHostsBlockIsDroppedOnceDominated() throws {
        let f = ProtocolFixture()
        let g2 = try acquire(f, host: 2, ctx: f.context(for: 2, hosts: [1, 2], mode: .live)).0.get()
        _ = try f.runner.run(PaxosRelease(grant: g2)).get()
        let mine = f.liveView(for: 1, hosts: [1, 2])
        var left = LeaderRecord(decoding: f.device.contents(at: 512, length: 512))
        left.timestamp = 0
        f.device.load(left.sector(size: 512), at: 512)
        let ctx = BallotContext(lockspace: f.lockspace, membership: f.membership(), view: mine, mode: .live)
        #expect(ctx.membership.slots[2] == .left(generation: 1, name: "dl:host2"))
        #expect(ctx.dblockHosts(now: f.clock) == [1, 2])  // read while its lver 1 is the frontier
        var op = PaxosAcquire(resource: f.resource(), host: PaxosHost(hostID: 1, generation: 1), context: ctx, seed: 5)
        var trace = IOTrace()
        #expect(try f.runner.run(&op, trace: &trace).get().lver == 2)
        // Our block is now at lver 2, past host 2's lver 1: its block is shown dominated.
        #expect(op.finalContext.dominated == [2: 1])
        #expect(op.finalContext.dblockHosts(now: f.clock) == [1])
    }

    @Test func aSanlockHostInTheLockspaceForcesFullReads() throws {
        let f = ProtocolFixture()
        let view = f.liveView(for: 1, hosts: [1, 2])
        var r = LeaderRecord.delta(space: "LS", geometry: f.geometry, ioTimeout: 10)
        r.ownerID = 3; r.ownerGeneration = 1; r.timestamp = 100; r.resourceName = "b5e4c1d2-uuid.sanlock-node"
        f.device.load(r.sector(size: 512), at: 2 * 512)
        let ctx = BallotContext(lockspace: f.lockspace, membership: f.membership(), view: view, mode: .live)
        #expect(ctx.effectiveMode == .full)
        let (out, trace) = acquire(f, host: 1, ctx: ctx)
        _ = try out.get()
        #expect(trace.bytesRead == 3 << 20 + 3 * 512)
    }

    @Test func sharedToExclusiveAndBack() throws {
        let f = ProtocolFixture()
        let ctx = f.context(for: 1, hosts: [1, 2], mode: .live)
        let sh = try acquire(f, host: 1, ctx: ctx, options: .init(shared: true)).0.get()
        #expect(sh.shared)
        // SH → EX while nobody else holds it shared.
        let ex = try acquire(
            f, host: 1, ctx: f.context(for: 1, hosts: [1, 2], mode: .live),
            options: .init(convertFromShared: true)
        ).0.get()
        #expect(!ex.shared && ex.lver == sh.lver + 1)
        let mine = f.device.contents(at: Int(f.resource().layout.dblockOffset(hostID: 1)), length: 512)
        #expect(!ModeBlock(decoding: mine).isShared)
        // EX → SH: the leader is released, our mode block says SHARED.
        let back = try f.runner.run(PaxosRelease(grant: ex, toShared: true)).get()
        #expect(back?.shared == true)
        #expect(LeaderRecord(decoding: f.device.contents(at: 1 << 20, length: 512)).timestamp == 0)
        #expect(
            ModeBlock(decoding: f.device.contents(at: Int(f.resource().layout.dblockOffset(hostID: 1)), length: 512))
                .isShared)
        // A second shared holder blocks a conversion to exclusive.
        _ = try acquire(f, host: 2, ctx: f.context(for: 2, hosts: [1, 2], mode: .live), options: .init(shared: true)).0
            .get()
        let (out, _) = acquire(
            f, host: 1, ctx: f.context(for: 1, hosts: [1, 2], mode: .live), options: .init(convertFromShared: true))
        guard case .failure(.sharedHolders([2])) = out else {
            Issue.record("expected shared holder 2, got \(out)"); return
        }
    }

    @Test func requestRecordAsksTheOwnerForTheNextVersion() throws {
        let f = ProtocolFixture()
        #expect(try f.runner.run(PaxosRequest(resource: f.resource(), lver: 1, forceMode: 1)).get() == .free)
        let g = try acquire(f, host: 2, ctx: f.context(for: 2, hosts: [1, 2], mode: .live)).0.get()
        #expect(
            try f.runner.run(PaxosRequest(resource: f.resource(), lver: g.lver + 1, forceMode: RequestRecord.forceKill))
                .get()
                == .requested(ownerID: 2))
        let req = RequestRecord(decoding: f.device.contents(at: (1 << 20) + 512, length: 512))
        #expect(req.lver == 2 && req.forceMode == 1)
        guard case .failure(.lverMismatch) = f.runner.run(PaxosRequest(resource: f.resource(), lver: 1, forceMode: 1))
        else {
            Issue.record("an old version must be refused"); return
        }
        // The requester's renewal carries the owner's bit in its bitmap.
        var bitmap = HostBitmap()
        bitmap.insert(hostID: 2)
        let joined = try f.runner.run(
            DeltaJoin(
                layout: f.lockspace, space: "LS", hostID: 1, hostName: "dl:requester", timeouts: f.timeouts, nonce: 1)
        ).get()
        let renewed = try f.runner.run(
            DeltaRenew(
                layout: f.lockspace, space: "LS", hostID: 1, last: joined.record, timeouts: f.timeouts, bitmap: bitmap)
        ).get()
        #expect(renewed.epoch == EpochStamp(sector: f.device.contents(at: Int(f.lockspace.epochOffset), length: 512)))
        #expect(renewed.record.timestamp >= joined.record.timestamp)
        #expect(HostBitmap(decoding: f.device.contents(at: 0, length: 512)).hostIDs == [2])
    }

    @Test func joinWaitsWhenTheSlotIsHeldByAnotherNameAndFailsIfItChanges() throws {
        let f = ProtocolFixture()
        let a = try f.runner.run(
            DeltaJoin(layout: f.lockspace, space: "LS", hostID: 5, hostName: "dl:a", timeouts: f.timeouts, nonce: 1)
        ).get()
        #expect(a.generation == 1)
        // Same name: fast rejoin, generation + 1, only the 2·io_timeout wait.
        let before = f.clock
        let again = try f.runner.run(
            DeltaJoin(layout: f.lockspace, space: "LS", hostID: 5, hostName: "dl:a", timeouts: f.timeouts, nonce: 1)
        ).get()
        #expect(again.generation == 2 && f.clock - before < Clock.seconds(f.timeouts.hostDeadSeconds))
        // Another name waits host_dead_seconds for the slot to stay unchanged, then takes it.
        let start = f.clock
        let b = try f.runner.run(
            DeltaJoin(layout: f.lockspace, space: "LS", hostID: 5, hostName: "dl:b", timeouts: f.timeouts, nonce: 1)
        ).get()
        #expect(b.generation == 3 && f.clock - start >= Clock.seconds(f.timeouts.hostDeadSeconds))
    }
}
