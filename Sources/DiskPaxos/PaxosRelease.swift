import DeltaLease
import DirectIO
import LeaseFormat

/// Releasing a lease (SANLOCK-FORMAT.md §6.2, §6.3).
///
/// Exclusive: write our dblock again with RELEASED (the flag is outside the checksum), then
/// read the leader and, only if we wrote it and it still names us at our lver, clear its
/// timestamp. If another host committed us as owner (write_id ≠ us), the RELEASED flag alone
/// tells others we let go. Shared: our sector with the SHARED mode block cleared.
/// `toShared` converts EX → SH instead: RELEASED dblock plus a SHARED mode block, then the
/// leader is released as above.
public struct PaxosRelease: LeaseOperation {
    public typealias Output = Result<Grant?, PaxosError>

    let grant: Grant
    let toShared: Bool
    private var phase = Phase.dblockWrite

    enum Phase { case dblockWrite, leaderRead, leaderWrite, done }

    public init(grant: Grant, toShared: Bool = false) {
        precondition(!(toShared && grant.shared), "already shared")
        self.grant = grant
        self.toShared = toShared
    }

    var layout: AreaLayout { grant.resource.layout }
    var ss: Int { layout.geometry.sectorSize }

    public mutating func start(now: Nanos) -> Step<Output> {
        var bytes = [UInt8](repeating: 0, count: ss)
        var d = grant.dblock
        d.flags |= PaxosDblock.flagReleased
        d.encode(into: &bytes)
        if toShared {
            ModeBlock(flags: ModeBlock.flagShared, generation: grant.host.generation).encode(into: &bytes)
        }
        phase = .dblockWrite
        return .perform(.write([SectorWrite(offset: layout.dblockOffset(hostID: grant.host.hostID), bytes: bytes)]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        switch phase {
        case .dblockWrite:
            if grant.shared { return done(nil) }
            phase = .leaderRead
            return .perform(.read([IORange(offset: layout.leaderOffset, length: ss)]))
        case .leaderRead:
            guard case .read(let r) = result else { preconditionFailure("expected a read") }
            let l: LeaderRecord
            do {
                l = try LeaderRecord.verifyPaxos(
                    r[0], deviceOffset: layout.offset, space: grant.resource.space,
                    resource: grant.resource.name)
            } catch {
                return .finished(.failure(.leader(error)))
            }
            let us = UInt64(grant.host.hostID)
            guard l.writeID == us else { return done(sharedGrant()) }
            guard l.lver == grant.lver, l.ownerID == us, l.ownerGeneration == grant.host.generation, l.timestamp != 0
            else {
                return .finished(.failure(.notOwner(lver: grant.lver)))
            }
            var w = l
            w.timestamp = 0
            w.flags &= ~LeaderRecord.flagShortHold
            w.writeID = us
            w.writeGeneration = grant.host.generation
            w.writeTimestamp = Clock.diskTimestamp(now)
            phase = .leaderWrite
            return .perform(.write([SectorWrite(offset: layout.leaderOffset, bytes: w.sector(size: ss))]))
        case .leaderWrite:
            return done(sharedGrant())
        case .done:
            preconditionFailure("resumed after finishing")
        }
    }

    private mutating func done(_ g: Grant?) -> Step<Output> {
        phase = .done
        return .finished(.success(g))
    }

    /// After EX → SH, the grant we now hold.
    private func sharedGrant() -> Grant? {
        guard toShared else { return nil }
        var g = grant
        g.shared = true
        g.dblock.flags |= PaxosDblock.flagReleased
        return g
    }
}

/// Asking the current owner to release (SANLOCK-FORMAT.md §6.5): checks the leader, then writes
/// the request record {lver, force_mode}. The caller then sets the owner's bit in its own delta
/// lease bitmap for set_bitmap_seconds; the owner's renewal notices it.
public struct PaxosRequest: LeaseOperation {
    public enum Outcome: Sendable, Equatable {
        /// The lease is free; nothing to ask.
        case free
        /// The request is written; notify this host id through the bitmap.
        case requested(ownerID: Int)
    }
    public typealias Output = Result<Outcome, PaxosError>

    let resource: PaxosResource
    let lver: UInt64?
    let forceMode: UInt32
    private var owner = 0
    private var phase = 0

    /// `lver` is the version wanted; nil asks for the one after the current leader's (sanlock's
    /// SANLK_REQUEST_NEXT_LVER).
    public init(resource: PaxosResource, lver: UInt64?, forceMode: UInt32) {
        self.resource = resource
        self.lver = lver
        self.forceMode = forceMode
    }

    var ss: Int { resource.layout.geometry.sectorSize }

    public mutating func start(now: Nanos) -> Step<Output> {
        phase = 0
        return .perform(.read([IORange(offset: resource.layout.leaderOffset, length: 2 * ss)]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        if phase == 1 { return .finished(.success(.requested(ownerID: owner))) }
        guard case .read(let r) = result else { preconditionFailure("expected a read") }
        let l: LeaderRecord
        do {
            l = try LeaderRecord.verifyPaxos(
                r[0], deviceOffset: resource.layout.offset, space: resource.space, resource: resource.name)
        } catch {
            return .finished(.failure(.leader(error)))
        }
        if l.timestamp == 0 { return .finished(.success(.free)) }
        let lver = self.lver ?? l.lver + 1
        if l.lver >= lver { return .finished(.failure(.lverMismatch(required: lver, current: l.lver))) }
        let req: RequestRecord
        do {
            req = try RequestRecord.verify(r[0], at: ss, deviceOffset: resource.layout.requestOffset)
        } catch {
            return .finished(.failure(.leader(error)))
        }
        if req.lver > lver { return .finished(.failure(.lverMismatch(required: lver, current: req.lver))) }
        owner = Int(l.ownerID)
        var sector = [UInt8](repeating: 0, count: ss)
        RequestRecord(lver: lver, forceMode: forceMode).encode(into: &sector)
        phase = 1
        return .perform(.write([SectorWrite(offset: resource.layout.requestOffset, bytes: sector)]))
    }
}
