/// sanlock's `struct leader_record`, 200 bytes at the start of a sector. The same layout is a
/// host's delta lease (one per host_id in a lockspace) and a resource's paxos leader.
///
/// | off | size | field            | off | size | field            |
/// |----:|-----:|------------------|----:|-----:|------------------|
/// |   0 |    4 | magic            | 104 |   48 | resource_name    |
/// |   4 |    4 | version          | 152 |    8 | timestamp        |
/// |   8 |    4 | flags            | 160 |    8 | unused1          |
/// |  12 |    4 | sector_size      | 168 |    4 | checksum (0..167)|
/// |  16 |    8 | num_hosts        | 172 |    2 | unused2          |
/// |  24 |    8 | max_hosts        | 174 |    2 | io_timeout       |
/// |  32 |    8 | owner_id         | 176 |    8 | write_id         |
/// |  40 |    8 | owner_generation | 184 |    8 | write_generation |
/// |  48 |    8 | lver             | 192 |    8 | write_timestamp  |
/// |  56 |   48 | space_name       |     |      |                  |
///
/// All little-endian. The checksum covers bytes 0..167 only: io_timeout and the write_* fields
/// may change without it changing.
public struct LeaderRecord: Hashable, Sendable {
    public static let size = 200
    public static let checksumLength = 168
    public static let deltaMagic: UInt32 = 0x1221_2010
    public static let paxosMagic: UInt32 = 0x0615_2010
    public static let paxosClearMagic: UInt32 = 0x1128_2016
    public static let deltaVersion: UInt32 = 0x0003_0004
    public static let paxosVersion: UInt32 = 0x0006_0004
    public static let majorMask: UInt32 = 0xFFFF_0000
    /// LFL_SHORT_HOLD: a paxos owner holds EX just long enough to set its shared mode block.
    public static let flagShortHold: UInt32 = 0x1

    public var magic: UInt32
    public var version: UInt32
    public var flags: UInt32
    public var sectorSize: UInt32
    public var numHosts: UInt64
    public var maxHosts: UInt64
    public var ownerID: UInt64
    public var ownerGeneration: UInt64
    public var lver: UInt64
    public var spaceName: String
    public var resourceName: String
    public var timestamp: UInt64
    public var unused1: UInt64
    public var checksum: UInt32
    public var unused2: UInt16
    public var ioTimeout: UInt16
    public var writeID: UInt64
    public var writeGeneration: UInt64
    public var writeTimestamp: UInt64

    /// A fresh delta lease record as `sanlock direct init -s` writes it.
    public static func delta(space: String, geometry: Geometry, ioTimeout: UInt16) -> LeaderRecord {
        LeaderRecord(
            magic: deltaMagic, version: deltaVersion, flags: geometry.alignFlag,
            sectorSize: UInt32(geometry.sectorSize), numHosts: 0, maxHosts: 1, ownerID: 0,
            ownerGeneration: 0, lver: 0, spaceName: space, resourceName: "", timestamp: 0, unused1: 0,
            checksum: 0, unused2: 0, ioTimeout: ioTimeout, writeID: 0, writeGeneration: 0, writeTimestamp: 0)
    }

    /// A fresh paxos leader as `sanlock direct init -r` writes it.
    public static func paxos(space: String, resource: String, geometry: Geometry, numHosts: Int) -> LeaderRecord {
        LeaderRecord(
            magic: paxosMagic, version: paxosVersion, flags: geometry.alignFlag,
            sectorSize: UInt32(geometry.sectorSize), numHosts: UInt64(numHosts),
            maxHosts: UInt64(geometry.maxHosts), ownerID: 0, ownerGeneration: 0, lver: 0, spaceName: space,
            resourceName: resource, timestamp: 0, unused1: 0, checksum: 0, unused2: 0, ioTimeout: 0,
            writeID: 0, writeGeneration: 0, writeTimestamp: 0)
    }

    /// Decodes the record at `at` in `bytes` without judging it (see `verifyDelta`/`verifyPaxos`).
    public init(decoding bytes: [UInt8], at o: Int = 0) {
        magic = bytes.le(o + 0)
        version = bytes.le(o + 4)
        flags = bytes.le(o + 8)
        sectorSize = bytes.le(o + 12)
        numHosts = bytes.le(o + 16)
        maxHosts = bytes.le(o + 24)
        ownerID = bytes.le(o + 32)
        ownerGeneration = bytes.le(o + 40)
        lver = bytes.le(o + 48)
        spaceName = bytes.name(o + 56)
        resourceName = bytes.name(o + 104)
        timestamp = bytes.le(o + 152)
        unused1 = bytes.le(o + 160)
        checksum = bytes.le(o + 168)
        unused2 = bytes.le(o + 172)
        ioTimeout = bytes.le(o + 174)
        writeID = bytes.le(o + 176)
        writeGeneration = bytes.le(o + 184)
        writeTimestamp = bytes.le(o + 192)
    }

