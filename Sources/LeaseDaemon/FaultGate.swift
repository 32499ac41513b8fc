import DirectIO
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A device whose every I/O fails while a control file exists: the storage-loss drill
/// (`fault-file`). Failures look like a path that stopped answering: a timeout after the
/// caller's deadline, as a detached LUN gives, and nothing reaches the disk. Every I/O also
/// fails (ESTALE) once the path names something other than what was opened.
final class FaultGate: SectorDevice, @unchecked Sendable {
    let inner: any SectorDevice
    let controlFile: String?

    /// What the path named when it was opened: (st_dev, st_ino) of a file, st_rdev of a
    /// block device (udev may recreate the node).
    let identity: (UInt64, UInt64)?

    init(_ inner: any SectorDevice, controlFile: String?) {
        self.inner = inner
        self.controlFile = controlFile
        identity = Self.identity(of: inner.path)
    }

    static func identity(of path: String) -> (UInt64, UInt64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        if (st.st_mode & S_IFMT) == S_IFBLK { return (UInt64(st.st_rdev), 0) }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// The path no longer names what we opened (a lease file deleted and re-created, a device
    /// node pointing elsewhere): our I/O would go to a file nobody else uses, so it fails as if
    /// the storage were lost, and the lockspace fences.
    var replaced: Bool {
        guard let identity else { return false }
        guard let now = Self.identity(of: path) else { return true }
        return now != identity
    }

    func replacedError(_ offset: UInt64) -> BlockIOError {
        .ioError(path: path, offset: offset, length: 0, errno: ESTALE)
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
        if replaced { throw replacedError(ranges.first?.offset ?? 0) }
        return try inner.read(ranges, timeout: timeout)
    }

    func write(_ writes: [SectorWrite], timeout: Duration) throws(BlockIOError) {
        if lost { throw failure(writes.first?.offset ?? 0, timeout) }
        if replaced { throw replacedError(writes.first?.offset ?? 0) }
        try inner.write(writes, timeout: timeout)
    }

    func reapParked(timeout: Duration) -> Int { inner.reapParked(timeout: timeout) }
}
