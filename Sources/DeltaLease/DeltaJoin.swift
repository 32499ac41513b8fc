import DirectIO
import LeaseFormat

/// Acquiring a host id in a lockspace (sanlock's delta lease acquire, SANLOCK-FORMAT.md §4.4):
/// read the slot; if another name holds it, wait host_dead_seconds and require it unchanged;
/// write our record with generation + 1; wait 2·io_timeout; read back and require our bytes.
public struct DeltaJoin: LeaseOperation {
    public struct Joined: Sendable, Hashable {
        public var generation: UInt64
        /// The record we wrote (and read back).
        public var record: LeaderRecord
        /// When our write was on disk, on our clock: the join wait counts from here.
        public var writtenAt: Nanos
    }
    public typealias Output = Result<Joined, DeltaError>

    let layout: AreaLayout
    let space: String
    let hostID: Int
    let hostName: String
    let timeouts: Timeouts
    private var phase = Phase.firstRead
    private var firstRead: [UInt8] = []
    private var written: [UInt8] = []
    private var writtenRecord: LeaderRecord? = nil
    private var writtenAt: Nanos = 0

    enum Phase { case firstRead, heldWait, secondRead, write, shortDelay, verifyRead, done }

    public init(layout: AreaLayout, space: String, hostID: Int, hostName: String, timeouts: Timeouts) {
        precondition((1...layout.geometry.maxHosts).contains(hostID))
        self.layout = layout
        self.space = space
        self.hostID = hostID
        self.hostName = hostName
        self.timeouts = timeouts
    }

    var offset: UInt64 { layout.deltaOffset(hostID: hostID) }
    var slot: IORange { IORange(offset: offset, length: layout.geometry.sectorSize) }

    public mutating func start(now: Nanos) -> Step<Output> {
        guard !hostName.isEmpty, hostName.utf8.count <= LeaseName.hostNameMax else {
            return .finished(.failure(.badHostName(hostName)))
        }
        phase = .firstRead
        return .perform(.read([slot]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        switch phase {
        case .firstRead:
            guard case .read(let b) = result else { preconditionFailure("expected a read") }
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
            let wait = max(Timeouts.hostDeadSeconds(ioTimeout: other, watchdog: timeouts.watchdogFireSeconds), 8 * other)
            phase = .heldWait
            return .perform(.sleep(until: now + Clock.seconds(wait)))
        case .heldWait:
            phase = .secondRead
            return .perform(.read([slot]))
        case .secondRead:
            guard case .read(let b) = result else { preconditionFailure("expected a read") }
            let now2 = LeaderRecord(decoding: b[0])
            let unchanged = b[0][0..<LeaderRecord.size] == firstRead[0..<LeaderRecord.size]
            guard unchanged || now2.timestamp == 0 else {
                return .finished(.failure(.hostIDBusy(hostID: hostID, holder: now2.resourceName)))
            }
            let record: LeaderRecord
            do {
                record = try LeaderRecord.verifyDelta(b[0], deviceOffset: offset, space: space)
            } catch {
                return .finished(.failure(.format(error)))
            }
            return write(from: record, now: now)
        case .write:
            writtenAt = now
            phase = .shortDelay
            let other = timeouts.ioTimeoutSeconds
            return .perform(.sleep(until: now + Clock.seconds(2 * other)))
        case .shortDelay:
            phase = .verifyRead
            return .perform(.read([slot]))
        case .verifyRead:
            guard case .read(let b) = result else { preconditionFailure("expected a read") }
            guard b[0] == written else {
                return .finished(.failure(.hostIDBusy(hostID: hostID, holder: LeaderRecord(decoding: b[0]).resourceName)))
            }
            phase = .done
            return .finished(.success(Joined(generation: writtenRecord!.ownerGeneration, record: writtenRecord!, writtenAt: writtenAt)))
        case .done:
            preconditionFailure("resumed after finishing")
        }
    }

    private mutating func write(from disk: LeaderRecord, now: Nanos) -> Step<Output> {
        var r = disk
        r.timestamp = Clock.diskTimestamp(now)
        r.ioTimeout = UInt16(timeouts.ioTimeoutSeconds)
        r.ownerID = UInt64(hostID)
        r.ownerGeneration = disk.ownerGeneration + 1
        r.resourceName = hostName
        written = r.sector(size: layout.geometry.sectorSize)
        r.checksum = LeaderRecord(decoding: written).checksum
        writtenRecord = r
        phase = .write
        return .perform(.write([SectorWrite(offset: offset, bytes: written)]))
    }
}
