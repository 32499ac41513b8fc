import Foundation
import Synchronization
import Testing
@testable import DirectIO

/// A device whose first batch waits until the test opens the gate, so that other callers
/// line up behind it in a known order.
final class GatedDevice: SectorDevice, @unchecked Sendable {
    let inner: MemoryDevice
    let entered = DispatchSemaphore(value: 0)
    let gate = DispatchSemaphore(value: 0)
    private let first = NSLock()
    private var held = true

    init(_ inner: MemoryDevice) { self.inner = inner }

    var path: String { inner.path }
    var sizeBytes: UInt64 { inner.sizeBytes }
    var alignment: Int { inner.alignment }
    var counters: IOCounters { inner.counters }

    private func pause() {
        first.lock()
        let wait = held
        held = false
        first.unlock()
        if wait {
            entered.signal()
            gate.wait()
        }
    }

    func read(_ ranges: [IORange], timeout: Duration) throws(BlockIOError) -> [[UInt8]] {
        pause()
        return try inner.read(ranges, timeout: timeout)
    }

    func write(_ writes: [SectorWrite], timeout: Duration) throws(BlockIOError) {
        pause()
        try inner.write(writes, timeout: timeout)
    }

    func reapParked(timeout: Duration) -> Int { inner.reapParked(timeout: timeout) }
}

@Suite struct CoalescingDeviceTests {
    static func sector(_ n: Int, _ tag: UInt8 = 0) -> [UInt8] {
        (0..<512).map { UInt8(truncatingIfNeeded: n &* 7 &+ $0) ^ tag }
    }

    /// Ten reads and ten writes queued behind a slow batch go out as one read batch and one
    /// write batch; a write overlapping one already taken waits for the batch after.
    @Test func queuedCallersShareSubmitsAndOverlappingWritesDoNot() throws {
        let memory = MemoryDevice(size: 128 * 512)
        for s in 0..<64 { memory.load(Self.sector(s), at: s * 512) }
        let gated = GatedDevice(memory)
        let device = CoalescingDevice(gated)
        let group = DispatchGroup()
        let reads = Mutex<[Int: [UInt8]]>([:])
        let failures = Mutex<[String]>([])

        func start(_ work: @escaping @Sendable () throws -> Void) {
            let before = device.queuedCount
            group.enter()
            Thread.detachNewThread {
                do { try work() } catch { failures.withLock { $0.append("\(error)") } }
                group.leave()
            }
            // Line callers up one by one, so the queue order is the order started.
            while device.queuedCount == before { usleep(200) }
        }

        group.enter()
        Thread.detachNewThread {
            _ = try? device.read([IORange(offset: 0, length: 512)], timeout: .seconds(5))
            group.leave()
        }
        gated.entered.wait()
        for s in 1...10 {
            start {
                let got = try device.read([IORange(offset: UInt64(s * 512), length: 512)], timeout: .seconds(5))[0]
                reads.withLock { $0[s] = got }
            }
        }
        for s in 64..<74 {
            start { try device.write(offset: UInt64(s * 512), bytes: Self.sector(s, 0xFF), timeout: .seconds(5)) }
        }
        // Overlaps the write of sector 64: it must land after it, in a later submission.
        start { try device.write(offset: 64 * 512, bytes: Self.sector(64, 0x0F), timeout: .seconds(5)) }
        #expect(device.queuedCount == 21)
        gated.gate.signal()
        group.wait()

        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        #expect(reads.withLock { $0 } == Dictionary(uniqueKeysWithValues: (1...10).map { ($0, Self.sector($0)) }))
        #expect(memory.contents(at: 64 * 512, length: 512) == Self.sector(64, 0x0F))
        #expect(memory.contents(at: 65 * 512, length: 9 * 512) == (65..<74).flatMap { Self.sector($0, 0xFF) })
        // The gated read, the ten reads, ten writes, then the overlapping write.
        #expect(device.innerBatches == 4)
        #expect(memory.counters.submits == 4)
        #expect(memory.counters.readRequests == 1 + 1, "sectors 1...10 merge into one request")
        #expect(memory.counters.writeRequests == 1 + 1)
    }

    /// A misaligned or out-of-range request fails on its own, before it can join a batch.
    @Test func badRequestsFailAloneAndSubmitNothing() {
        let memory = MemoryDevice(size: 16 * 512)
        let device = CoalescingDevice(memory)
        #expect(throws: BlockIOError.misaligned(path: "memory", offset: 100, length: 512, alignment: 512)) {
            try device.read([IORange(offset: 100, length: 512)], timeout: .seconds(1))
        }
        #expect(throws: BlockIOError.outOfRange(path: "memory", offset: 8192, length: 512, deviceSize: 8192)) {
            try device.write(offset: 8192, bytes: [UInt8](repeating: 1, count: 512), timeout: .seconds(1))
        }
        #expect(device.innerBatches == 0 && memory.counters.submits == 0)
    }
}
