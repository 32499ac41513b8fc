import DirectIO
import LeaseFormat

/// Acquiring a host id in a lockspace: sanlock's delta lease acquire (SANLOCK-FORMAT.md §4.4)
/// plus the membership epoch (docs/AGREEMENT.md rule 4).
///
/// Steps: read the slot (and the epoch); if another name holds it, wait host_dead_seconds and
/// require it unchanged; write our record with generation + 1; **once that write completed**,
/// write the epoch with a fresh token; wait 2·io_timeout from the delta write; read the whole
/// lockspace area, require our record unchanged, and build the membership from that read,
/// labelled with our own token. Ballots may start as soon as this returns.
public struct DeltaJoin: LeaseOperation {
    public struct Joined: Sendable {
        public var generation: UInt64
        /// The record we wrote (and read back).
        public var record: LeaderRecord
        /// When our delta write was on disk, on our clock.
        public var writtenAt: Nanos
        /// Who is in the lockspace, as of our own epoch write.
        public var membership: Membership
        /// The area as read after the wait, for the live view.
        public var snapshot: AreaSnapshot
    }
    public typealias Output = Result<Joined, DeltaError>

    let layout: AreaLayout
    let space: String
    let hostID: Int
    let hostName: String
    let timeouts: Timeouts
    let nonce: UInt64
    let mutations: SafetyMutations
    private var phase = Phase.firstRead
    private var firstRead: [UInt8] = []
    private var epochSeen = EpochStamp.initial
    private var written: [UInt8] = []
    private var writtenRecord: LeaderRecord? = nil
    private var writtenAt: Nanos = 0
    private var ourEpoch = EpochStamp.initial
    private var areaIssuedAt: Nanos = 0

    enum Phase { case firstRead, heldWait, secondRead, deltaWrite, epochWrite, shortDelay, areaRead, done }

    /// `nonce` is the epoch token's random part, drawn by the caller for this attempt.
    public init(
        layout: AreaLayout, space: String, hostID: Int, hostName: String, timeouts: Timeouts,
        nonce: UInt64, mutations: SafetyMutations = []
    ) {
        precondition((1...layout.geometry.maxHosts).contains(hostID))
        self.layout = layout
        self.space = space
        self.hostID = hostID
        self.hostName = hostName
        self.timeouts = timeouts
        self.nonce = nonce
        self.mutations = mutations
    }

    var offset: UInt64 { layout.deltaOffset(hostID: hostID) }
    var ss: Int { layout.geometry.sectorSize }
    var slot: IORange { IORange(offset: offset, length: ss) }
    var epochRange: IORange { IORange(offset: layout.epochOffset, length: ss) }

