/// sanlock's `struct request_record`, sector 1 of a resource area: "release so I can have
/// version lver". No checksum; only the major version is checked.
public struct RequestRecord: Hashable, Sendable {
    public static let magicValue: UInt32 = 0x0829_2011
    public static let versionValue: UInt32 = 0x0001_0001
    public static let forceNone: UInt32 = 0
    public static let forceKill: UInt32 = 1
    public static let forceGraceful: UInt32 = 2

    public var magic: UInt32 = magicValue
    public var version: UInt32 = versionValue
    public var lver: UInt64 = 0
    public var forceMode: UInt32 = 0

    public init(lver: UInt64 = 0, forceMode: UInt32 = 0) {
        self.lver = lver
        self.forceMode = forceMode
    }

    public init(decoding b: [UInt8], at o: Int = 0) {
        magic = b.le(o)
        version = b.le(o + 4)
        lver = b.le(o + 8)
        forceMode = b.le(o + 16)
    }

    public func encode(into b: inout [UInt8], at o: Int = 0) {
        b.putLE(magic, at: o)
        b.putLE(version, at: o + 4)
        b.putLE(lver, at: o + 8)
        b.putLE(forceMode, at: o + 16)
        b.putLE(UInt32(0), at: o + 20)
    }

    public static func verify(_ b: [UInt8], at o: Int = 0, deviceOffset: UInt64) throws(FormatError) -> RequestRecord {
        let r = RequestRecord(decoding: b, at: o)
        guard r.magic == magicValue else { throw .badMagic(offset: deviceOffset, found: r.magic, expected: magicValue) }
        guard r.version & LeaderRecord.majorMask == versionValue & LeaderRecord.majorMask else {
            throw .badVersion(offset: deviceOffset, found: r.version, expectedMajor: 1)
        }
        return r
    }
}

/// The 256-byte notification bitmap at bytes 256..511 of a delta-lease sector: bit (H-1) for
/// host_id H, LSB first within each byte. Only renewals write it.
public struct HostBitmap: Hashable, Sendable {
    public static let offsetInSector = 256
    public static let size = 256

    public private(set) var bytes = [UInt8](repeating: 0, count: size)

    public init() {}

    public init(decoding b: [UInt8], sectorStart o: Int = 0) {
        bytes = Array(b[o + Self.offsetInSector..<o + Self.offsetInSector + Self.size])
    }

    public func contains(hostID: Int) -> Bool {
        precondition((1...Self.size * 8).contains(hostID))
        return bytes[(hostID - 1) / 8] & (1 << UInt8((hostID - 1) % 8)) != 0
    }

    public mutating func insert(hostID: Int) {
        precondition((1...Self.size * 8).contains(hostID))
        bytes[(hostID - 1) / 8] |= 1 << UInt8((hostID - 1) % 8)
    }

    public var hostIDs: [Int] { (1...Self.size * 8).filter { contains(hostID: $0) } }

    public func encode(into b: inout [UInt8], sectorStart o: Int = 0) {
        b.replaceSubrange(o + Self.offsetInSector..<o + Self.offsetInSector + Self.size, with: bytes)
    }
}
