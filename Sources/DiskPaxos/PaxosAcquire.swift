import DeltaLease
import DirectIO
import LeaseFormat

/// Acquiring a resource lease: sanlock's paxos_lease_acquire (SANLOCK-FORMAT.md §6.1, §6.3),
/// with the ballot's reads chosen by `ReadPlanner` from the live view.
///
/// Steps: read the planned set (leader, request record, our dblock, the dblocks of every host
/// not FREE or DEAD, and of FREE/DEAD hosts not yet shown stale); decide whether the lease may be
/// taken (free, ours, owner DEAD or gone, owner released); run Disk Paxos for lver + 1 with
/// mbal ≡ host_id (mod max_hosts): phase 1 write + read, choose the value of the highest bal,
/// phase 2 write + read, abort and retry with a higher mbal on a higher mbal or lver; commit the
/// leader. Shared leases commit with SHORT_HOLD, mark our mode block SHARED and release the
/// leader; exclusive leases clear dead shared holders and refuse live ones.
///
/// Safety rules enforced here: the view is at most viewMaxAge old at ballot start (3), a ballot
/// longer than ballotMaxDuration never commits (4), no ballot before the join wait (5), a
/// corrupt dblock stops the acquire before anything more is written.
public struct PaxosAcquire: LeaseOperation {
    public struct Options: Sendable, Hashable {
        public var shared = false
        /// Try-acquire: fail at once with `.held` when a live host holds it.
        public var noWait = false
        /// Acquire only if the lease is at this version (sanlock's RESOURCE:lver).
        public var requiredLver: UInt64? = nil
        /// We hold it shared and convert to exclusive: keep our SHARED mode block while balloting.
        public var convertFromShared = false
        /// Give up after this many aborted ballots.
        public var maxBallots = 16
        /// The highest mbal this host has written for this resource (in any earlier acquire of
        /// this incarnation). A timed-out write may land after a later read, so the disk alone
        /// cannot tell us; ballots never go below it.
        public var minimumMbal: UInt64 = 0
        public init(shared: Bool = false, noWait: Bool = false, requiredLver: UInt64? = nil,
                    convertFromShared: Bool = false, maxBallots: Int = 16) {
            self.shared = shared
            self.noWait = noWait
            self.requiredLver = requiredLver
            self.convertFromShared = convertFromShared
            self.maxBallots = maxBallots
        }
    }
    public typealias Output = Result<Grant, PaxosError>

    let resource: PaxosResource
    let host: PaxosHost
    let timeouts: Timeouts
    let options: Options
    var context: BallotContext
    var rng: SplitMix64

    private var phase = Phase.initialRead
    private var plan = ReadPlan(ranges: [], hostIDs: [], mode: .full)
    private var leader: LeaderRecord! = nil
    private var nextLver: UInt64 = 0
    private var ourMbal: UInt64 = 0
    private var dblock = PaxosDblock()
    private var ballotStart: Nanos = 0
    private var ballots = 0
    private var sharedSeen: [Int: ModeBlock] = [:]
    private var committed: LeaderRecord! = nil
    private var pendingFailure: PaxosError? = nil
    /// The version an earlier acquire of ours gave up on after its phase-2 write (its dblock
    /// still says RELEASED for it): others may take over that version if it is committed in
    /// our name, so we must never be granted it; we go on to the next version instead.
    private var retractedLver: UInt64 = 0

    /// The value this acquire decided for a version, set the moment it issues the commit write
    /// (a decided value may still be lost with the write; checkers compare decisions per lver).
    public private(set) var decided: (lver: UInt64, ownerID: UInt64, generation: UInt64, timestamp: UInt64)? = nil
    /// Blocks shown stale so far (rule 2), also when the acquire fails.
    public var verifiedStale: [Int: HostIncarnation] { context.verifiedStale }
    /// The highest mbal this acquire wrote (carry it into the next one as `minimumMbal`).
    public private(set) var highestMbal: UInt64 = 0

    /// When the current ballot started (after the initial read), on the caller's clock.
    public var ballotStartedAt: Nanos { ballotStart }
    /// True while the phase-2 write (our accepted value) is the pending action.
    public var writingPhase2: Bool { phase == .phase2Write }