    public init(
        magic: UInt32, version: UInt32, flags: UInt32, sectorSize: UInt32, numHosts: UInt64, maxHosts: UInt64,
        ownerID: UInt64, ownerGeneration: UInt64, lver: UInt64, spaceName: String, resourceName: String,
        timestamp: UInt64, unused1: UInt64, checksum: UInt32, unused2: UInt16, ioTimeout: UInt16,
        writeID: UInt64, writeGeneration: UInt64, writeTimestamp: UInt64
    ) {
        self.magic = magic
        self.version = version
        self.flags = flags
        self.sectorSize = sectorSize
        self.numHosts = numHosts
        self.maxHosts = maxHosts
        self.ownerID = ownerID
        self.ownerGeneration = ownerGeneration
        self.lver = lver
        self.spaceName = spaceName
        self.resourceName = resourceName
        self.timestamp = timestamp
        self.unused1 = unused1
        self.checksum = checksum
        self.unused2 = unused2
        self.ioTimeout = ioTimeout
        self.writeID = writeID
        self.writeGeneration = writeGeneration
        self.writeTimestamp = writeTimestamp
    }

    /// Writes the record into `bytes` at `at` with a freshly computed checksum, which is also
    /// stored back into `self`. Bytes outside the 200-byte record are left as they are.
    public mutating func encode(into bytes: inout [UInt8], at o: Int = 0) {
        bytes.putLE(magic, at: o + 0)
        bytes.putLE(version, at: o + 4)
        bytes.putLE(flags, at: o + 8)
        bytes.putLE(sectorSize, at: o + 12)
        bytes.putLE(numHosts, at: o + 16)
        bytes.putLE(maxHosts, at: o + 24)
        bytes.putLE(ownerID, at: o + 32)
        bytes.putLE(ownerGeneration, at: o + 40)
        bytes.putLE(lver, at: o + 48)
        bytes.putName(spaceName, at: o + 56)
        bytes.putName(resourceName, at: o + 104)
        bytes.putLE(timestamp, at: o + 152)
        bytes.putLE(unused1, at: o + 160)
        checksum = CRC32C.sanlock(bytes[o..<o + Self.checksumLength])
        bytes.putLE(checksum, at: o + 168)
        bytes.putLE(unused2, at: o + 172)
        bytes.putLE(ioTimeout, at: o + 174)
        bytes.putLE(writeID, at: o + 176)
        bytes.putLE(writeGeneration, at: o + 184)
        bytes.putLE(writeTimestamp, at: o + 192)
    }

    /// The record as a whole zero-filled sector.
    public func sector(size: Int) -> [UInt8] {
        var copy = self
        var bytes = [UInt8](repeating: 0, count: size)
        copy.encode(into: &bytes)
        return bytes
    }

    /// The checksum of the raw bytes as they are on disk.
    public static func computedChecksum(_ bytes: [UInt8], at o: Int = 0) -> UInt32 {
        CRC32C.sanlock(bytes[o..<o + checksumLength])
    }

    /// sanlock's delta-lease checks: magic, major version 3, lockspace name (when given), checksum.
    /// `deviceOffset` is where the record sits on the device, for the error.
    public static func verifyDelta(
        _ bytes: [UInt8], at o: Int = 0, deviceOffset: UInt64, space: String? = nil
    ) throws(FormatError) -> LeaderRecord {
        let r = LeaderRecord(decoding: bytes, at: o)
        guard r.magic == deltaMagic else {
            if bytes[o..<o + size].isAllZero { throw .emptyArea(offset: deviceOffset) }
            throw .badMagic(offset: deviceOffset, found: r.magic, expected: deltaMagic)
        }
        guard r.version & majorMask == deltaVersion & majorMask else {
            throw .badVersion(offset: deviceOffset, found: r.version, expectedMajor: 3)
        }
        if let space, r.spaceName != space {
            throw .lockspaceMismatch(offset: deviceOffset, found: r.spaceName, expected: space)
        }
        let computed = computedChecksum(bytes, at: o)
        guard computed == r.checksum else {
            throw .badChecksum(offset: deviceOffset, stored: r.checksum, computed: computed)
        }
        return r
    }

    /// sanlock's paxos-leader checks: CLEAR magic, magic, major version 6, names (when given),
    /// num_hosts ≥ host_id (when given), checksum.
    public static func verifyPaxos(
        _ bytes: [UInt8], at o: Int = 0, deviceOffset: UInt64, space: String? = nil, resource: String? = nil,
        hostID: UInt64? = nil
    ) throws(FormatError) -> LeaderRecord {
        let r = LeaderRecord(decoding: bytes, at: o)
        if r.magic == paxosClearMagic { throw .clearedLease(offset: deviceOffset) }
        guard r.magic == paxosMagic else {
            if bytes[o..<o + size].isAllZero { throw .emptyArea(offset: deviceOffset) }
            throw .badMagic(offset: deviceOffset, found: r.magic, expected: paxosMagic)
        }
        guard r.version & majorMask == paxosVersion & majorMask else {
            throw .badVersion(offset: deviceOffset, found: r.version, expectedMajor: 6)
        }
        if let space, r.spaceName != space {
            throw .lockspaceMismatch(offset: deviceOffset, found: r.spaceName, expected: space)
        }
        if let resource, r.resourceName != resource {
            throw .resourceMismatch(offset: deviceOffset, found: r.resourceName, expected: resource)
        }
        if let hostID, r.numHosts < hostID {
            throw .numHostsTooSmall(offset: deviceOffset, numHosts: r.numHosts, hostID: hostID)
        }
        let computed = computedChecksum(bytes, at: o)
        guard computed == r.checksum else {
            throw .badChecksum(offset: deviceOffset, stored: r.checksum, computed: computed)
        }
        return r
    }

    /// The geometry the record declares.
    public func geometry(deviceOffset: UInt64) throws(FormatError) -> Geometry {
        try Geometry.fromRecord(sectorSize: sectorSize, flags: flags, offset: deviceOffset)
    }
}
