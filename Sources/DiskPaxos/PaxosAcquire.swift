import DeltaLease
import DirectIO
import LeaseFormat

/// Acquiring a resource lease: sanlock's paxos_lease_acquire (SANLOCK-FORMAT.md §6.1, §6.3),
/// reading the blocks of docs/AGREEMENT.md's read set instead of all of them.
///
/// Steps: read the planned set with the epoch sector (leader, request record, our dblock, every
/// present member's dblock, left blocks not yet shown dominated); decide whether the lease may
/// be taken (free, ours, owner DEAD or gone, owner released); run Disk Paxos for the next
/// version with mbal ≡ host_id (mod max_hosts): phase 1 write + read, choose the value of the
/// highest bal, phase 2 write + read, abort and retry with a higher mbal on a higher mbal or
/// lver; commit the leader. Shared leases commit with SHORT_HOLD, mark our mode block SHARED and
/// release the leader; exclusive leases clear dead shared holders and refuse live ones.
///
/// Guarantees (docs/AGREEMENT.md): every read carries the epoch sector, and a changed epoch
/// stops the ballot before anything more is written (the membership is rebuilt from a slot
/// read that follows, and a new ballot starts); a leader moved back by a late commit is
/// repaired by balloting the instance the blocks show; a corrupt dblock or an overflowing
/// value stops the acquire before anything more is written; nothing here reads a clock
/// except to date lease-expiry judgements and disk timestamps.
public struct PaxosAcquire: LeaseOperation {
    public struct Options: Sendable, Hashable {
        public var shared = false
        /// Try-acquire: fail at once with `.held` when a live host holds it.
        public var noWait = false
        /// Acquire only if the lease is at this version (sanlock's RESOURCE:lver).
        public var requiredLver: UInt64? = nil
        /// We hold it shared and convert to exclusive: keep our SHARED mode block while balloting.
        public var convertFromShared = false
        /// Refuse (`alreadyHeld`) when the leader already names this incarnation: a direct
        /// process cannot know whether another process of this host still holds it.
        public var refuseIfOurs = false
        /// Give up after this many ballots (aborts and membership rebuilds alike).
        public var maxBallots = 16
        /// The highest mbal this host has written for this resource (in any earlier acquire of
        /// this incarnation). A timed-out write may land after a later read, so the disk alone
        /// cannot tell us; ballots never go below it.
        public var minimumMbal: UInt64 = 0
        /// The highest lver this host has written in its block for this resource. Such a
        /// write was issued after reading the leader at lver − 1 (or rule 7's evidence), so
        /// it proves that version committed even while the write itself has not landed (a
        /// timed-out write that lands after our next read): the next ballot is never for a
        /// lower version, and our block never goes back.
        public var minimumLver: UInt64 = 0
        public init(
            shared: Bool = false, noWait: Bool = false, requiredLver: UInt64? = nil,
            convertFromShared: Bool = false, maxBallots: Int = 16
        ) {
            self.shared = shared
            self.noWait = noWait
            self.requiredLver = requiredLver
            self.convertFromShared = convertFromShared
            self.maxBallots = maxBallots
        }
    }
    public typealias Output = Result<Grant, PaxosError>

    public let resource: PaxosResource
    let host: PaxosHost
    var options: Options
    var context: BallotContext
    var rng: SplitMix64

    private var phase = Phase.initialRead
    private var plan = ReadPlan(ranges: [], hostIDs: [], mode: .full)
    private var leader: LeaderRecord! = nil
    private var nextLver: UInt64 = 0
    private var ourMbal: UInt64 = 0
    private var dblock = PaxosDblock()
    private var ballots = 0
    private var rebuilds = 0
    private var sharedSeen: [Int: ModeBlock] = [:]
    private var committed: LeaderRecord! = nil
    private var pendingFailure: PaxosError? = nil
    /// The epoch the last rebuild read returned (the label of the membership it builds).
    private var rebuildEpoch = EpochStamp.initial
    /// The version an earlier acquire of ours gave up on after its phase-2 write (its dblock
    /// still says RELEASED for it): others may take over that version if it is committed in
    /// our name, so we must never be granted it; we go on to the next version instead.
    private var retractedLver: UInt64 = 0