    enum Phase {
        case initialRead, phase1Write, phase1Read, phase2Write, phase2Read, commitWrite
        case sharedCheckRead, sharedClearWrite, sharedModeWrite, leaderReleaseRead, leaderReleaseWrite
        case convertFinishWrite, abortSleep, retryLeaderRead, retractWrite, done
    }

    public init(resource: PaxosResource, host: PaxosHost, context: BallotContext, timeouts: Timeouts,
                options: Options = Options(), seed: UInt64) {
        precondition((1...resource.layout.geometry.maxHosts).contains(host.hostID))
        self.resource = resource
        self.host = host
        self.context = context
        self.timeouts = timeouts
        self.options = options
        self.rng = SplitMix64(seed: seed)
    }

    var layout: AreaLayout { resource.layout }
    var ss: Int { layout.geometry.sectorSize }
    var maxHosts: UInt64 { UInt64(layout.geometry.maxHosts) }

    // MARK: - Steps

    public mutating func start(now: Nanos) -> Step<Output> {
        if let refusal = preconditionsForBallots(now: now) { return finish(.failure(refusal)) }
        // num_hosts is not known before the leader is read; plan with the geometry's maximum
        // and re-plan once the leader says how many dblocks are in use.
        plan = makePlan(numHosts: layout.geometry.maxHosts, now: now)
        phase = .initialRead
        return .perform(.read(plan.ranges))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result {
            return ioFailed(e, now: now)
        }
        switch phase {
        case .initialRead:
            return afterInitialRead(result.reads, now: now)
        case .phase1Write:
            phase = .phase1Read
            return .perform(.read(plan.ranges))
        case .phase1Read:
            return afterPhaseRead(result.reads, phase2: false, now: now)
        case .phase2Write:
            phase = .phase2Read
            return .perform(.read(plan.ranges))
        case .phase2Read:
            return afterPhaseRead(result.reads, phase2: true, now: now)
        case .commitWrite:
            return afterCommit(now: now)
        case .sharedCheckRead:
            return afterSharedCheck(result.reads, now: now)
        case .sharedClearWrite:
            return finishExclusive(now: now)
        case .sharedModeWrite:
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
        case .done:
            preconditionFailure("resumed after finishing")
        }
    }

    // MARK: - Deciding

    /// Rules 3 and 5, checked before any ballot write.
    private func preconditionsForBallots(now: Nanos) -> PaxosError? {
        let joinWait = context.mutations.contains(.joinWaitEqualsBound)
            ? timeouts.viewMaxAgeSeconds + timeouts.ballotMaxDurationSeconds : timeouts.joinWaitSeconds
        if !context.mutations.contains(.noJoinWait), now - context.joinedAt < Clock.seconds(joinWait) {
            return .joinWaitPending(until: context.joinedAt + Clock.seconds(joinWait))
        }
        if !context.mutations.contains(.noViewAgeCheck) {
            guard let age = context.view.age(now: now) else { return .viewTooOld(ageNanos: .max) }
            if age > Clock.seconds(timeouts.viewMaxAgeSeconds) { return .viewTooOld(ageNanos: age) }
        }
        return nil
    }

    private func makePlan(numHosts: Int, now: Nanos) -> ReadPlan {
        ReadPlanner.plan(layout: layout, numHosts: numHosts, hostIDs: context.dblockHosts(now: now), mode: context.effectiveMode)
    }

