/// A (sector size, align size) pair and what follows from it. Only sanlock's five pairs exist;
/// max_hosts is sanlock's fixed table, not align/sector (4K/1M has 256 sectors but 250 hosts).
public struct Geometry: Hashable, Sendable, CustomStringConvertible {
    public let sectorSize: Int
    public let alignSize: Int
    public let maxHosts: Int

    public static let mib = 1 << 20
    public static let g512_1M = Geometry(unchecked: 512, mib, 2000)
    public static let g4K_1M = Geometry(unchecked: 4096, mib, 250)
    public static let g4K_2M = Geometry(unchecked: 4096, 2 * mib, 500)
    public static let g4K_4M = Geometry(unchecked: 4096, 4 * mib, 1000)
    public static let g4K_8M = Geometry(unchecked: 4096, 8 * mib, 2000)
    public static let all: [Geometry] = [.g512_1M, .g4K_1M, .g4K_2M, .g4K_4M, .g4K_8M]

    private init(unchecked s: Int, _ a: Int, _ m: Int) {
        sectorSize = s
        alignSize = a
        maxHosts = m
    }

    public init(sectorSize: Int, alignSize: Int) throws(FormatError) {
        guard let g = Self.all.first(where: { $0.sectorSize == sectorSize && $0.alignSize == alignSize }) else {
            throw .badGeometry(sectorSize: sectorSize, alignSize: alignSize)
        }
        self = g
    }

    /// sanlock's default align size for a sector size when none is given: 1M for 512, 8M for 4K
    /// (also the legacy meaning of a record with no align flag).
    public static func defaultFor(sectorSize: Int) throws(FormatError) -> Geometry {
        switch sectorSize {
        case 512: return .g512_1M
        case 4096: return .g4K_8M
        default: throw .badGeometry(sectorSize: sectorSize, alignSize: 0)
        }
    }

    /// The geometry a record describes: its sector_size plus its align flag (or the legacy
    /// default when no align flag is set).
    public static func fromRecord(sectorSize: UInt32, flags: UInt32, offset: UInt64) throws(FormatError) -> Geometry {
        guard sectorSize == 512 || sectorSize == 4096 else { throw .badSectorSize(offset: offset, found: sectorSize) }
        let ss = Int(sectorSize)
        for (flag, size) in AlignFlag.sizes where flags & flag != 0 {
            return try Geometry(sectorSize: ss, alignSize: size)
        }
        return try defaultFor(sectorSize: ss)
    }

    public var alignFlag: UInt32 { AlignFlag.sizes.first { $0.1 == alignSize }!.0 }
    public var sectorsPerArea: Int { alignSize / sectorSize }

    public var description: String {
        let a = alignSize / Self.mib
        return sectorSize == 512 ? "512/\(a)M" : "4K/\(a)M"
    }
}

/// The LFL_ALIGN_* leader flags.
public enum AlignFlag {
    public static let align1M: UInt32 = 0x10
    public static let align2M: UInt32 = 0x20
    public static let align4M: UInt32 = 0x40
    public static let align8M: UInt32 = 0x80
    public static let mask: UInt32 = 0xF0
    static let sizes: [(UInt32, Int)] = [
        (align1M, Geometry.mib), (align2M, 2 * Geometry.mib), (align4M, 4 * Geometry.mib), (align8M, 8 * Geometry.mib),
    ]
}
