/// What one sector holds, as an inspect tool reports it.
public enum SectorVerdict: String, Sendable, Codable {
    case ok
    case empty
    case badChecksum = "bad checksum"
    case badMagic = "bad magic"
    case wrongVersion = "wrong version"
    case wrongLockspace = "wrong lockspace"
    case cleared
    /// The area would end past 2^64 bytes: a header at an impossible offset.
    case outOfRange = "out of range"

    init(_ error: FormatError) {
        switch error {
        case .badChecksum: self = .badChecksum
        case .badVersion: self = .wrongVersion
        case .lockspaceMismatch, .resourceMismatch: self = .wrongLockspace
        case .clearedLease: self = .cleared
        case .emptyArea: self = .empty
        default: self = .badMagic
        }
    }
}

/// One host's delta-lease slot.
public struct DeltaSlot: Sendable {
    public var hostID: Int
    public var offset: UInt64
    public var verdict: SectorVerdict
    public var record: LeaderRecord
    /// Host ids whose bit is set in this slot's notification bitmap.
    public var notifying: [Int]

    /// A slot that has never been acquired and is not damaged.
    public var isUnused: Bool { verdict == .ok && record.ownerID == 0 && record.timestamp == 0 }
}

/// One host's paxos dblock and mode block in a resource.
public struct DblockSlot: Sendable {
    public var hostID: Int
    public var offset: UInt64
    public var verdict: SectorVerdict
    public var dblock: PaxosDblock
    public var mode: ModeBlock

    public var isUnused: Bool { verdict == .empty }
}

public struct LockspaceReport: Sendable {
    public var offset: UInt64
    public var geometry: Geometry
    public var name: String
    public var slots: [DeltaSlot]
}

public struct ResourceReport: Sendable {
    public var offset: UInt64
    public var geometry: Geometry
    public var leaderVerdict: SectorVerdict
    public var leader: LeaderRecord
    public var requestVerdict: SectorVerdict
    public var request: RequestRecord
    /// Dblocks of host_ids 1...num_hosts (clamped to max_hosts).
    public var dblocks: [DblockSlot]

    /// Hosts holding the lease in shared mode (a SHARED mode block).
    public var sharedHolders: [Int] { dblocks.filter { $0.verdict == .ok && $0.mode.isShared }.map(\.hostID) }
}

/// What an area holds.
public enum AreaReport: Sendable {
    case lockspace(LockspaceReport)
    case resource(ResourceReport)
    /// All zero where an area could start.
    case empty(offset: UInt64)
    /// Sector 0 is neither a delta lease nor a paxos leader.
    case unknown(offset: UInt64, verdict: SectorVerdict, magic: UInt32)

    public var offset: UInt64 {
        switch self {
        case .lockspace(let l): return l.offset
        case .resource(let r): return r.offset
        case .empty(let o), .unknown(let o, _, _): return o
        }
    }

    /// Bytes to skip to the next possible area: the area's own size, or the smallest align
    /// size when there is no area here.
    public var span: Int {
        switch self {
        case .lockspace(let l): return l.geometry.alignSize
        case .resource(let r): return r.geometry.alignSize
        case .empty, .unknown: return Geometry.mib
        }
    }

    /// True when any sector is damaged (not ok and not empty).
    public var isCorrupt: Bool {
        let bad: (SectorVerdict) -> Bool = { $0 != .ok && $0 != .empty }
        switch self {
        case .lockspace(let l): return l.slots.contains { bad($0.verdict) }
        case .resource(let r):
            return bad(r.leaderVerdict) || bad(r.requestVerdict) || r.dblocks.contains { bad($0.verdict) }
        case .empty: return false
        case .unknown: return true
        }
    }

    /// The geometry sector 0 declares, if it declares one; decides how much to read.
    public static func geometry(ofAreaStart bytes: [UInt8], deviceOffset: UInt64) -> Geometry? {
        let r = LeaderRecord(decoding: bytes)
        guard
            r.magic == LeaderRecord.deltaMagic || r.magic == LeaderRecord.paxosMagic
                || r.magic == LeaderRecord.paxosClearMagic
        else { return nil }
        return try? r.geometry(deviceOffset: deviceOffset)
    }

