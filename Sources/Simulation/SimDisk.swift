import DirectIO
import LeaseFormat

/// The one shared disk of a simulation: bytes, plus a checker that watches every sector land.
struct SimDisk {
    var bytes: [UInt8]
    let sectorSize: Int

    init(size: Int, sectorSize: Int) {
        bytes = [UInt8](repeating: 0, count: size)
        self.sectorSize = sectorSize
    }

    func read(_ ranges: [IORange]) -> [[UInt8]] {
        ranges.map { Array(bytes[Int($0.offset)..<Int($0.end)]) }
    }

    mutating func land(_ offset: UInt64, _ sector: [UInt8]) {
        bytes.replaceSubrange(Int(offset)..<Int(offset) + sector.count, with: sector)
    }

    func sector(at offset: UInt64) -> [UInt8] { Array(bytes[Int(offset)..<Int(offset) + sectorSize]) }
}
