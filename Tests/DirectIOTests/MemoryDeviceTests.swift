import Testing
@testable import DirectIO

#if canImport(Glibc)
import Glibc
#endif

@Suite struct MemoryDeviceTests {
    static func pattern(_ sector: Int, size: Int = 512) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: sector &* 31 &+ $0) }
    }

    func filled(sectors: Int = 64) -> MemoryDevice {
        let d = MemoryDevice(size: sectors * 512)
        for s in 0..<sectors { d.load(Self.pattern(s), at: s * 512) }
        return d
    }

    @Test func scatteredSectorsGoOutInOneSubmit() throws {
        let d = filled()
        let want = [3, 17, 40, 9, 63]
        let got = try d.read(want.map { IORange(offset: UInt64($0 * 512), length: 512) }, timeout: .seconds(1))
        #expect(got == want.map { Self.pattern($0) })
        #expect(d.counters.submits == 1)
        #expect(d.counters.readRequests == 5)
        #expect(d.counters.bytesRead == 5 * 512)
    }

    @Test func contiguousSectorsBecomeOneRequest() throws {
        let d = filled()
        _ = try d.read((10..<20).map { IORange(offset: UInt64($0 * 512), length: 512) }, timeout: .seconds(1))
        #expect(d.counters.submits == 1 && d.counters.readRequests == 1 && d.counters.bytesRead == 10 * 512)
    }

    @Test func writesLandAndMerge() throws {
        let d = MemoryDevice(size: 64 * 512)
        try d.write(
            [SectorWrite(offset: 1024, bytes: Self.pattern(2)), SectorWrite(offset: 512, bytes: Self.pattern(1))],
            timeout: .seconds(1))
        #expect(d.contents(at: 512, length: 1024) == Self.pattern(1) + Self.pattern(2))
        #expect(d.counters.writeRequests == 1 && d.counters.bytesWritten == 1024)
    }

    @Test func partialSubmitsAndEAGAINAreRequeued() throws {
        let d = filled()
        var f = MemoryFaults()
        f.acceptPerSubmit = 2
        f.eagainSubmits = 3
        d.setFaults(f)
        let want = Array(stride(from: 0, to: 64, by: 3))
        let got = try d.read(want.map { IORange(offset: UInt64($0 * 512), length: 512) }, timeout: .seconds(1))
        #expect(got == want.map { Self.pattern($0) })
        #expect(d.counters.readRequests == want.count)
        #expect(d.counters.submits == (want.count + 1) / 2)
    }

    @Test func queueSmallerThanTheBatchStillCompletes() throws {
        let d = MemoryDevice(size: 64 * 512, queueDepth: 4)
        let got = try d.read(
            stride(from: 0, to: 64, by: 2).map { IORange(offset: UInt64($0 * 512), length: 512) }, timeout: .seconds(1))
        #expect(got.count == 32 && d.counters.readRequests == 32)
    }

    @Test func eioNamesTheOffset() {
        let d = filled()
        var f = MemoryFaults()
        f.eio = [IORange(offset: 4096, length: 512)]
        d.setFaults(f)
        #expect(throws: BlockIOError.ioError(path: "memory", offset: 4096, length: 512, errno: EIO)) {
            try d.read([IORange(offset: 0, length: 512), IORange(offset: 4096, length: 512)], timeout: .seconds(1))
        }
        #expect(d.parkedRequestCount == 0)  // the good request was drained, not abandoned
    }

    @Test func badRequestsAreRefusedBeforeSubmit() {
        let d = filled()
        #expect(throws: BlockIOError.misaligned(path: "memory", offset: 100, length: 512, alignment: 512)) {
            try d.read(offset: 100, length: 512, timeout: .seconds(1))
        }
        #expect(throws: BlockIOError.misaligned(path: "memory", offset: 0, length: 100, alignment: 512)) {
            try d.read(offset: 0, length: 100, timeout: .seconds(1))
        }
        #expect(throws: BlockIOError.outOfRange(path: "memory", offset: 32768, length: 512, deviceSize: 32768)) {
            try d.write(offset: 32768, bytes: Self.pattern(0), timeout: .seconds(1))
        }
        #expect(throws: BlockIOError.overlappingWrites(path: "memory", offset: 0)) {
            try d.write(
                [
                    SectorWrite(offset: 0, bytes: Self.pattern(0) + Self.pattern(1)),
                    SectorWrite(offset: 512, bytes: Self.pattern(1)),
                ],
                timeout: .seconds(1))
        }
        #expect(d.counters.submits == 0)
    }

    @Test func hungBatchParksItsBufferUntilTheKernelAnswers() throws {
        let d = filled()
        var f = MemoryFaults()
        f.hang = [IORange(offset: 8 * 512, length: 512)]
        d.setFaults(f)
        #expect(throws: BlockIOError.timeout(path: "memory", offset: 4096, inFlight: 1, timeoutMilliseconds: 5)) {
            try d.read(
                [IORange(offset: 0, length: 512), IORange(offset: 8 * 512, length: 512)], timeout: .milliseconds(5))
        }
        #expect(d.parkedRequestCount == 1 && d.parkedBufferCount == 1)
        #expect(d.counters.timeouts == 1)

        // The device keeps working with a fresh buffer while the old one stays parked.
        d.setFaults(MemoryFaults())
        let again = try d.read([IORange(offset: 512, length: 512)], timeout: .seconds(1))
        #expect(again == [Self.pattern(1)])
        #expect(d.parkedRequestCount == 1)

        // The late completion writes into the parked buffer (not into anything in use), and is reaped.
        d.completeHung()
        #expect(d.reapParked(timeout: .seconds(1)) == 0)
        #expect(d.parkedBufferCount == 0)
        #expect(try d.read(offset: 8 * 512, length: 512, timeout: .seconds(1)) == Self.pattern(8))
    }

    @Test func tooManyParkedRequestsDegradeTheDevice() {
        let d = MemoryDevice(size: 64 * 512, queueDepth: 8)
        var f = MemoryFaults()
        f.hang = [IORange(offset: 0, length: 64 * 512)]
        d.setFaults(f)
        #expect(throws: BlockIOError.self) {
            try d.read((0..<6).map { IORange(offset: UInt64($0 * 1024), length: 512) }, timeout: .milliseconds(1))
        }
        #expect(throws: BlockIOError.degraded(path: "memory", parkedRequests: 6)) {
            try d.read(offset: 0, length: 512, timeout: .milliseconds(1))
        }
    }
}