    /// Inspects a whole area whose first byte is at `deviceOffset`. `bytes` must hold at
    /// least the area's align size when sector 0 declares a geometry.
    public static func inspect(_ bytes: [UInt8], deviceOffset: UInt64) -> AreaReport {
        let head = LeaderRecord(decoding: bytes)
        guard let g = geometry(ofAreaStart: bytes, deviceOffset: deviceOffset), bytes.count >= g.alignSize else {
            if bytes.prefix(LeaderRecord.size).isAllZero { return .empty(offset: deviceOffset) }
            return .unknown(offset: deviceOffset, verdict: .badMagic, magic: head.magic)
        }
        guard !deviceOffset.addingReportingOverflow(UInt64(g.alignSize)).overflow else {
            return .unknown(offset: deviceOffset, verdict: .outOfRange, magic: head.magic)
        }
        let layout = AreaLayout(offset: deviceOffset, geometry: g)
        if head.magic == LeaderRecord.deltaMagic {
            return .lockspace(inspectLockspace(bytes, layout: layout, name: head.spaceName))
        }
        return .resource(inspectResource(bytes, layout: layout))
    }

    static func inspectLockspace(_ bytes: [UInt8], layout: AreaLayout, name: String) -> LockspaceReport {
        let ss = layout.geometry.sectorSize
        let slots = (1...layout.geometry.maxHosts).map { h -> DeltaSlot in
            let at = (h - 1) * ss
            let offset = layout.deltaOffset(hostID: h)
            let verdict: SectorVerdict
            do throws(FormatError) {
                _ = try LeaderRecord.verifyDelta(bytes, at: at, deviceOffset: offset, space: name)
                verdict = .ok
            } catch {
                verdict = bytes[at..<at + ss].isAllZero ? .empty : SectorVerdict(error)
            }
            return DeltaSlot(
                hostID: h, offset: offset, verdict: verdict, record: LeaderRecord(decoding: bytes, at: at),
                notifying: HostBitmap(decoding: bytes, sectorStart: at).hostIDs)
        }
        return LockspaceReport(offset: layout.offset, geometry: layout.geometry, name: name, slots: slots)
    }

    static func inspectResource(_ bytes: [UInt8], layout: AreaLayout) -> ResourceReport {
        let g = layout.geometry
        let ss = g.sectorSize
        let leader = LeaderRecord(decoding: bytes)
        var leaderVerdict = SectorVerdict.ok
        do throws(FormatError) {
            _ = try LeaderRecord.verifyPaxos(bytes, deviceOffset: layout.offset)
        } catch {
            leaderVerdict = SectorVerdict(error)
        }
        var requestVerdict = SectorVerdict.ok
        do throws(FormatError) {
            _ = try RequestRecord.verify(bytes, at: ss, deviceOffset: layout.requestOffset)
        } catch {
            requestVerdict = bytes[ss..<2 * ss].isAllZero ? .empty : SectorVerdict(error)
        }
        // A damaged leader may carry any num_hosts; clamp so a dump always terminates sanely.
        let numHosts = Int(clamping: min(leader.numHosts, UInt64(g.maxHosts)))
        let dblocks =
            numHosts == 0
            ? []
            : (1...numHosts).map { h -> DblockSlot in
                let at = (h + 1) * ss
                let offset = layout.dblockOffset(hostID: h)
                var verdict = SectorVerdict.ok
                if bytes[at..<at + ss].isAllZero {
                    verdict = .empty
                } else {
                    do throws(FormatError) {
                        _ = try PaxosDblock.verify(bytes, at: at, deviceOffset: offset)
                    } catch {
                        verdict = .badChecksum
                    }
                }
                return DblockSlot(
                    hostID: h, offset: offset, verdict: verdict, dblock: PaxosDblock(decoding: bytes, at: at),
                    mode: ModeBlock(decoding: bytes, sectorStart: at))
            }
        return ResourceReport(
            offset: layout.offset, geometry: g, leaderVerdict: leaderVerdict, leader: leader,
            requestVerdict: requestVerdict, request: RequestRecord(decoding: bytes, at: ss), dblocks: dblocks)
    }
}
