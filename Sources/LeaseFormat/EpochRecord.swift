/// The membership epoch of a lockspace (docs/AGREEMENT.md): the identity of its last
/// membership change, in sector `max_hosts` of the lockspace area, where sanlock never looks.
///
/// | off | size | field                                   |
/// |----:|-----:|-----------------------------------------|
/// |   0 |    4 | magic 0x48434F45                        |
/// |   4 |    4 | version 0x00010001                      |
/// |   8 |    8 | nonce (fresh per write attempt)         |
/// |  16 |    8 | host_id                                 |
/// |  24 |    8 | generation                              |
/// |  32 |   16 | zero: `sanlock direct dump` lists tail sectors with bytes here |
/// |  48 |    4 | kind: 1 join, 2 leave, 3 clear          |
/// |  52 |    4 | zero                                    |
/// |  56 |   48 | lockspace name                          |
/// | 104 |    4 | CRC-32C (sanlock's) of bytes 0..103     |
///
/// Guarantees: a token is unique per write attempt (the writer draws the nonce), so an epoch
/// once overwritten is never seen again; readers only ask whether the epoch changed, which
/// `EpochStamp` answers from the raw bytes, damaged or not.
public struct EpochRecord: Hashable, Sendable {
    public static let magic: UInt32 = 0x4843_4F45
    public static let version: UInt32 = 0x0001_0001
    public static let size = 108
    public static let checksumLength = 104

    public enum Kind: UInt32, Sendable {
        case join = 1
        case leave = 2
        case clear = 3
    }

    public var nonce: UInt64
    public var hostID: UInt64
    public var generation: UInt64
    public var kind: Kind
    public var space: String

    public init(nonce: UInt64, hostID: UInt64, generation: UInt64, kind: Kind, space: String) {
        self.nonce = nonce
        self.hostID = hostID
        self.generation = generation
        self.kind = kind
        self.space = space
    }

    /// The record as a whole zero-filled sector.
    public func sector(size: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: size)
        b.putLE(Self.magic, at: 0)
        b.putLE(Self.version, at: 4)
        b.putLE(nonce, at: 8)
        b.putLE(hostID, at: 16)
        b.putLE(generation, at: 24)
        b.putLE(kind.rawValue, at: 48)
        b.putName(space, at: 56)
        b.putLE(CRC32C.sanlock(b[0..<Self.checksumLength]), at: Self.checksumLength)
        return b
    }

    /// Decodes and checks an epoch sector. nil for the all-zero initial epoch.
    public static func verify(
        _ b: [UInt8], at o: Int = 0, deviceOffset: UInt64, space: String
    ) throws(FormatError) -> EpochRecord? {
        if b[o..<o + size].isAllZero { return nil }
        let m: UInt32 = b.le(o)
        guard m == magic else { throw .badMagic(offset: deviceOffset, found: m, expected: magic) }
        let v: UInt32 = b.le(o + 4)
        guard v & LeaderRecord.majorMask == version & LeaderRecord.majorMask else {
            throw .badVersion(offset: deviceOffset, found: v, expectedMajor: 1)
        }
        let stored: UInt32 = b.le(o + checksumLength)
        let computed = CRC32C.sanlock(b[o..<o + checksumLength])
        guard stored == computed else { throw .badChecksum(offset: deviceOffset, stored: stored, computed: computed) }
        let name = b.name(o + 56)
        guard name == space else { throw .lockspaceMismatch(offset: deviceOffset, found: name, expected: space) }
        let rawKind: UInt32 = b.le(o + 48)
        guard let kind = Kind(rawValue: rawKind) else {
            throw .outOfRange(field: "epoch kind", value: UInt64(rawKind), offset: deviceOffset)
        }
        return EpochRecord(nonce: b.le(o + 8), hostID: b.le(o + 16), generation: b.le(o + 24), kind: kind, space: name)
    }
}

/// An epoch as read: the sector's first `EpochRecord.size` bytes, compared as they are.
public struct EpochStamp: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(sector: [UInt8], at o: Int = 0) {
        bytes = Array(sector[o..<o + EpochRecord.size])
    }

    /// The epoch of a lockspace nobody has joined since init (an all-zero sector).
    public static let initial = EpochStamp(sector: [UInt8](repeating: 0, count: EpochRecord.size))

    /// The nonce field as stored (0 for the initial epoch).
    public var nonce: UInt64 { bytes.le(8) }

    public var description: String {
        if bytes.isAllZero { return "initial" }
        let nonce: UInt64 = bytes.le(8), host: UInt64 = bytes.le(16), gen: UInt64 = bytes.le(24),
            kind: UInt32 = bytes.le(48)
        return "host \(host) gen \(gen) kind \(kind) nonce \(String(nonce, radix: 16))"
    }
}
