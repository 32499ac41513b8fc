/// Where things sit inside a lockspace or resource area that starts at `area` (a byte offset).
///
/// Lockspace: host_id H's delta lease at sector H−1; sectors past max_hosts are unused.
/// Resource: leader at sector 0, request record at sector 1, host_id H's dblock at sector H+1,
/// the LVB at the fixed sector 2002 (inside the area only for 512/1M and 4K/8M).
public struct AreaLayout: Hashable, Sendable {
    public static let lvbSector = 2002

    public let offset: UInt64
    public let geometry: Geometry

    public init(offset: UInt64, geometry: Geometry) {
        self.offset = offset
        self.geometry = geometry
    }

    var ss: UInt64 { UInt64(geometry.sectorSize) }

    public func deltaOffset(hostID: Int) -> UInt64 {
        precondition((1...geometry.maxHosts).contains(hostID), "host_id out of range")
        return offset + UInt64(hostID - 1) * ss
    }

    /// The membership epoch sector of a lockspace area (sector max_hosts, unused by sanlock).
    public var epochOffset: UInt64 { offset + UInt64(geometry.maxHosts) * ss }

    /// Every delta-lease slot of a lockspace area, as one range (sectors 0..<max_hosts).
    public var slotsLength: Int { geometry.maxHosts * geometry.sectorSize }

    public var leaderOffset: UInt64 { offset }
    public var requestOffset: UInt64 { offset + ss }

    public func dblockOffset(hostID: Int) -> UInt64 {
        precondition((1...geometry.maxHosts).contains(hostID), "host_id out of range")
        return offset + UInt64(hostID + 1) * ss
    }

    /// The LVB sector's offset, or nil where sanlock's fixed sector 2002 falls outside the area.
    public var lvbOffset: UInt64? {
        AreaLayout.lvbSector < geometry.sectorsPerArea ? offset + UInt64(AreaLayout.lvbSector) * ss : nil
    }

    /// The end of the area (exclusive).
    public var end: UInt64 { offset + UInt64(geometry.alignSize) }
}

/// What `init` writes, in two steps for crash safety (as sanlock does): first the whole area
/// with sector 0 made invalid (magic 0), then sector 0 alone. A crash between the two leaves
/// an area that no reader mistakes for a valid one.
public struct InitImage: Sendable {
    public var area: [UInt8]
    public var sector0: [UInt8]

    /// The bytes on disk once both steps are done.
    public var final: [UInt8] {
        var a = area
        a.replaceSubrange(0..<sector0.count, with: sector0)
        return a
    }

    /// A lockspace area: every one of max_hosts slots holds a free delta record.
    public static func lockspace(space: String, geometry: Geometry, ioTimeout: UInt16) throws(FormatError) -> InitImage
    {
        try LeaseName.validate(space, what: "lockspace")
        let ss = geometry.sectorSize
        var area = [UInt8](repeating: 0, count: geometry.alignSize)
        var record = LeaderRecord.delta(space: space, geometry: geometry, ioTimeout: ioTimeout)
        for slot in 0..<geometry.maxHosts { record.encode(into: &area, at: slot * ss) }
        let sector0 = Array(area[0..<ss])
        var invalid = record
        invalid.magic = 0
        invalid.encode(into: &area, at: 0)
        return InitImage(area: area, sector0: sector0)
    }

    /// A resource area: the leader (num_hosts as given), the request record, zero dblocks.
    public static func resource(
        space: String, resource: String, geometry: Geometry, numHosts: Int
    ) throws(FormatError) -> InitImage {
        try LeaseName.validate(space, what: "lockspace")
        try LeaseName.validate(resource, what: "resource")
        guard (1...geometry.maxHosts).contains(numHosts) else {
            throw .badNumHosts(numHosts: numHosts, maxHosts: geometry.maxHosts)
        }
        let ss = geometry.sectorSize
        var area = [UInt8](repeating: 0, count: geometry.alignSize)
        let leader = LeaderRecord.paxos(space: space, resource: resource, geometry: geometry, numHosts: numHosts)
        RequestRecord().encode(into: &area, at: ss)
        let sector0 = leader.sector(size: ss)
        var invalid = leader
        invalid.magic = 0
        invalid.encode(into: &area, at: 0)
        return InitImage(area: area, sector0: sector0)
    }
}