    /// The value this acquire decided for a version, set the moment it issues the commit write
    /// (a decided value may still be lost with the write; checkers compare decisions per lver).
    public private(set) var decided: (lver: UInt64, ownerID: UInt64, generation: UInt64, timestamp: UInt64)? = nil
    /// Whether the write this acquire just asked for is its commit (the leader write after a
    /// decision) or its phase-2 write. Observers (the simulator's aimed faults) use these to
    /// strike at the moments membership mistakes need; the ballot itself never looks.
    public var isCommitting: Bool { phase == .commitWrite }
    public var isWritingPhase2: Bool { phase == .phase2Write }
    /// The context as it ends: the membership (rebuilt if the epoch changed) and the blocks
    /// shown dominated, also when the acquire fails.
    public var finalContext: BallotContext { context }
    /// The highest mbal this acquire wrote (carry it into the next one as `minimumMbal`).
    public private(set) var highestMbal: UInt64 = 0
    /// The highest lver this acquire (or an earlier one, per `minimumLver`) wrote in our block
    /// (carry it into the next one as `minimumLver`).
    public var highestLver: UInt64 { max(options.minimumLver, lastWritten?.lver ?? 0) }
    /// Membership rebuilds this acquire did (epoch changes seen).
    public var membershipRebuilds: Int { rebuilds }
    /// The last dblock this acquire wrote in our sector, if any: whatever this host writes
    /// there next (a release of a lease it still holds) must not go below it.
    public private(set) var lastWritten: PaxosDblock? = nil
    /// Ballots run for an instance past leader + 1 (rule 7: the leader had moved back).
    public private(set) var leaderRepairs = 0

    enum Phase {
        case initialRead, phase1Write, phase1Read, phase2Write, phase2Read, commitWrite
        case sharedCheckRead, sharedClearWrite, sharedModeWrite, leaderReleaseRead, leaderReleaseWrite
        case convertFinishWrite, abortSleep, retryLeaderRead, retractWrite, rebuildRead, refusalRetractWrite, done
    }

    public init(
        resource: PaxosResource, host: PaxosHost, context: BallotContext,
        options: Options = Options(), seed: UInt64
    ) {
        precondition((1...resource.layout.geometry.maxHosts).contains(host.hostID))
        precondition(context.view.ourHostID == host.hostID, "the view must be ours")
        self.resource = resource
        self.host = host
        self.context = context
        self.options = options
        self.rng = SplitMix64(seed: seed)
    }

    var layout: AreaLayout { resource.layout }
    var ss: Int { layout.geometry.sectorSize }
    var maxHosts: UInt64 { UInt64(layout.geometry.maxHosts) }
    var epochRange: IORange {
        IORange(offset: context.lockspace.epochOffset, length: context.lockspace.geometry.sectorSize)
    }

    // MARK: - Steps

