/// sanlock's `struct paxos_dblock`: one host's Disk Paxos block for a resource, at offset 0 of
/// sector host_id + 1 of the resource area, with a mode block at offset 128 of the same sector.
///
/// | off | size | field    |
/// |----:|-----:|----------|
/// |   0 |    8 | mbal     | highest ballot this host started
/// |   8 |    8 | bal      | ballot in which inp was written (phase 2)
/// |  16 |    8 | inp      | proposed owner host_id
/// |  24 |    8 | inp2     | proposed owner generation
/// |  32 |    8 | inp3     | proposed owner timestamp (chooser's monotonic seconds)
/// |  40 |    8 | lver     | lease version the ballot is for
/// |  48 |    4 | checksum | CRC over bytes 0..47
/// |  52 |    4 | flags    | RELEASED = 0x1, not checksummed
public struct PaxosDblock: Hashable, Sendable {
    public static let size = 56
    public static let checksumLength = 48
    public static let flagReleased: UInt32 = 0x1

    public var mbal: UInt64 = 0
    public var bal: UInt64 = 0
    public var inp: UInt64 = 0
    public var inp2: UInt64 = 0
    public var inp3: UInt64 = 0
    public var lver: UInt64 = 0
    public var checksum: UInt32 = 0
    public var flags: UInt32 = 0

    public init(
        mbal: UInt64 = 0, bal: UInt64 = 0, inp: UInt64 = 0, inp2: UInt64 = 0, inp3: UInt64 = 0,
        lver: UInt64 = 0, flags: UInt32 = 0
    ) {
        self.mbal = mbal
        self.bal = bal
        self.inp = inp
        self.inp2 = inp2
        self.inp3 = inp3
        self.lver = lver
        self.flags = flags
    }

    public init(decoding b: [UInt8], at o: Int = 0) {
        mbal = b.le(o)
        bal = b.le(o + 8)
        inp = b.le(o + 16)
        inp2 = b.le(o + 24)
        inp3 = b.le(o + 32)
        lver = b.le(o + 40)
        checksum = b.le(o + 48)
        flags = b.le(o + 52)
    }

    /// Writes the dblock at `at` with a fresh checksum (stored back into `self`).
    public mutating func encode(into b: inout [UInt8], at o: Int = 0) {
        b.putLE(mbal, at: o)
        b.putLE(bal, at: o + 8)
        b.putLE(inp, at: o + 16)
        b.putLE(inp2, at: o + 24)
        b.putLE(inp3, at: o + 32)
        b.putLE(lver, at: o + 40)
        checksum = CRC32C.sanlock(b[o..<o + Self.checksumLength])
        b.putLE(checksum, at: o + 48)
        b.putLE(flags, at: o + 52)
    }

    public var isReleased: Bool { flags & Self.flagReleased != 0 }

    /// The freshly initialised block: checksum, mbal, bal, inp and lver all zero. sanlock
    /// accepts it although its stored checksum (0) does not match.
    public var isEmpty: Bool { checksum == 0 && mbal == 0 && bal == 0 && inp == 0 && lver == 0 }

    /// Decodes and checks the dblock at `at`.
    public static func verify(_ b: [UInt8], at o: Int = 0, deviceOffset: UInt64) throws(FormatError) -> PaxosDblock {
        let d = PaxosDblock(decoding: b, at: o)
        if d.isEmpty { return d }
        let computed = CRC32C.sanlock(b[o..<o + checksumLength])
        guard computed == d.checksum else {
            throw .badChecksum(offset: deviceOffset, stored: d.checksum, computed: computed)
        }
        return d
    }
}

/// sanlock's `struct mode_block`, at offset 128 of a dblock sector: a shared holder's mark.
public struct ModeBlock: Hashable, Sendable {
    public static let offsetInSector = 128
    public static let flagShared: UInt32 = 0x1

    public var flags: UInt32 = 0
    public var generation: UInt64 = 0

    public init(flags: UInt32 = 0, generation: UInt64 = 0) {
        self.flags = flags
        self.generation = generation
    }

    public init(decoding b: [UInt8], sectorStart o: Int = 0) {
        flags = b.le(o + Self.offsetInSector)
        generation = b.le(o + Self.offsetInSector + 8)
    }

    public func encode(into b: inout [UInt8], sectorStart o: Int = 0) {
        b.putLE(flags, at: o + Self.offsetInSector)
        b.putLE(UInt32(0), at: o + Self.offsetInSector + 4)
        b.putLE(generation, at: o + Self.offsetInSector + 8)
    }

    public var isShared: Bool { flags & Self.flagShared != 0 }
}