    private mutating func afterInitialRead(_ reads: [[UInt8]], now: Nanos) -> Step<Output> {
        let sectors = sectorMap(reads)
        let l: LeaderRecord
        do {
            l = try LeaderRecord.verifyPaxos(sectors[0]!, deviceOffset: layout.offset, space: resource.space,
                                             resource: resource.name, hostID: UInt64(host.hostID))
        } catch {
            return finish(.failure(.leader(error)))
        }
        if let g = try? l.geometry(deviceOffset: layout.offset), g != layout.geometry {
            return finish(.failure(.geometryMismatch(offset: layout.offset, expected: "\(layout.geometry)", found: "\(g)")))
        }
        leader = l
        // The plan assumed max_hosts dblocks; num_hosts may be smaller (fewer blocks examined).
        let numHosts = Int(l.numHosts)
        let examined = plan.hostIDs.filter { $0 <= numHosts }
        var maxMbal: UInt64 = 0
        for h in examined {
            let d: PaxosDblock
            switch verifiedDblock(h, sectors) {
            case .success(let v): d = v
            case .failure(let e): return finish(.failure(e))
            }
            maxMbal = max(maxMbal, d.mbal)
            if h == host.hostID { dblock = d }
        }
        if dblock.lver > l.lver + 1 {
            return finish(.failure(.leaderBehind(leaderLver: l.lver, dblockLver: dblock.lver)))
        }
        if dblock.isReleased && dblock.bal != 0 && dblock.lver == l.lver + 1 { retractedLver = dblock.lver }
        plan = makePlan(numHosts: numHosts, now: now)

        if let required = options.requiredLver, required != l.lver {
            return finish(.failure(.lverMismatch(required: required, current: l.lver)))
        }
        if l.timestamp != 0 && l.ownerID != UInt64(host.hostID) {
            if let refusal = ownerRefusal(l, sectors: sectors, now: now) { return finish(.failure(refusal)) }
        }
        maxMbal = max(maxMbal, options.minimumMbal)
        ourMbal = maxMbal == 0 ? UInt64(host.hostID) : (maxMbal - maxMbal % maxHosts) + maxHosts + UInt64(host.hostID)
        nextLver = l.lver + 1
        return startBallot(now: now)
    }

    /// nil when the owner may be replaced: its host id is FREE or rejoined with a newer
    /// generation, it is DEAD in our view, or it released (RELEASED dblock) after another host
    /// committed it.
    private func ownerRefusal(_ l: LeaderRecord, sectors: [Int: [UInt8]], now: Nanos) -> PaxosError? {
        let owner = Int(l.ownerID)
        guard owner >= 1, owner <= layout.geometry.maxHosts else { return nil }
        let state = context.state(of: owner, now: now)
        if state == .free || state == .dead { return nil }
        if let o = context.view.hosts[owner], o.generation > l.ownerGeneration { return nil }
        if l.writeID != l.ownerID, let s = sectors[owner + 1], PaxosDblock(decoding: s).isReleased { return nil }
        return .held(ownerID: l.ownerID, generation: l.ownerGeneration, lver: l.lver, ownerState: state)
    }