    public mutating func start(now: Nanos) -> Step<Output> {
        // num_hosts is not known before the leader is read; plan with the geometry's maximum
        // and re-plan once the leader says how many dblocks are in use.
        plan = makePlan(numHosts: layout.geometry.maxHosts, now: now)
        phase = .initialRead
        return .perform(.read(plan.ranges + [epochRange]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result {
            return ioFailed(e, now: now)
        }
        switch phase {
        case .initialRead:
            if let changed = epochChanged(result.reads, checked: true) { return rebuild(changed, now: now) }
            return afterInitialRead(result.reads, now: now)
        case .phase1Write:
            phase = .phase1Read
            return .perform(.read(plan.ranges + [epochRange]))
        case .phase1Read:
            if let changed = epochChanged(result.reads, checked: true) { return rebuild(changed, now: now) }
            return afterPhaseRead(result.reads, phase2: false, now: now)
        case .phase2Write:
            phase = .phase2Read
            return .perform(.read(plan.ranges + [epochRange]))
        case .phase2Read:
            let checked = !context.mutations.contains(.epochCheckPhase1Only)
            if let changed = epochChanged(result.reads, checked: checked) { return rebuild(changed, now: now) }
            return afterPhaseRead(result.reads, phase2: true, now: now)
        case .commitWrite:
            return afterCommit(now: now)
        case .sharedCheckRead:
            return afterSharedCheck(result.reads, now: now)
        case .sharedClearWrite:
            return finishExclusive(now: now)
        case .sharedModeWrite, .refusalRetractWrite:
            phase = .leaderReleaseRead
            return .perform(.read([IORange(offset: layout.leaderOffset, length: ss)]))
        case .leaderReleaseRead:
            return releaseLeader(result.reads[0], now: now)
        case .leaderReleaseWrite, .convertFinishWrite:
            if let f = pendingFailure { return finish(.failure(f)) }
            return finish(.success(grant()))
        case .abortSleep:
            phase = .retryLeaderRead
            return .perform(.read([IORange(offset: layout.leaderOffset, length: ss)]))
        case .retryLeaderRead:
            return afterRetryLeaderRead(result.reads[0], now: now)
        case .retractWrite:
            return finish(.failure(pendingFailure!))
        case .rebuildRead:
            return afterRebuild(result.reads, now: now)
        case .done:
            preconditionFailure("resumed after finishing")
        }
    }

    // MARK: - Membership (rules 1 and 3)

    /// The epoch read with a ballot's sectors, when it differs from the membership's.
    private func epochChanged(_ reads: [[UInt8]], checked: Bool) -> EpochStamp? {
        guard checked, !context.mutations.contains(.noEpochCheck) else { return nil }
        let e = EpochStamp(sector: reads[reads.count - 1])
        return e == context.membership.epoch ? nil : e
    }

    /// The epoch changed: write nothing more in this ballot; read the slots (after the read
    /// that returned `epoch`, so the membership may carry its label) and start over.
    private mutating func rebuild(_ epoch: EpochStamp, now: Nanos) -> Step<Output> {
        rebuilds += 1
        if ballots >= options.maxBallots || rebuilds > options.maxBallots {
            return retractThenFail(.membershipChurn(lver: nextLver, rebuilds: rebuilds))
        }
        rebuildEpoch = epoch
        phase = .rebuildRead
        let slots = IORange(offset: context.lockspace.offset, length: context.lockspace.slotsLength)
        if context.mutations.contains(.buildInOneBatch) { return .perform(.read([slots, epochRange])) }
        return .perform(.read([slots]))
    }

    private mutating func afterRebuild(_ reads: [[UInt8]], now: Nanos) -> Step<Output> {
        let label = context.mutations.contains(.buildInOneBatch) ? EpochStamp(sector: reads[1]) : rebuildEpoch
        context.membership = Membership(
            epoch: label, slotBytes: reads[0], layout: context.lockspace, space: resource.space)
        context.view.refresh(
            AreaSnapshot(bytes: reads[0], issuedAt: now, completedAt: now), layout: context.lockspace,
            space: resource.space)
        // Everything is judged afresh from a new initial read: new members' blocks (their
        // mbal and lver) have never been read. Our accepted value survives in our block.
        options.minimumMbal = max(options.minimumMbal, highestMbal)
        options.minimumLver = highestLver
        return start(now: now)
    }

    // MARK: - Deciding

    private func makePlan(numHosts: Int, now: Nanos) -> ReadPlan {
        ReadPlanner.plan(
            layout: layout, numHosts: numHosts, hostIDs: context.dblockHosts(now: now), mode: context.effectiveMode)
    }

    private mutating func afterInitialRead(_ reads: [[UInt8]], now: Nanos) -> Step<Output> {
        let sectors = sectorMap(reads)
        let l: LeaderRecord
        do {
            l = try LeaderRecord.verifyPaxos(
                sectors[0]!, deviceOffset: layout.offset, space: resource.space,
                resource: resource.name, hostID: UInt64(host.hostID))
        } catch {
            return finish(.failure(.leader(error)))
        }
        if let g = try? l.geometry(deviceOffset: layout.offset), g != layout.geometry {
            return finish(
                .failure(.geometryMismatch(offset: layout.offset, expected: "\(layout.geometry)", found: "\(g)")))
        }
        leader = l
        // The plan assumed max_hosts dblocks; num_hosts may be smaller (fewer blocks examined).
        let numHosts = Int(l.numHosts)
        let examined = plan.hostIDs.filter { $0 <= numHosts }
        var maxMbal: UInt64 = 0
        var frontier: UInt64 = 0
        for h in examined {
            let d: PaxosDblock
            switch verifiedDblock(h, sectors) {
            case .success(let v): d = v
            case .failure(let e): return finish(.failure(e))
            }
            maxMbal = max(maxMbal, d.mbal)
            frontier = max(frontier, d.lver)
            if h == host.hostID { dblock = d }
        }
        noteDominated(examined, sectors)
        // Our own block may still show an older write of ours than one in flight.
        if !context.mutations.contains(.noLverFloor) { frontier = max(frontier, options.minimumLver) }
        plan = makePlan(numHosts: numHosts, now: now)
        do {
            let next = try Checked.add(l.lver, 1, field: "leader lver", offset: layout.leaderOffset)
            // Rule 7: blocks past leader + 1 mean a late commit moved the leader back. Instance
            // frontier − 1 was committed and judged free by whoever wrote at `frontier`.
            let repairing = frontier > next
            nextLver = repairing ? frontier : next
            if repairing { leaderRepairs += 1 }
            if let required = options.requiredLver, required != nextLver - 1 {
                return finish(.failure(.lverMismatch(required: required, current: nextLver - 1)))
            }
            if !repairing, l.timestamp != 0 {
                if l.ownerID == UInt64(host.hostID), l.ownerGeneration == host.generation, options.refuseIfOurs {
                    return finish(.failure(.alreadyHeld(lver: l.lver)))
                }
                if l.ownerID != UInt64(host.hostID), let refusal = ownerRefusal(l, sectors: sectors, now: now) {
                    return finish(.failure(refusal))
                }
            }
            if dblock.isReleased && dblock.bal != 0 && dblock.lver == nextLver { retractedLver = dblock.lver }
            maxMbal = max(maxMbal, options.minimumMbal)
            ourMbal = maxMbal == 0 ? UInt64(host.hostID) : try nextBallot(above: maxMbal)
        } catch {
            return finish(.failure(.outOfRange(error)))
        }
        return startBallot(now: now)
    }

    /// The smallest ballot number above `m` that is ours (≡ host_id mod max_hosts).
    private func nextBallot(above m: UInt64) throws(FormatError) -> UInt64 {
        let base = m - m % maxHosts
        let step = try Checked.add(base, maxHosts, field: "mbal", offset: layout.dblockOffset(hostID: host.hostID))
        return try Checked.add(
            step, UInt64(host.hostID), field: "mbal", offset: layout.dblockOffset(hostID: host.hostID))
    }

    /// nil when the owner may be replaced: its host id is FREE or rejoined with a newer
    /// generation, it is DEAD in our view, or its own dblock says it released this version.
    private func ownerRefusal(_ l: LeaderRecord, sectors: [Int: [UInt8]], now: Nanos) -> PaxosError? {
        let owner = Int(clamping: l.ownerID)
        guard owner >= 1, owner <= layout.geometry.maxHosts else { return nil }
        let state = context.state(of: owner, now: now)
        if state == .free || state == .dead { return nil }
        if let o = context.view.hosts[owner], o.generation > l.ownerGeneration { return nil }
        if let s = sectors[owner + 1] {
            let d = PaxosDblock(decoding: s)
            // A RELEASED block for this version: released, or retracted before its commit
            // landed; either way the owner does not hold it (a late commit may have rewritten
            // a leader it had already cleared).
            if d.isReleased && d.lver == l.lver { return nil }
            if l.writeID != l.ownerID && d.isReleased { return nil }
        }
        return .held(ownerID: l.ownerID, generation: l.ownerGeneration, lver: l.lver, ownerState: state)
    }

    private mutating func startBallot(now: Nanos) -> Step<Output> {
        ballots += 1
        precondition(ourMbal % maxHosts == UInt64(host.hostID) % maxHosts, "ballot number not ≡ host_id")
        precondition(ourMbal > options.minimumMbal || options.minimumMbal == 0, "mbal went backwards")
        precondition(ourMbal >= dblock.mbal, "mbal went backwards")
        precondition(nextLver >= dblock.lver || dblock.lver == 0, "lver went backwards")
        precondition(
            nextLver >= options.minimumLver || context.mutations.contains(.noLverFloor),
            "lver below one we wrote before")
        highestMbal = max(highestMbal, ourMbal)
        // Disk Paxos keeps a host's accepted value (bal, inp) across its ballots for the same
        // instance. sanlock's phase 1 zeroes them; then a host whose decided value's commit
        // write timed out (and may still land) can decide a second value for the same lver.
        let keep = dblock.lver == nextLver && dblock.bal != 0 && dblock.inp != 0
        dblock = PaxosDblock(
            mbal: ourMbal, bal: keep ? dblock.bal : 0, inp: keep ? dblock.inp : 0,
            inp2: keep ? dblock.inp2 : 0, inp3: keep ? dblock.inp3 : 0, lver: nextLver)
        // A retracted version stays retracted in every block we write for it: another host
        // that read RELEASED may already have taken over from a commit in our name.
        if nextLver == retractedLver { dblock.flags = PaxosDblock.flagReleased }
        phase = .phase1Write
        return .perform(.write([ourSector()]))
    }

    private mutating func afterPhaseRead(_ reads: [[UInt8]], phase2: Bool, now: Nanos) -> Step<Output> {
        let sectors = sectorMap(reads)
        // First every block is verified and its mode block noted, before anything can end the
        // ballot: a retry that then finds us committed as owner relies on this scan to refuse
        // or clear shared holders.
        var blocks: [(host: Int, dblock: PaxosDblock)] = []
        sharedSeen = [:]
        for h in plan.hostIDs {
            switch verifiedDblock(h, sectors) {
            case .success(let d): blocks.append((h, d))
            case .failure(let e): return retractThenFail(e)
            }
            let mode = ModeBlock(decoding: sectors[h + 1]!)
            if mode.isShared && h != host.hostID { sharedSeen[h] = mode }
        }
        noteDominated(plan.hostIDs, sectors)
        // The leader is in every planned read: if this version (or a later one) is already
        // committed, stop balloting and let the retry path look at the leader.
        if let leaderSector = sectors[0] {
            let l = LeaderRecord(decoding: leaderSector)
            if l.magic == LeaderRecord.paxosMagic && l.lver >= nextLver { return abortBallot(now: now) }
        }
        var bkMax: PaxosDblock? = nil
        for (h, d) in blocks {
            if d.lver < nextLver { continue }
            if h != host.hostID && (d.lver > nextLver || d.mbal > ourMbal) { return abortBallot(now: now) }
            // Our own block counts too: it carries the value we accepted in an earlier ballot.
            if d.inp != 0 && d.bal != 0 && d.bal > (bkMax?.bal ?? 0) { bkMax = d }
        }
        if !phase2 {
            if let b = bkMax {
                dblock.inp = b.inp
                dblock.inp2 = b.inp2
                dblock.inp3 = b.inp3
            } else {
                dblock.inp = UInt64(host.hostID)
                dblock.inp2 = host.generation
                dblock.inp3 = Clock.diskTimestamp(now)
            }
            dblock.bal = ourMbal
            phase = .phase2Write
            return .perform(.write([ourSector()]))
        }
        return commit(now: now)
    }

    private mutating func commit(now: Nanos) -> Step<Output> {
        var l = leader!
        l.lver = nextLver
        l.ownerID = dblock.inp
        l.ownerGeneration = dblock.inp2
        l.timestamp = dblock.inp3
        l.writeID = UInt64(host.hostID)
        l.writeGeneration = host.generation
        l.writeTimestamp = Clock.diskTimestamp(now)
        if options.shared && l.ownerID == UInt64(host.hostID) {
            l.flags |= LeaderRecord.flagShortHold
        } else {
            l.flags &= ~LeaderRecord.flagShortHold
        }
        committed = l
        decided = (l.lver, l.ownerID, l.ownerGeneration, l.timestamp)
        phase = .commitWrite
        return .perform(.write([SectorWrite(offset: layout.leaderOffset, bytes: l.sector(size: ss))]))
    }

    private mutating func afterCommit(now: Nanos) -> Step<Output> {
        leader = committed
        guard committed.ownerID == UInt64(host.hostID), committed.ownerGeneration == host.generation else {
            // We carried another host's value to commit; it is theirs.
            return finish(.failure(.acquiredByOther(ownerID: committed.ownerID, lver: committed.lver)))
        }
        if committed.lver == retractedLver { return ballotPastRetracted(committed, now: now) }
        if options.shared {
            phase = .sharedModeWrite
            var d = dblock
            d.flags = PaxosDblock.flagReleased
            return .perform(
                .write([ourSector(d, mode: ModeBlock(flags: ModeBlock.flagShared, generation: host.generation))]))
        }
        // Exclusive: shared holders that are not live are cleared; live ones refuse us.
        let candidates = sharedSeen.keys.sorted()
        if candidates.isEmpty { return finishExclusive(now: now) }
        phase = .sharedCheckRead
        return .perform(.read(candidates.map { IORange(offset: layout.dblockOffset(hostID: $0), length: ss) }))
    }

    private mutating func afterSharedCheck(_ reads: [[UInt8]], now: Nanos) -> Step<Output> {
        let candidates = sharedSeen.keys.sorted()
        var clear: [SectorWrite] = []
        var live: [Int] = []
        for (i, h) in candidates.enumerated() {
            let mode = ModeBlock(decoding: reads[i])
            guard mode.isShared else { continue }
            let s = context.state(of: h, now: now)
            let rejoined = (context.view.hosts[h]?.generation ?? 0) > mode.generation
            if s == .free || s == .dead || rejoined {
                clear.append(
                    SectorWrite(offset: layout.dblockOffset(hostID: h), bytes: [UInt8](repeating: 0, count: ss)))
            } else {
                live.append(h)
            }
        }
        if !live.isEmpty {
            // We won this version but may not use it: our block says RELEASED for it before
            // the leader is released, so it stays released even if the leader is later moved
            // back by a late commit and we ballot this version again (found by the spin model:
            // without it, a re-decided EX met an SH granted at the next version).
            pendingFailure = .sharedHolders(live)
            retractedLver = committed.lver
            var d = dblock
            d.flags = PaxosDblock.flagReleased
            dblock = d
            phase = .refusalRetractWrite
            return .perform(.write([ourSector(d)]))
        }
        if clear.isEmpty { return finishExclusive(now: now) }
        phase = .sharedClearWrite
        return .perform(.write(clear))
    }

    private mutating func finishExclusive(now: Nanos) -> Step<Output> {
        if options.convertFromShared {
            // Our SHARED mode block goes: we are exclusive now.
            phase = .convertFinishWrite
            return .perform(.write([ourSector(dblock, mode: ModeBlock())]))
        }
        return finish(.success(grant()))
    }

    /// Clears the leader timestamp if we wrote it (shared acquire, or refusing EX to live SH holders).
    private mutating func releaseLeader(_ sector: [UInt8], now: Nanos) -> Step<Output> {
        let l = LeaderRecord(decoding: sector)
        guard l.writeID == UInt64(host.hostID), l.lver == committed.lver else {
            if let f = pendingFailure { return finish(.failure(f)) }
            return finish(.success(grant()))
        }
        var r = l
        r.timestamp = 0
        r.flags &= ~LeaderRecord.flagShortHold
        r.writeID = UInt64(host.hostID)
        r.writeGeneration = host.generation
        r.writeTimestamp = Clock.diskTimestamp(now)
        leader = r
        phase = .leaderReleaseWrite
        return .perform(.write([SectorWrite(offset: layout.leaderOffset, bytes: r.sector(size: ss))]))
    }

    // MARK: - Aborts and failures

    private mutating func abortBallot(now: Nanos) -> Step<Output> {
        if ballots >= options.maxBallots { return retractThenFail(.contended(lver: nextLver, ballots: ballots)) }
        phase = .abortSleep
        let backoff = Nanos(rng.next() % UInt64(Clock.nanosPerSecond))
        return .perform(.sleep(until: now + backoff))
    }

    private mutating func afterRetryLeaderRead(_ sector: [UInt8], now: Nanos) -> Step<Output> {
        let l: LeaderRecord
        do {
            l = try LeaderRecord.verifyPaxos(
                sector, deviceOffset: layout.offset, space: resource.space, resource: resource.name)
        } catch {
            return finish(.failure(.leader(error)))
        }
        if l.lver == nextLver {
            if l.ownerID == UInt64(host.hostID) && l.ownerGeneration == host.generation {
                if l.lver == retractedLver { return ballotPastRetracted(l, now: now) }
                leader = l
                committed = l
                return afterCommit(now: now)
            }
            return finish(.failure(.acquiredByOther(ownerID: l.ownerID, lver: l.lver)))
        }
        if l.lver > nextLver || l != leader {
            return finish(.failure(.acquiredByOther(ownerID: l.ownerID, lver: l.lver)))
        }
        do {
            ourMbal = try nextBallot(above: ourMbal)
        } catch {
            return retractThenFail(.outOfRange(error))
        }
        return startBallot(now: now)
    }

    /// Our retracted value won its version: that version counts as released by us (others may
    /// act on the RELEASED flag), so we ballot for the next one like any other contender.
    private mutating func ballotPastRetracted(_ l: LeaderRecord, now: Nanos) -> Step<Output> {
        leader = l
        do {
            nextLver = try Checked.add(l.lver, 1, field: "leader lver", offset: layout.leaderOffset)
            ourMbal = try nextBallot(above: ourMbal)
        } catch {
            return finish(.failure(.outOfRange(error)))
        }
        return startBallot(now: now)
    }

    private mutating func ioFailed(_ e: BlockIOError, now: Nanos) -> Step<Output> {
        switch phase {
        case .phase2Write, .phase2Read, .commitWrite:
            // Our value may be on disk and be committed by someone else: mark it released.
            return retractThenFail(.io(e))
        case .rebuildRead:
            return retractThenFail(.membership(.io(e)))
        default:
            return finish(.failure(.io(e)))
        }
    }

    /// After a phase-2 write our value may live on; a RELEASED flag lets others take over
    /// (sanlock's T_RETRACT_PAXOS). Never after a corrupt read: nothing is written then. A
    /// convert keeps its SHARED mode block (rule 8): we still hold the lease shared.
    private mutating func retractThenFail(_ e: PaxosError) -> Step<Output> {
        if case .corruptDblock = e { return finish(.failure(e)) }
        guard dblock.bal != 0 else { return finish(.failure(e)) }
        pendingFailure = e
        var d = dblock
        d.flags = PaxosDblock.flagReleased
        phase = .retractWrite
        let mode: ModeBlock? = context.mutations.contains(.convertRetractWithoutShared) ? ModeBlock() : nil
        return .perform(.write([ourSector(d, mode: mode)]))
    }

    private mutating func finish(_ r: Output) -> Step<Output> {
        phase = .done
        return .finished(r)
    }

    // MARK: - Helpers

    private func grant() -> Grant {
        Grant(
            resource: resource, host: host, lver: committed.lver, shared: options.shared, leader: leader,
            dblock: dblock, dominated: context.dominated, ballots: ballots)
    }

    /// Our sector: dblock at 0, mode block at 128 (kept SHARED while converting from shared).
    private mutating func ourSector(_ d: PaxosDblock? = nil, mode: ModeBlock? = nil) -> SectorWrite {
        var bytes = [UInt8](repeating: 0, count: ss)
        var block = d ?? dblock
        if let prior = lastWritten {
            precondition(block.mbal >= prior.mbal && block.lver >= prior.lver, "our dblock would go back")
        }
        block.encode(into: &bytes)
        lastWritten = block
        let m =
            mode
            ?? (options.convertFromShared
                ? ModeBlock(flags: ModeBlock.flagShared, generation: host.generation) : ModeBlock())
        m.encode(into: &bytes)
        return SectorWrite(offset: layout.dblockOffset(hostID: host.hostID), bytes: bytes)
    }

    /// The read ranges' bytes by sector index within the area (the epoch sector, read last,
    /// is not part of it).
    private func sectorMap(_ reads: [[UInt8]]) -> [Int: [UInt8]] {
        var out: [Int: [UInt8]] = [:]
        for (range, bytes) in zip(plan.ranges, reads) {
            let first = Int((range.offset - layout.offset) / UInt64(ss))
            for i in 0..<(bytes.count / ss) { out[first + i] = Array(bytes[i * ss..<(i + 1) * ss]) }
        }
        return out
    }

    private func verifiedDblock(_ h: Int, _ sectors: [Int: [UInt8]]) -> Result<PaxosDblock, PaxosError> {
        let sector = sectors[h + 1]!
        let d = PaxosDblock(decoding: sector)
        if d.isEmpty { return .success(d) }
        let computed = CRC32C.sanlock(sector[0..<PaxosDblock.checksumLength])
        guard computed == d.checksum else {
            return .failure(
                .corruptDblock(
                    hostID: h, offset: layout.dblockOffset(hostID: h), stored: d.checksum, computed: computed))
        }
        return .success(d)
    }

    /// Rule 6: a left host's block read and found unable to carry the frontier or a value at
    /// it (all zero, or a present member's block is past it) is dropped from later reads.
    private mutating func noteDominated(_ hosts: [Int], _ sectors: [Int: [UInt8]]) {
        var left: [(host: Int, generation: UInt64, dblock: PaxosDblock)] = []
        var presentMax: UInt64? = nil
        for h in hosts {
            guard let s = sectors[h + 1] else { continue }
            let d = PaxosDblock(decoding: s)
            if case .left(let g, _)? = context.membership.slots[h] {
                left.append((h, g, d))
            } else {
                presentMax = max(presentMax ?? 0, d.lver)
            }
        }
        for l in left {
            let zero = l.dblock.isEmpty && l.dblock.flags == 0
            var beaten = false
            if let top = presentMax { beaten = top > l.dblock.lver || (top == l.dblock.lver && l.dblock.bal == 0) }
            if zero || beaten { context.dominated[l.host] = l.generation }
        }
    }
}
