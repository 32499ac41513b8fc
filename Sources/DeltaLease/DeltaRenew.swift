import DirectIO
import LeaseFormat

/// One renewal (SANLOCK-FORMAT.md §4.5): read the whole lockspace area in one I/O (which also
/// refreshes the live view), check our record is still ours and unchanged, write it back with a
/// new timestamp and our notification bitmap.
public struct DeltaRenew: LeaseOperation {
    public struct Renewed: Sendable {
        public var record: LeaderRecord
        /// The renewal timestamp's time on our clock (start of the renewal, as sanlock's
        /// last_success): fencing deadlines count from here.
        public var renewedAt: Nanos
        /// The area as read, for the live view and for request bits addressed to us.
        public var snapshot: AreaSnapshot
    }
    public typealias Output = Result<Renewed, DeltaError>

    let layout: AreaLayout
    let space: String
    let hostID: Int
    let last: LeaderRecord
    let bitmap: HostBitmap
    let timeouts: Timeouts
    /// Events ride in the write_* fields (sanlock's set_event); zero when none.
    let event: (generation: UInt64, event: UInt64, data: UInt64)
    /// Whether the previous renewal succeeded: only then must the record be exactly what we
    /// wrote (a timed-out write may have landed after all, or not).
    let previousSucceeded: Bool
    private var startedAt: Nanos = 0
    private var area: [UInt8] = []
    private var readAt: Nanos = 0
    private var record: LeaderRecord? = nil

    /// `last` is the record our previous renewal (or join) wrote.
    public init(layout: AreaLayout, space: String, hostID: Int, last: LeaderRecord, timeouts: Timeouts,
                previousSucceeded: Bool = true, bitmap: HostBitmap = HostBitmap(),
                event: (UInt64, UInt64, UInt64) = (0, 0, 0)) {
        self.previousSucceeded = previousSucceeded
        self.layout = layout
        self.space = space
        self.hostID = hostID
        self.last = last
        self.bitmap = bitmap
        self.timeouts = timeouts
        self.event = event
    }

    var offset: UInt64 { layout.deltaOffset(hostID: hostID) }

    public mutating func start(now: Nanos) -> Step<Output> {
        startedAt = now
        return .perform(.read([IORange(offset: layout.offset, length: layout.geometry.alignSize)]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        if let record {
            return .finished(.success(Renewed(record: record, renewedAt: startedAt,
                                                       snapshot: AreaSnapshot(bytes: area, issuedAt: startedAt, completedAt: readAt))))
        }
        guard case .read(let b) = result else { preconditionFailure("expected a read") }
        area = b[0]
        readAt = now
        let at = (hostID - 1) * layout.geometry.sectorSize
        let mine: LeaderRecord
        do {
            mine = try LeaderRecord.verifyDelta(area, at: at, deviceOffset: offset, space: space)
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
        return .perform(.write([SectorWrite(offset: offset, bytes: sector)]))
    }
}

/// Leaving a lockspace (sanlock's rem_lockspace): our last record again with timestamp 0.
public struct DeltaLeave: LeaseOperation {
    public typealias Output = Result<LeaderRecord, DeltaError>

    let layout: AreaLayout
    let hostID: Int
    let last: LeaderRecord

    public init(layout: AreaLayout, hostID: Int, last: LeaderRecord) {
        self.layout = layout
        self.hostID = hostID
        self.last = last
    }

    public mutating func start(now: Nanos) -> Step<Output> {
        var r = last
        r.timestamp = 0
        return .perform(.write([SectorWrite(offset: layout.deltaOffset(hostID: hostID), bytes: r.sector(size: layout.geometry.sectorSize))]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        var r = last
        r.timestamp = 0
        return .finished(.success(r))
    }
}

/// An on-demand read of the whole lockspace area for the live view (rule 3: a ballot needs a
/// view no older than viewMaxAge, and the renewal schedule alone may leave it older).
public struct ViewRefresh: LeaseOperation {
    public typealias Output = Result<AreaSnapshot, DeltaError>
    let layout: AreaLayout
    private var issuedAt: Nanos = 0

    public init(layout: AreaLayout) { self.layout = layout }

    public mutating func start(now: Nanos) -> Step<Output> {
        issuedAt = now
        return .perform(.read([IORange(offset: layout.offset, length: layout.geometry.alignSize)]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        switch result {
        case .read(let r): return .finished(.success(AreaSnapshot(bytes: r[0], issuedAt: issuedAt, completedAt: now)))
        case .failed(let e): return .finished(.failure(.io(e)))
        case .written, .slept: preconditionFailure("expected a read")
        }
    }
}
