import Foundation
import Testing
import TestSupport
@testable import DirectIO

#if canImport(Glibc)
import Glibc
#endif

@Suite struct FileDeviceTests {
    static func sector(_ n: Int, size: Int = 512) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: n ^ ($0 * 7)) }
    }

    @Test func readsAndWritesRealSectorsOnExt4() throws {
        let path = Scratch.file(size: 1 << 20)
        defer { Scratch.remove(path) }
        let d = try FileDevice(path: path)
        #expect(d.sizeBytes == 1 << 20)
        #expect(d.alignment == 512)
        #expect(!d.isBlockDevice)
        try d.write(
            [SectorWrite(offset: 0, bytes: Self.sector(0)), SectorWrite(offset: 4096, bytes: Self.sector(8))],
            timeout: .seconds(5))
        #expect(try d.read(offset: 4096, length: 512, timeout: .seconds(5)) == Self.sector(8))
        // What O_DIRECT wrote is what an ordinary read sees.
        let file = Scratch.bytes(of: path)
        #expect(Array(file[0..<512]) == Self.sector(0) && Array(file[4096..<4608]) == Self.sector(8))
    }

    @Test func scatteredBatchIsOneSubmit() throws {
        let path = Scratch.file(size: 1 << 20)
        defer { Scratch.remove(path) }
        let d = try FileDevice(path: path)
        let ids = [5, 100, 1999, 42, 7, 8, 9]
        try d.write(ids.map { SectorWrite(offset: UInt64($0 * 512), bytes: Self.sector($0)) }, timeout: .seconds(5))
        let before = d.counters
        let got = try d.read(ids.map { IORange(offset: UInt64($0 * 512), length: 512) }, timeout: .seconds(5))
        #expect(got == ids.map { Self.sector($0) })
        #expect(d.counters.submits - before.submits == 1)
        #expect(d.counters.readRequests - before.readRequests == 5)  // 7,8,9 merged
        #expect(d.counters.bytesRead - before.bytesRead == 7 * 512)
    }

    @Test func missingPathAndTruncatedFile() throws {
        #expect(throws: BlockIOError.openFailed(path: "/nonexistent/lease.img", errno: ENOENT)) {
            try FileDevice(path: "/nonexistent/lease.img")
        }
        let path = Scratch.file(size: 3 * 512)
        defer { Scratch.remove(path) }
        let d = try FileDevice(path: path)
        #expect(throws: BlockIOError.outOfRange(path: path, offset: 1024, length: 1024, deviceSize: 1536)) {
            try d.read(offset: 1024, length: 1024, timeout: .seconds(1))
        }
    }

    @Test func realShortTimeoutParksBuffersUntilReaped() throws {
        let path = Scratch.filledFile(size: 4 << 20)
        defer { Scratch.remove(path) }
        let d = try FileDevice(path: path, queueDepth: 4096)
        // Every other sector of 4 MiB: 4096 scattered reads cannot all complete in zero time.
        let ranges = stride(from: 0, to: 8192, by: 2).map { IORange(offset: UInt64($0 * 512), length: 512) }
        var timedOut = false
        for _ in 0..<20 where !timedOut {
            do {
                _ = try d.read(ranges, timeout: .zero)
            } catch let e {
                guard case .timeout = e else { throw e }
                timedOut = true
            }
        }
        #expect(timedOut, "4096 scattered O_DIRECT reads never outlasted a zero timeout")
        #expect(d.parkedRequestCount > 0)
        #expect(d.reapParked(timeout: .seconds(10)) == 0)
        #expect(d.parkedBufferCount == 0)
        // And the device is fine afterwards.
        _ = try d.read(offset: 0, length: 4096, timeout: .seconds(5))
    }

    @Test(arguments: [512, 4096])
    func loopDeviceReportsItsLogicalSectorSize(sectorSize: Int) throws {
        let loop = try LoopDevice(size: 8 << 20, sectorSize: sectorSize)
        let d = try FileDevice(path: loop.path)
        #expect(d.isBlockDevice)
        #expect(d.alignment == sectorSize)
        #expect(d.sizeBytes == 8 << 20)
        try d.write(offset: UInt64(sectorSize * 3), bytes: Self.sector(3, size: sectorSize), timeout: .seconds(5))
        #expect(
            try d.read(offset: UInt64(sectorSize * 3), length: sectorSize, timeout: .seconds(5))
                == Self.sector(3, size: sectorSize))
        if sectorSize == 4096 {
            #expect(throws: BlockIOError.misaligned(path: loop.path, offset: 512, length: 512, alignment: 4096)) {
                try d.read(offset: 512, length: 512, timeout: .seconds(1))
            }
        }
    }
}
