import DirectIO
import LeaseFormat

/// One renewal (SANLOCK-FORMAT.md §4.5), reading only what it needs (docs/AGREEMENT.md,
/// "Costs"): our own slot, the epoch sector and the slots the caller watches, in one batch;
/// then, if our record is still ours and unchanged, our record again with a new timestamp and
/// our notification bitmap. sanlock reads the whole area here; a changed epoch tells the
/// caller to read it (`MembershipScan`).
public struct DeltaRenew: LeaseOperation {
    public struct Renewed: Sendable {
        public var record: LeaderRecord
        /// The renewal timestamp's time on our clock (start of the renewal, as sanlock's
        /// last_success): fencing deadlines count from here.
        public var renewedAt: Nanos
        /// The epoch as read in this renewal.
        public var epoch: EpochStamp
        /// Every slot read (ours and the watched ones), by host id.
        public var slots: [Int: [UInt8]]
        /// When the read completed (changes seen in it are dated here).
        public var readCompletedAt: Nanos
    }
    public typealias Output = Result<Renewed, DeltaError>

    let layout: AreaLayout
    let space: String
    let hostID: Int
    let last: LeaderRecord
    let bitmap: HostBitmap
    let timeouts: Timeouts
    let watch: [Int]
    /// Events ride in the write_* fields (sanlock's set_event); zero when none.
    let event: (generation: UInt64, event: UInt64, data: UInt64)
    /// Whether the previous renewal succeeded: only then must the record be exactly what we
    /// wrote (a timed-out write may have landed after all, or not).
    let previousSucceeded: Bool
    private var startedAt: Nanos = 0
    private var readAt: Nanos = 0
    private var record: LeaderRecord? = nil
    private var epoch = EpochStamp.initial
    private var slots: [Int: [UInt8]] = [:]
    private var hostsRead: [Int] = []

    /// `last` is the record our previous renewal (or join) wrote; `watch` the other slots to
    /// read (owners we wait for, or every member on a scan).
    public init(
        layout: AreaLayout, space: String, hostID: Int, last: LeaderRecord, timeouts: Timeouts,
        previousSucceeded: Bool = true, bitmap: HostBitmap = HostBitmap(), watch: [Int] = [],
        event: (UInt64, UInt64, UInt64) = (0, 0, 0)
    ) {
        self.previousSucceeded = previousSucceeded
        self.layout = layout
        self.space = space
        self.hostID = hostID
        self.last = last
        self.bitmap = bitmap
        self.timeouts = timeouts
        self.watch = watch
        self.event = event
    }

    var offset: UInt64 { layout.deltaOffset(hostID: hostID) }

    public mutating func start(now: Nanos) -> Step<Output> {
        startedAt = now
        let ss = layout.geometry.sectorSize
        hostsRead = Array(Set(watch + [hostID]).filter { (1...layout.geometry.maxHosts).contains($0) }).sorted()
        let ranges =
            hostsRead.map { IORange(offset: layout.deltaOffset(hostID: $0), length: ss) }
            + [IORange(offset: layout.epochOffset, length: ss)]
        return .perform(.read(ranges))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        if let record {
            return .finished(
                .success(
                    Renewed(
                        record: record, renewedAt: startedAt, epoch: epoch, slots: slots,
                        readCompletedAt: readAt)))
        }
        let b = result.reads
        readAt = now
        for (i, h) in hostsRead.enumerated() { slots[h] = b[i] }
        epoch = EpochStamp(sector: b[hostsRead.count])
        let mine: LeaderRecord
        do {
            mine = try LeaderRecord.verifyDelta(slots[hostID]!, deviceOffset: offset, space: space)
        } catch {
            return .finished(.failure(.format(error)))
        }
        guard mine.ownerID == last.ownerID, mine.ownerGeneration == last.ownerGeneration,
            mine.resourceName == last.resourceName
        else { return .finished(.failure(.renewOwner(hostID: hostID, offset: offset))) }
        if previousSucceeded && mine != last {
            return .finished(.failure(.renewDiff(hostID: hostID, offset: offset)))
        }
        var r = mine
        r.timestamp = Clock.diskTimestamp(startedAt)
        r.ioTimeout = UInt16(timeouts.ioTimeoutSeconds)
        r.writeID = event.generation
        r.writeGeneration = event.event
        r.writeTimestamp = event.data
        var sector = r.sector(size: layout.geometry.sectorSize)
        bitmap.encode(into: &sector)
        r.checksum = LeaderRecord(decoding: sector).checksum
        record = r
        slots[hostID] = sector
        return .perform(.write([SectorWrite(offset: offset, bytes: sector)]))
    }
}
