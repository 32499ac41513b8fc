import DeltaLease
import DirectIO
import DiskPaxos
import HostCore
import LeaseFormat
import Testing

/// Directed schedules of docs/AGREEMENT.md's rules, on the real operations: each test runs one
/// interleaving of several hosts twice, once with the rule and once without it (a mutant),
/// and shows that the rule is what keeps one value per lease version. The schedules are the
/// spin model's counterexamples (Model/epoch.pml), replayed on the code diskleased runs; the
/// random simulator reaches some of them only rarely, so they are pinned here.
@Suite struct InterleavingTests {
    typealias Decision = (lver: UInt64, ownerID: UInt64)

    func join(_ disk: InterleavedDisk, _ h: Int, mutations: SafetyMutations = []) -> Driven {
        Driven(
            .join(
                DeltaJoin(
                    layout: disk.lockspace, space: "LS", hostID: h, hostName: "dl:h\(h)",
                    timeouts: Timeouts(ioTimeoutSeconds: 1, watchdogFireSeconds: 4), nonce: UInt64(h) * 7919,
                    mutations: mutations)), on: disk)
    }

    func joined(_ j: Driven) -> Membership {
        guard case .join(.success(let out))? = j.output else {
            preconditionFailure("join did not finish: \(String(describing: j.output))")
        }
        return out.membership
    }

    func acquire(
        _ disk: InterleavedDisk, _ h: Int, _ m: Membership, view: LiveView? = nil, mutations: SafetyMutations
    ) -> Driven {
        let v = view ?? disk.liveView(us: h, hosts: m.presentHosts)
        let ctx = BallotContext(lockspace: disk.lockspace, membership: m, view: v, mode: .live, mutations: mutations)
        return Driven(
            .acquire(
                PaxosAcquire(
                    resource: disk.resource(), host: PaxosHost(hostID: h, generation: 1), context: ctx,
                    seed: UInt64(h))), on: disk)
    }

    /// Both hosts' decisions for lver 1 agree (or only one decided).
    func agree(_ a: Driven, _ b: Driven) -> Bool {
        guard let x = a.decided, let y = b.decided, x.lver == y.lver else { return true }
        return x.ownerID == y.ownerID
    }

    // MARK: - Rule 3: the epoch in every phase read

    /// B balloted before C joined; C joins and ballots through phase 1 while B sits between its
    /// phase-1 read and phase-2 write. B's phase-2 read must see C's epoch: if only phase 1
    /// checked it, B (not reading C) and C (reading B's older, lower ballot) both decide.
    func phase2EpochSchedule(_ mutations: SafetyMutations) -> (Driven, Driven) {
        let disk = InterleavedDisk()
        disk.placeMember(1)
        let jb = join(disk, 2)
        jb.run()
        let b = acquire(disk, 2, joined(jb), mutations: mutations)
        b.run(toWrite: 2)  // initial read, phase 1 write and read
        let jc = join(disk, 3)
        jc.run()
        let c = acquire(disk, 3, joined(jc), mutations: mutations)
        c.run(toWrite: 2)
        b.write(); b.read()  // B's phase 2
        c.run(until: { $0.commitPending })
        b.run(until: { $0.commitPending })
        c.run(); b.run()
        return (b, c)
    }

    @Test func theEpochIsCheckedInThePhaseTwoRead() {
        let (b, c) = phase2EpochSchedule([])
        #expect(agree(b, c), "with the rule: B \(String(describing: b.decided)), C \(String(describing: c.decided))")
        let (mb, mc) = phase2EpochSchedule(.epochCheckPhase1Only)
        #expect(!agree(mb, mc), "phase-1-only epoch check must let two values through")
    }

    // MARK: - Rule 1: epoch first, slots after

    /// A rebuilds its membership (K's join changed the epoch) while C joins: its slot read
    /// runs before C's delta write lands, its epoch read after C's epoch write. Read in one
    /// batch, the membership is labelled with C's epoch but misses C, and every later check
    /// passes; read epoch-first, the label is K's and the next phase read sees C's.
    func rebuildSchedule(_ mutations: SafetyMutations) -> (Driven, Driven) {
        let disk = InterleavedDisk()
        disk.placeMember(1)
        disk.placeMember(2)
        let a = acquire(disk, 1, disk.membership(), mutations: mutations)
        let jk = join(disk, 4)
        jk.run()
        a.read()  // sees K's epoch: rebuild pending
        a.read([0])  // the slots: C not there yet
        let jc = join(disk, 40)  // far from the others: no read spans its block by chance
        jc.read(); jc.write(); jc.write()  // C's delta, then its epoch
        if a.isRead { a.read() }  // (one-batch mutant: the epoch range now, C's)
        a.run(toWrite: 2)  // A's fresh initial read, phase 1
        jc.run()
        let c = acquire(disk, 40, joined(jc), mutations: mutations)
        c.run(toWrite: 2)
        a.run(until: { $0.commitPending || $0.done })
        c.run(until: { $0.commitPending || $0.done })
        a.run(); c.run()
        return (a, c)
    }

