import DirectIO
import LeaseFormat

/// The sectors one ballot reads, merged into as few requests as pay off.
public struct ReadPlan: Sendable, Hashable {
    public var ranges: [IORange]
    /// Host ids whose dblocks the ranges cover (≤ num_hosts), all of which the ballot examines.
    public var hostIDs: [Int]
    public var mode: ReadMode

    public var bytes: Int { ranges.reduce(0) { $0 + $1.length } }
}

/// Chooses a ballot's reads (DESIGN.md rules 1 and 7).
///
/// Live mode reads the leader (sector 0), the request record (sector 1) and the dblock (sector
/// h+1) of every host in the read set. Neighbouring sectors are merged, and a gap is read
/// through when that is cheaper than another request: on this hardware a separate small read
/// costs about `requestCostSectors` sectors of a contiguous one. When the live plan costs more
/// than the full read, the full read is used. Full mode reads roundup_pow2(num_hosts + 2)
/// sectors from the start of the area in one request, as sanlock does.
public enum ReadPlanner {
    public static let requestCostSectors = 25

    public static func plan(layout: AreaLayout, numHosts: Int, hostIDs: [Int], mode: ReadMode) -> ReadPlan {
        let full = fullPlan(layout: layout, numHosts: numHosts)
        guard mode == .live else { return full }
        var sectors = [0, 1] + hostIDs.filter { $0 >= 1 && $0 <= numHosts }.map { $0 + 1 }
        sectors = Array(Set(sectors)).sorted()
        // Runs of sectors, joined across gaps cheaper to read than to skip.
        var runs: [(first: Int, last: Int)] = []
        for s in sectors {
            if let last = runs.last, s - last.last - 1 < requestCostSectors {
                runs[runs.count - 1].last = s
            } else {
                runs.append((s, s))
            }
        }
        let cost = runs.reduce(0) { $0 + requestCostSectors + ($1.last - $1.first + 1) }
        let fullSectors = full.bytes / layout.geometry.sectorSize
        if cost >= requestCostSectors + fullSectors { return full }
        let ss = layout.geometry.sectorSize
        let ranges = runs.map {
            IORange(offset: layout.offset + UInt64($0.first * ss), length: ($0.last - $0.first + 1) * ss)
        }
        let covered = runs.flatMap { ($0.first...$0.last).map { $0 - 1 } }.filter { $0 >= 1 && $0 <= numHosts }
        return ReadPlan(ranges: ranges, hostIDs: covered, mode: .live)
    }

    /// sanlock's ballot read: roundup_pow2(num_hosts + 2) sectors, within the area.
    public static func fullPlan(layout: AreaLayout, numHosts: Int) -> ReadPlan {
        var n = 1
        while n < numHosts + 2 { n <<= 1 }
        n = min(n, layout.geometry.sectorsPerArea)
        let ss = layout.geometry.sectorSize
        let hosts = Array(1...min(numHosts, n - 2))
        return ReadPlan(ranges: [IORange(offset: layout.offset, length: n * ss)], hostIDs: hosts, mode: .full)
    }
}
