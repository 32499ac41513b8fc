import Benchmark
import DirectIO
import LeaseFormat

/// Costs under every ballot: checksumming sectors, decoding a whole lockspace area, and a
/// batch of scattered vs contiguous sector reads through the engine (in-memory kernel, so the
/// figure is our own overhead, not the disk's).
nonisolated(unsafe) let benchmarks = {
    let area = try! InitImage.lockspace(space: "bench", geometry: .g512_1M, ioTimeout: 10).final

    Benchmark("CRC-32C of a 168-byte leader") { b in
        let bytes = Array(area[0..<168])
        for _ in b.scaledIterations { blackHole(CRC32C.sanlock(bytes)) }
    }

    Benchmark("inspect a 512/1M lockspace area (2000 slots)") { b in
        for _ in b.scaledIterations { blackHole(AreaReport.inspect(area, deviceOffset: 0)) }
    }

    let device = MemoryDevice(size: 1 << 20)
    Benchmark("read 64 scattered sectors in one batch") { b in
        let ranges = (0..<64).map { IORange(offset: UInt64($0 * 32 * 512), length: 512) }
        for _ in b.scaledIterations { blackHole(try! device.read(ranges, timeout: .seconds(1))) }
    }

    Benchmark("read 64 contiguous sectors in one batch") { b in
        let ranges = (0..<64).map { IORange(offset: UInt64($0 * 512), length: 512) }
        for _ in b.scaledIterations { blackHole(try! device.read(ranges, timeout: .seconds(1))) }
    }
}
