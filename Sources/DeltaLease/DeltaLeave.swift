import DirectIO
import LeaseFormat

/// Leaving a lockspace (sanlock's rem_lockspace, then the epoch: docs/AGREEMENT.md rule 5):
/// our last record again with timestamp 0, then a fresh epoch token. The caller must have
/// stopped every ballot of ours in the lockspace and seen all our I/O complete first.
public struct DeltaLeave: LeaseOperation {
    public typealias Output = Result<LeaderRecord, DeltaError>

    let layout: AreaLayout
    let space: String
    let hostID: Int
    let last: LeaderRecord
    let nonce: UInt64
    private var wroteSlot = false

    public init(layout: AreaLayout, space: String, hostID: Int, last: LeaderRecord, nonce: UInt64) {
        self.layout = layout
        self.space = space
        self.hostID = hostID
        self.last = last
        self.nonce = nonce
    }

    var gone: LeaderRecord {
        var r = last
        r.timestamp = 0
        return r
    }

    public mutating func start(now: Nanos) -> Step<Output> {
        .perform(
            .write([
                SectorWrite(
                    offset: layout.deltaOffset(hostID: hostID), bytes: gone.sector(size: layout.geometry.sectorSize))
            ]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        if wroteSlot { return .finished(.success(gone)) }
        wroteSlot = true
        return .perform(
            .write([
                epochSector(
                    space: space, hostID: hostID, generation: last.ownerGeneration, kind: .leave,
                    nonce: nonce, layout: layout)
            ]))
    }
}

/// An operator's clear of a host confirmed off (`disklease host clear`, as oVirt's "host has
/// been rebooted"): its slot gets timestamp 0 as if it had left, then a fresh epoch token, so
/// its blocks stop costing reads once dominated. Refused unless the slot still holds the
/// incarnation the operator named; unsafe if that host is in fact running.
public struct SlotClear: LeaseOperation {
    public typealias Output = Result<LeaderRecord, DeltaError>

    let layout: AreaLayout
    let space: String
    let hostID: Int
    let generation: UInt64
    let nonce: UInt64
    private var phase = 0
    private var cleared: LeaderRecord? = nil

    public init(layout: AreaLayout, space: String, hostID: Int, generation: UInt64, nonce: UInt64) {
        self.layout = layout
        self.space = space
        self.hostID = hostID
        self.generation = generation
        self.nonce = nonce
    }

    var offset: UInt64 { layout.deltaOffset(hostID: hostID) }

    public mutating func start(now: Nanos) -> Step<Output> {
        .perform(.read([IORange(offset: offset, length: layout.geometry.sectorSize)]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        switch phase {
        case 0:
            let r: LeaderRecord
            do {
                r = try LeaderRecord.verifyDelta(result.reads[0], deviceOffset: offset, space: space)
            } catch {
                return .finished(.failure(.format(error)))
            }
            guard r.ownerID == UInt64(hostID), r.ownerGeneration == generation else {
                return .finished(.failure(.renewOwner(hostID: hostID, offset: offset)))
            }
            var c = r
            c.timestamp = 0
            cleared = c
            phase = 1
            return .perform(.write([SectorWrite(offset: offset, bytes: c.sector(size: layout.geometry.sectorSize))]))
        case 1:
            phase = 2
            return .perform(
                .write([
                    epochSector(
                        space: space, hostID: hostID, generation: generation, kind: .clear,
                        nonce: nonce, layout: layout)
                ]))
        default:
            return .finished(.success(cleared!))
        }
    }
}
