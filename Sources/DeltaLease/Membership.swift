import DirectIO
import LeaseFormat

/// What one delta-lease slot says about membership (docs/AGREEMENT.md, "On disk").
public enum SlotState: Sendable, Hashable {
    /// Timestamp not 0 (LIVE, UNKNOWN, FAIL or DEAD alike), or damaged: its blocks are read.
    case present(generation: UInt64, name: String)
    /// An owner with timestamp 0: it left cleanly, or an operator cleared it.
    case left(generation: UInt64, name: String)

    public var generation: UInt64 {
        switch self {
        case .present(let g, _), .left(let g, _): return g
        }
    }

    public var name: String {
        switch self {
        case .present(_, let n), .left(_, let n): return n
        }
    }

    public var isPresent: Bool { if case .present = self { true } else { false } }
}

/// A host's membership of a lockspace: an epoch value and the slots read after the read that
/// returned it completed (rule 1). Unused slots are absent.
///
/// Guarantees: a ballot whose every read shows `epoch` unchanged has read every host that
/// could ballot without reading it (the asymmetric pair argument of docs/AGREEMENT.md).
public struct Membership: Sendable, Hashable {
    public var epoch: EpochStamp
    public var slots: [Int: SlotState]

    public init(epoch: EpochStamp, slots: [Int: SlotState]) {
        self.epoch = epoch
        self.slots = slots
    }

    /// Classifies every slot of a read of all `max_hosts` slots (`bytes` starts at slot 1).
    public init(epoch: EpochStamp, slotBytes bytes: [UInt8], layout: AreaLayout, space: String) {
        self.epoch = epoch
        slots = [:]
        let ss = layout.geometry.sectorSize
        for h in 1...min(layout.geometry.maxHosts, bytes.count / ss) {
            let at = (h - 1) * ss
            if let s = Self.classify(bytes, at: at, deviceOffset: layout.deltaOffset(hostID: h), space: space) {
                slots[h] = s
            }
        }
    }

    /// One slot's state, nil when unused. A slot that fails its checks is present: a damaged
    /// record may hide a live host, and reading one block too many is always safe.
    public static func classify(_ bytes: [UInt8], at o: Int, deviceOffset: UInt64, space: String) -> SlotState? {
        // Owner and timestamp both zero: never used (or freshly initialised), whatever else
        // the sector holds; a sector write is atomic, so no live host hides behind that.
        let (owner, ts): (UInt64, UInt64) = bytes.withUnsafeBytes {
            (
                UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: o + 32, as: UInt64.self)),
                UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: o + 152, as: UInt64.self))
            )
        }
        if owner == 0 && ts == 0 { return nil }
        let r = LeaderRecord(decoding: bytes, at: o)
        let ok = (try? LeaderRecord.verifyDelta(bytes, at: o, deviceOffset: deviceOffset, space: space)) != nil
        if !ok {
            return bytes[o..<o + LeaderRecord.size].isAllZero
                ? nil : .present(generation: r.ownerGeneration, name: r.resourceName)
        }
        if r.timestamp != 0 { return .present(generation: r.ownerGeneration, name: r.resourceName) }
        if r.ownerID != 0 { return .left(generation: r.ownerGeneration, name: r.resourceName) }
        return nil
    }

    /// Present slots, ascending.
    public var presentHosts: [Int] { slots.filter { $0.value.isPresent }.map(\.key).sorted() }

    /// Rule 2: ourselves, every present slot, and every left slot whose block has not been
    /// shown dominated at its current generation (`dominated`: host → generation).
    public func readSet(ourHostID: Int, dominated: [Int: UInt64], dropLeftAtOnce: Bool = false) -> [Int] {
        var ids = Set([ourHostID])
        for (h, s) in slots {
            switch s {
            case .present: ids.insert(h)
            case .left(let g, _): if !dropLeftAtOnce && dominated[h] != g { ids.insert(h) }
            }
        }
        return ids.sorted()
    }

    /// True when a slot in use shows a name without DiskLease's marker: a sanlock host, which
    /// never writes the epoch, so ballots must read every block (rule 10).
    public var hasForeignHost: Bool {
        slots.values.contains { !$0.name.isEmpty && !$0.name.hasPrefix(LiveView.nameMarker) }
    }
}

/// A fresh epoch token for one write attempt: unique per attempt (rule 4, "no ABA").
public func epochSector(
    space: String, hostID: Int, generation: UInt64, kind: EpochRecord.Kind, nonce: UInt64,
    layout: AreaLayout
) -> SectorWrite {
    let r = EpochRecord(nonce: nonce, hostID: UInt64(hostID), generation: generation, kind: kind, space: space)
    return SectorWrite(offset: layout.epochOffset, bytes: r.sector(size: layout.geometry.sectorSize))
}

/// The mutant `epochCounter`: the epoch as a number one above the one read, with no writer
/// identity, so two joiners that read the same epoch write the same value.
public func counterEpochSector(after read: EpochStamp, space: String, layout: AreaLayout) -> SectorWrite {
    let n = read.nonce
    let r = EpochRecord(nonce: n &+ 1, hostID: 0, generation: 0, kind: .join, space: space)
    return SectorWrite(offset: layout.epochOffset, bytes: r.sector(size: layout.geometry.sectorSize))
}
