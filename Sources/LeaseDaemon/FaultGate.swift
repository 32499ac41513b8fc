import DirectIO
import Foundation

/// A device whose every I/O fails while a control file exists: the storage-loss drill
/// (`fault-file`). Failures look like a path that stopped answering: a timeout after the
/// caller's deadline, as a detached LUN gives, and nothing reaches the disk.
final class FaultGate: SectorDevice, @unchecked Sendable {
    let inner: any SectorDevice
    let controlFile: String?

    init(_ inner: any SectorDevice, controlFile: String?) {
        self.inner = inner
        self.controlFile = controlFile
    }

    var path: String { inner.path }
    var sizeBytes: UInt64 { inner.sizeBytes }
    var alignment: Int { inner.alignment }
    var counters: IOCounters { inner.counters }

    var lost: Bool { controlFile.map { FileManager.default.fileExists(atPath: $0) } ?? false }

    func failure(_ offset: UInt64, _ timeout: Duration) -> BlockIOError {
        let ms = timeout.wholeNanoseconds / 1_000_000
        Thread.sleep(forTimeInterval: Double(ms) / 1000)
        return .timeout(path: path, offset: offset, inFlight: 1, timeoutMilliseconds: ms)
    }

    func read(_ ranges: [IORange], timeout: Duration) throws(BlockIOError) -> [[UInt8]] {
        if lost { throw failure(ranges.first?.offset ?? 0, timeout) }
        return try inner.read(ranges, timeout: timeout)
    }

    func write(_ writes: [SectorWrite], timeout: Duration) throws(BlockIOError) {
        if lost { throw failure(writes.first?.offset ?? 0, timeout) }
        try inner.write(writes, timeout: timeout)
    }

    func reapParked(timeout: Duration) -> Int { inner.reapParked(timeout: timeout) }
}