    @Test func aRebuildReadsTheEpochBeforeTheSlots() {
        let (a, c) = rebuildSchedule([])
        #expect(agree(a, c))
        let (ma, mc) = rebuildSchedule(.buildInOneBatch)
        let why = "a one-batch rebuild must let two values through: A \(String(describing: ma.decided)) "
            + "\(String(describing: ma.output)), C \(String(describing: mc.decided)) \(String(describing: mc.output))"
        #expect(!agree(ma, mc), "\(why)")
    }

    // MARK: - Rule 4: the epoch only after the delta write

    /// C's epoch write goes out with its delta write and lands first; A sees the new epoch
    /// and rebuilds from slots that do not show C yet.
    func joinOrderSchedule(_ mutations: SafetyMutations) -> (Driven, Driven) {
        let disk = InterleavedDisk()
        disk.placeMember(1)
        let a = acquire(disk, 1, disk.membership(), mutations: mutations)
        let jc = join(disk, 3, mutations: mutations)
        jc.read()
        if mutations.contains(.epochWithDelta) {
            jc.land([1])  // the epoch lands, the delta not yet
        } else {
            jc.write()  // the delta write completes first
            jc.land()  // then the epoch lands
        }
        a.read()  // sees the epoch: rebuild
        a.read()  // the slots
        if jc.isWrite { jc.write() }
        jc.run()
        a.run(toWrite: 2)
        let c = acquire(disk, 3, joined(jc), mutations: mutations)
        c.run(toWrite: 2)
        a.run(until: { $0.commitPending || $0.done })
        c.run(until: { $0.commitPending || $0.done })
        a.run(); c.run()
        return (a, c)
    }

    @Test func theJoinWritesItsEpochOnlyAfterItsDeltaLease() {
        let (a, c) = joinOrderSchedule([])
        #expect(agree(a, c))
        let (ma, mc) = joinOrderSchedule(.epochWithDelta)
        #expect(!agree(ma, mc), "an epoch landing before its delta lease must let two values through")
    }

    /// Two joiners that both turn epoch n into n + 1 write the same value: A, which rebuilt
    /// after the first, never sees the second change.
    func counterSchedule(_ mutations: SafetyMutations) -> (Driven, Driven) {
        let disk = InterleavedDisk()
        disk.placeMember(1)
        let a = acquire(disk, 1, disk.membership(), mutations: mutations)
        let jb = join(disk, 2, mutations: mutations)
        let jc = join(disk, 3, mutations: mutations)
        jb.read(); jc.read()  // both read the epoch
        jb.write(); jb.write()  // B: delta, epoch
        a.read(); a.read()  // A sees B's epoch and rebuilds: B, not C
        jc.write(); jc.write()  // C: delta, epoch (the same counter value, in the mutant)
        jb.run(); jc.run()
        a.run(toWrite: 2)
        let c = acquire(disk, 3, joined(jc), mutations: mutations)
        c.run(toWrite: 2)
        a.run(until: { $0.commitPending || $0.done })
        c.run(until: { $0.commitPending || $0.done })
        a.run(); c.run()
        return (a, c)
    }

    @Test func epochTokensAreUniquePerWrite() {
        let (a, c) = counterSchedule([])
        #expect(agree(a, c))
        let (ma, mc) = counterSchedule(.epochCounter)
        #expect(!agree(ma, mc), "an epoch counter two joiners both write must let two values through")
    }

    // MARK: - Rules 2 and 6: dead and left blocks

    /// D decided a value and crashed before its commit landed. A, calling D DEAD, must still
    /// read D's block and decide D's value again.
    func deadBlockSchedule(_ mutations: SafetyMutations) -> (Driven, Driven) {
        let disk = InterleavedDisk()
        disk.placeMember(1)
        disk.placeMember(2)
        let d = acquire(disk, 2, disk.membership(), mutations: mutations)
        d.run(until: { $0.commitPending })  // decided; the commit never lands (crash)
        var view = disk.liveView(us: 1, hosts: [1])
        var r = LeaderRecord.delta(space: "LS", geometry: disk.geometry, ioTimeout: 1)
        r.ownerID = 2; r.ownerGeneration = 1; r.resourceName = "dl:h2"; r.timestamp = 100
        view.observe(hostID: 2, record: r, damaged: false, now: Clock.seconds(100))
        view.observe(hostID: 2, record: r, damaged: false, now: Clock.seconds(200))
        #expect(view.state(of: 2, now: Clock.seconds(200)) == .dead)
        let a = acquire(disk, 1, disk.membership(), view: view, mutations: mutations)
        a.run()
        return (d, a)
    }

