import DeltaLease
import DirectIO
import DiskPaxos
import LeaseFormat
import LeaseRunner
import Testing

@Suite struct BallotErrorTests {
    func acquire(
        _ f: ProtocolFixture, host: Int = 1, ctx: BallotContext, options: PaxosAcquire.Options = .init()
    ) -> (PaxosAcquire.Output, IOTrace) {
        var op = PaxosAcquire(
            resource: f.resource(), host: PaxosHost(hostID: host, generation: 1), context: ctx,
            options: options, seed: 7)
        var trace = IOTrace()
        let out = f.runner.run(&op, trace: &trace)
        return (out, trace)
    }

    @Test func corruptDblockNamesHostAndOffsetAndNothingIsWrittenAfter() {
        let f = ProtocolFixture()
        let ctx = f.context(for: 1, hosts: [1, 2, 3], mode: .live)
        // Host 3's dblock: non-zero with a wrong checksum.
        var sector = [UInt8](repeating: 0, count: 512)
        var d = PaxosDblock(mbal: 3, bal: 0, lver: 1)
        d.encode(into: &sector)
        sector[0] ^= 0xFF
        let offset = f.resource().layout.dblockOffset(hostID: 3)
        f.device.load(sector, at: Int(offset))
        let before = f.device.contents(at: 0, length: 2 << 20)
        let (out, trace) = acquire(f, ctx: ctx)
        guard case .failure(.corruptDblock(let h, let o, _, _)) = out else {
            Issue.record("expected corruptDblock, got \(out)"); return
        }
        #expect(h == 3 && o == offset)
        #expect(trace.writes == 0)
        #expect(f.device.contents(at: 0, length: 2 << 20) == before)
    }

    @Test func tryAcquireOfALiveOwnersLeaseReturnsHeldAtOnce() throws {
        let f = ProtocolFixture()
        let ctx2 = f.context(for: 2, hosts: [1, 2], mode: .live)
        _ = try acquire(f, host: 2, ctx: ctx2).0.get()
        let ctx1 = f.context(for: 1, hosts: [1, 2], mode: .live)
        let (out, trace) = acquire(f, host: 1, ctx: ctx1, options: .init(noWait: true))
        guard case .failure(.held(ownerID: 2, _, lver: 1, ownerState: .live)) = out else {
            Issue.record("expected held by 2, got \(out)"); return
        }
        #expect(trace.writes == 0 && trace.reads == 1)
    }

    @Test func requiredLverIsEnforcedAndNoJoinWaitOrViewAgeExists() {
        let f = ProtocolFixture()
        let ctx = f.context(for: 1, hosts: [1], mode: .live)
        guard
            case .failure(.lverMismatch(required: 5, current: 0)) = acquire(
                f, ctx: ctx, options: .init(requiredLver: 5)
            ).0
        else {
            Issue.record("required lver not enforced"); return
        }
        // Agreement reads no clock: a context any age old ballots as soon as it is given.
        f.clock += Clock.seconds(3600)
        #expect((try? acquire(f, ctx: ctx).0.get())?.lver == 1)
    }

    @Test func releaseClearsTheLeaderAndAnotherHostTakesIt() throws {
        let f = ProtocolFixture()
        let g = try acquire(f, host: 1, ctx: f.context(for: 1, hosts: [1, 2], mode: .live)).0.get()
        _ = try f.runner.run(PaxosRelease(grant: g)).get()
        let leader = LeaderRecord(decoding: f.device.contents(at: 1 << 20, length: 512))
        #expect(leader.timestamp == 0 && leader.ownerID == 1 && leader.lver == 1)
        let g2 = try acquire(f, host: 2, ctx: f.context(for: 2, hosts: [1, 2], mode: .live)).0.get()
        #expect(g2.lver == 2 && g2.fencingToken == 2)
    }

    @Test func sharedHoldersCoexistAndRefuseExclusive() throws {
        let f = ProtocolFixture()
        let a = try acquire(
            f, host: 1, ctx: f.context(for: 1, hosts: [1, 2, 3], mode: .live), options: .init(shared: true)
        ).0.get()
        let b = try acquire(
            f, host: 2, ctx: f.context(for: 2, hosts: [1, 2, 3], mode: .live), options: .init(shared: true)
        ).0.get()
        #expect(a.shared && b.shared)
        let (out, _) = acquire(f, host: 3, ctx: f.context(for: 3, hosts: [1, 2, 3], mode: .live))
        guard case .failure(.sharedHolders(let h)) = out else {
            Issue.record("expected shared holders, got \(out)"); return
        }
        #expect(h == [1, 2])
    }
}