    public mutating func start(now: Nanos) -> Step<Output> {
        guard !hostName.isEmpty, hostName.utf8.count <= LeaseName.hostNameMax else {
            return .finished(.failure(.badHostName(hostName)))
        }
        phase = .firstRead
        return .perform(.read([slot, epochRange]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        switch phase {
        case .firstRead:
            let b = result.reads
            epochSeen = EpochStamp(sector: b[1])
            let record: LeaderRecord
            do {
                record = try LeaderRecord.verifyDelta(b[0], deviceOffset: offset, space: space)
            } catch {
                return .finished(.failure(.format(error)))
            }
            firstRead = b[0]
            if record.timestamp == 0 || record.resourceName == hostName {
                return write(from: record, now: now)
            }
            // Held, or left stale, by another name: it must stay unchanged for as long as a
            // live holder would take to be reset by its watchdog.
            let other = record.ioTimeout > 0 ? Int(record.ioTimeout) : timeouts.ioTimeoutSeconds
            let wait = max(
                Timeouts.hostDeadSeconds(ioTimeout: other, watchdog: timeouts.watchdogFireSeconds), 8 * other)
            phase = .heldWait
            return .perform(.sleep(until: now + Clock.seconds(wait)))
        case .heldWait:
            phase = .secondRead
            return .perform(.read([slot, epochRange]))
        case .secondRead:
            let b = result.reads
            epochSeen = EpochStamp(sector: b[1])
            let again = LeaderRecord(decoding: b[0])
            let unchanged = b[0][0..<LeaderRecord.size] == firstRead[0..<LeaderRecord.size]
            guard unchanged || again.timestamp == 0 else {
                return .finished(.failure(.hostIDBusy(hostID: hostID, holder: again.resourceName)))
            }
            let record: LeaderRecord
            do {
                record = try LeaderRecord.verifyDelta(b[0], deviceOffset: offset, space: space)
            } catch {
                return .finished(.failure(.format(error)))
            }
            return write(from: record, now: now)
        case .deltaWrite:
            // The epoch only now: a host that reads our new epoch must find our slot written.
            writtenAt = now
            phase = .epochWrite
            return .perform(.write([epochWrite()]))
        case .epochWrite:
            if mutations.contains(.epochWithDelta) { writtenAt = now }
            phase = .shortDelay
            return .perform(.sleep(until: writtenAt + Clock.seconds(timeouts.deltaShortDelaySeconds)))
        case .shortDelay:
            phase = .areaRead
            areaIssuedAt = now
            return .perform(.read([IORange(offset: layout.offset, length: layout.slotsLength)]))
        case .areaRead:
            return finishJoin(result.reads[0], now: now)
        case .done:
            preconditionFailure("resumed after finishing")
        }
    }

    private mutating func finishJoin(_ area: [UInt8], now: Nanos) -> Step<Output> {
        let mine = Array(area[(hostID - 1) * ss..<hostID * ss])
        guard mine == written else {
            return .finished(.failure(.hostIDBusy(hostID: hostID, holder: LeaderRecord(decoding: mine).resourceName)))
        }
        phase = .done
        // Labelled with our own token: this read was issued after our epoch write completed,
        // so every joiner whose epoch landed before ours is in it (rule 1).
        let membership = Membership(epoch: ourEpoch, slotBytes: area, layout: layout, space: space)
        let record = writtenRecord!
        return .finished(
            .success(
                Joined(
                    generation: record.ownerGeneration, record: record, writtenAt: writtenAt,
                    membership: membership,
                    snapshot: AreaSnapshot(bytes: area, issuedAt: areaIssuedAt, completedAt: now))))
    }

    private func epochWrite() -> SectorWrite {
        let w =
            mutations.contains(.epochCounter)
            ? counterEpochSector(after: epochSeen, space: space, layout: layout)
            : epochSector(
                space: space, hostID: hostID, generation: writtenRecord!.ownerGeneration, kind: .join,
                nonce: nonce, layout: layout)
        return w
    }

    private mutating func write(from disk: LeaderRecord, now: Nanos) -> Step<Output> {
        let generation: UInt64
        do {
            generation = try Checked.add(disk.ownerGeneration, 1, field: "generation", offset: offset)
        } catch {
            return .finished(.failure(.format(error)))
        }
        var r = disk
        r.timestamp = Clock.diskTimestamp(now)
        r.ioTimeout = UInt16(timeouts.ioTimeoutSeconds)
        r.ownerID = UInt64(hostID)
        r.ownerGeneration = generation
        r.resourceName = hostName
        written = r.sector(size: ss)
        r.checksum = LeaderRecord(decoding: written).checksum
        writtenRecord = r
        let epoch = epochWrite()
        ourEpoch = EpochStamp(sector: epoch.bytes)
        if mutations.contains(.epochWithDelta) {
            // Mutant: both in one submit, so they may land in either order.
            phase = .epochWrite
            return .perform(.write([SectorWrite(offset: offset, bytes: written), epoch]))
        }
        phase = .deltaWrite
        return .perform(.write([SectorWrite(offset: offset, bytes: written)]))
    }
}

extension IOResult {
    /// The bytes of a read result (a programming error otherwise).
    public var reads: [[UInt8]] {
        guard case .read(let r) = self else { preconditionFailure("expected a read result") }
        return r
    }
}