    @Test func aDeadHostsBlockIsReadUntilItsSlotIsFreed() {
        let (d, a) = deadBlockSchedule([])
        #expect(agree(d, a))
        let (md, ma) = deadBlockSchedule(.dropDeadBlocks)
        #expect(!agree(md, ma), "dropping a DEAD host's block must let a second value through")
    }

    /// D decided, its commit failed and never landed, it retracted and left cleanly. Its block
    /// holds the highest lver: A must read it (rule 6) and decide D's value again.
    func leftBlockSchedule(_ mutations: SafetyMutations) -> (Driven, Driven) {
        let disk = InterleavedDisk()
        disk.placeMember(1)
        disk.placeMember(2)
        let d = acquire(disk, 2, disk.membership(), mutations: mutations)
        d.run(until: { $0.commitPending })
        d.fail()  // the commit write fails; nothing lands
        d.run()  // the retraction
        var left = LeaderRecord(
            decoding: disk.read(IORange(offset: disk.lockspace.deltaOffset(hostID: 2), length: 512)))
        left.timestamp = 0
        disk.land(disk.lockspace.deltaOffset(hostID: 2), left.sector(size: 512))
        disk.land(
            disk.lockspace.epochOffset,
            epochSector(
                space: "LS", hostID: 2, generation: 1, kind: .leave, nonce: 99,
                layout: disk.lockspace
            ).bytes)
        let a = acquire(disk, 1, disk.membership(), mutations: mutations)
        a.run()
        return (d, a)
    }

    @Test func aLeftHostsBlockIsReadWhileItHoldsTheFrontier() {
        let (d, a) = leftBlockSchedule([])
        #expect(agree(d, a))
        let (md, ma) = leftBlockSchedule(.dropLeftAtOnce)
        #expect(!agree(md, ma), "dropping a left host's block at once must let a second value through")
    }

    // MARK: - Rule 8: a failed convert keeps its SHARED mode block

    /// A holds the lease shared and tries to convert; the convert fails after its phase-2
    /// write. Its retraction must keep the SHARED mode block, or B's exclusive ballot sees no
    /// shared holder and is granted beside A.
    func convertSchedule(_ mutations: SafetyMutations) -> PaxosAcquire.Output? {
        let disk = InterleavedDisk()
        disk.placeMember(1)
        disk.placeMember(2)
        var options = PaxosAcquire.Options(shared: true)
        let ctx = BallotContext(
            lockspace: disk.lockspace, membership: disk.membership(), view: disk.liveView(us: 1, hosts: [1, 2]),
            mode: .live, mutations: mutations)
        let sh = Driven(
            .acquire(
                PaxosAcquire(
                    resource: disk.resource(), host: PaxosHost(hostID: 1, generation: 1), context: ctx,
                    options: options, seed: 1)), on: disk)
        sh.run()
        options = PaxosAcquire.Options(noWait: true, convertFromShared: true)
        let conv = Driven(
            .acquire(
                PaxosAcquire(
                    resource: disk.resource(), host: PaxosHost(hostID: 1, generation: 1), context: ctx,
                    options: options, seed: 2)), on: disk)
        conv.run(until: { $0.commitPending })
        conv.fail()  // the convert's commit fails: retract
        conv.run()
        // B's first ballot carries A's accepted value to the commit (A's, retracted); its next
        // ballot takes the version after it and meets A's mode block, or does not.
        let first = acquire(disk, 2, disk.membership(), mutations: mutations)
        first.run()
        let b = acquire(disk, 2, disk.membership(), mutations: mutations)
        b.run()
        guard case .acquire(let out, _)? = b.output else { return nil }
        return out
    }

    @Test func aFailedConvertKeepsItsSharedModeBlock() {
        guard case .failure(.sharedHolders([1]))? = convertSchedule([]) else {
            Issue.record("with the rule, B must be refused by A's shared hold"); return
        }
        guard case .success(let g)? = convertSchedule(.convertRetractWithoutShared), !g.shared else {
            Issue.record("without the SHARED mode block, B must be granted exclusive beside A"); return
        }
    }
}