    private mutating func startBallot(now: Nanos) -> Step<Output> {
        if let refusal = preconditionsForBallots(now: now) { return finish(.failure(refusal)) }
        ballots += 1
        ballotStart = now
        assert(ourMbal % maxHosts == UInt64(host.hostID) % maxHosts, "ballot number not ≡ host_id")
        assert(ourMbal > options.minimumMbal || options.minimumMbal == 0, "mbal went backwards")
        assert(ourMbal >= dblock.mbal, "mbal went backwards")
        highestMbal = max(highestMbal, ourMbal)
        assert(nextLver >= dblock.lver || dblock.lver == 0, "lver went backwards")
        // Disk Paxos keeps a host's accepted value (bal, inp) across its ballots for the same
        // instance. sanlock's phase 1 zeroes them; then a host whose decided value's commit
        // write timed out (and may still land) can decide a second value for the same lver.
        // The simulator found exactly that (seed 11); a kept value is ordinary Disk Paxos
        // state to sanlock readers.
        let keep = dblock.lver == nextLver && dblock.bal != 0 && dblock.inp != 0
        dblock = PaxosDblock(mbal: ourMbal, bal: keep ? dblock.bal : 0, inp: keep ? dblock.inp : 0,
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
        // or clear shared holders (the simulator found the gap, seed 505 of the join storm).
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
        // The leader is in every planned read: if this version (or a later one) is already
        // committed, stop balloting and let the retry path look at the leader.
        if let leaderSector = sectors[0] {
            let l = LeaderRecord(decoding: leaderSector)
            if l.magic == LeaderRecord.paxosMagic && l.lver >= nextLver { return abortBallot(now: now) }
        }
        var bkMax: PaxosDblock? = nil
        for (h, d) in blocks {
            noteStaleIfDead(h, d, now: now)
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
        // Rule 4: an overlong ballot must not commit; others may have moved on without us.
        if !context.mutations.contains(.noBallotBound), now - ballotStart > Clock.seconds(timeouts.ballotMaxDurationSeconds) {
            return retractThenFail(.ballotTooLong(lver: nextLver))
        }
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
            return .perform(.write([ourSector(d, mode: ModeBlock(flags: ModeBlock.flagShared, generation: host.generation))]))
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
                clear.append(SectorWrite(offset: layout.dblockOffset(hostID: h), bytes: [UInt8](repeating: 0, count: ss)))
            } else {
                live.append(h)
            }
        }
        if !live.isEmpty {
            pendingFailure = .sharedHolders(live)
            phase = .leaderReleaseRead
            return .perform(.read([IORange(offset: layout.leaderOffset, length: ss)]))
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
            l = try LeaderRecord.verifyPaxos(sector, deviceOffset: layout.offset, space: resource.space, resource: resource.name)
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
        ourMbal += maxHosts
        return startBallot(now: now)
    }

    /// Our retracted value won its version: that version counts as released by us (others may
    /// act on the RELEASED flag), so we ballot for the next one like any other contender.
    private mutating func ballotPastRetracted(_ l: LeaderRecord, now: Nanos) -> Step<Output> {
        leader = l
        nextLver = l.lver + 1
        ourMbal += maxHosts
        return startBallot(now: now)
    }

    private mutating func ioFailed(_ e: BlockIOError, now: Nanos) -> Step<Output> {
        switch phase {
        case .phase2Write, .phase2Read, .commitWrite:
            // Our value may be on disk and be committed by someone else: mark it released.
            return retractThenFail(.io(e))
        default:
            return finish(.failure(.io(e)))
        }
    }

    /// After a phase-2 write our value may live on; a RELEASED flag lets others take over
    /// (sanlock's T_RETRACT_PAXOS). Never after a corrupt read: nothing is written then.
    private mutating func retractThenFail(_ e: PaxosError) -> Step<Output> {
        if case .corruptDblock = e { return finish(.failure(e)) }
        guard dblock.bal != 0 else { return finish(.failure(e)) }
        pendingFailure = e
        var d = dblock
        d.flags = PaxosDblock.flagReleased
        phase = .retractWrite
        return .perform(.write([ourSector(d, mode: ModeBlock())]))
    }

    private mutating func finish(_ r: Output) -> Step<Output> {
        phase = .done
        return .finished(r)
    }

    // MARK: - Helpers

    private func grant() -> Grant {
        Grant(resource: resource, host: host, lver: committed.lver, shared: options.shared, leader: leader,
              dblock: dblock, verifiedStale: context.verifiedStale, ballots: ballots)
    }

    /// Our sector: dblock at 0, mode block at 128 (kept SHARED while converting from shared).
    private func ourSector(_ d: PaxosDblock? = nil, mode: ModeBlock? = nil) -> SectorWrite {
        var bytes = [UInt8](repeating: 0, count: ss)
        var block = d ?? dblock
        block.encode(into: &bytes)
        let m = mode ?? (options.convertFromShared ? ModeBlock(flags: ModeBlock.flagShared, generation: host.generation) : ModeBlock())
        m.encode(into: &bytes)
        return SectorWrite(offset: layout.dblockOffset(hostID: host.hostID), bytes: bytes)
    }

    /// The read ranges' bytes by sector index within the area.
    private func sectorMap(_ reads: [[UInt8]]) -> [Int: [UInt8]] {
        var out: [Int: [UInt8]] = [:]
        for (range, bytes) in zip(plan.ranges.isEmpty ? [] : plan.ranges, reads) {
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
            return .failure(.corruptDblock(hostID: h, offset: layout.dblockOffset(hostID: h), stored: d.checksum, computed: computed))
        }
        return .success(d)
    }

    /// Rule 2: a FREE or DEAD host's block read and found unable to hold a value for the
    /// version being decided (lver below it, or bal 0) is dropped from later reads.
    private mutating func noteStaleIfDead(_ h: Int, _ d: PaxosDblock, now: Nanos) {
        guard h != host.hostID, let o = context.view.hosts[h] else { return }
        let s = context.state(of: h, now: now)
        guard s == .free || s == .dead else { return }
        if d.lver < nextLver || d.bal == 0 {
            context.verifiedStale[h] = HostIncarnation(generation: o.generation, timestamp: o.timestamp)
        }
    }
}

extension IOResult {
    var reads: [[UInt8]] {
        guard case .read(let r) = self else { preconditionFailure("expected a read result") }
        return r
    }
}
