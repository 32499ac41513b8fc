import CDirectIO
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A file or block device opened with O_DIRECT | O_SYNC, driven through Linux AIO.
///
/// Sizes come from the device itself: BLKGETSIZE64 and BLKSSZGET for block devices, st_size
/// and statx's direct-I/O alignment for files. Thread-safe: batches run one at a time.
public final class FileDevice: SectorDevice {
    public let path: String
    public let sizeBytes: UInt64
    public let alignment: Int
    public let isBlockDevice: Bool
    private let engine: Mutex<BatchEngine>

    /// Opens `path`. `readOnly` opens O_RDONLY, so an inspect can never write.
    /// `queueDepth` bounds requests in flight (io_setup's nr_events).
    public init(path: String, readOnly: Bool = false, queueDepth: Int = 512) throws(BlockIOError) {
        let fd = cdio_open_direct(path, readOnly ? 1 : 0)
        guard fd >= 0 else { throw .openFailed(path: path, errno: -fd) }
        var g = cdio_geometry()
        let rc = cdio_geometry_of(fd, path, &g)
        guard rc == 0 else {
            _ = cdio_close(fd)
            if rc == -EINVAL { throw .unsupportedFileType(path: path) }
            throw .kernelFailed(path: path, call: "fstat/ioctl", errno: -rc)
        }
        // Files on filesystems without STATX_DIOALIGN (tmpfs) report 0: use 512, the smallest
        // sector size any lease area has, so our own checks stay at least as strict as ext4's.
        let logical = g.logical_sector > 0 ? Int(g.logical_sector) : 512
        let kernel: LibAIOKernel
        do {
            kernel = try LibAIOKernel(fd: fd, capacity: queueDepth, path: path)
        } catch {
            _ = cdio_close(fd)
            throw error
        }
        self.path = path
        self.sizeBytes = g.size_bytes
        self.alignment = logical
        self.isBlockDevice = g.is_block_device != 0
        self.engine = Mutex(
            BatchEngine(
                kernel: kernel, path: path, sizeBytes: g.size_bytes,
                alignment: logical, memoryAlignment: Int(g.memory_align)))
    }

    public var counters: IOCounters { engine.withLock { $0.counters } }
    public var parkedRequestCount: Int { engine.withLock { $0.parkedRequestCount } }
    public var parkedBufferCount: Int { engine.withLock { $0.parkedBufferCount } }

    public func read(_ ranges: [IORange], timeout: Duration) throws(BlockIOError) -> [[UInt8]] {
        try engine.withLock { (e: inout BatchEngine) throws(BlockIOError) -> [[UInt8]] in
            try e.read(ranges, timeout: timeout)
        }
    }

    public func write(_ writes: [SectorWrite], timeout: Duration) throws(BlockIOError) {
        try engine.withLock { (e: inout BatchEngine) throws(BlockIOError) in
            try e.write(writes, timeout: timeout)
        }
    }

    /// Waits up to `timeout` for timed-out requests to complete; returns how many remain parked.
    @discardableResult
    public func reapParked(timeout: Duration) -> Int {
        engine.withLock { $0.reapParked(timeout: timeout) }
    }
}

/// A device in memory with the same engine as `FileDevice` over a `MemoryKernel`, so batching,
/// merging, deadlines and parking are exercised exactly, with injectable faults.
public final class MemoryDevice: SectorDevice {
    public let path: String
    public let sizeBytes: UInt64
    public let alignment: Int
    private let state: Mutex<(engine: BatchEngine, kernel: MemoryKernel)>

    public init(size: Int, alignment: Int = 512, name: String = "memory", queueDepth: Int = 256) {
        precondition(size % alignment == 0)
        let kernel = MemoryKernel(size: size, capacity: queueDepth)
        self.path = name
        self.sizeBytes = UInt64(size)
        self.alignment = alignment
        self.state = Mutex(
            (
                BatchEngine(
                    kernel: kernel, path: name, sizeBytes: UInt64(size),
                    alignment: alignment, memoryAlignment: alignment), kernel
            ))
    }

    public var counters: IOCounters { state.withLock { $0.engine.counters } }
    public var parkedRequestCount: Int { state.withLock { $0.engine.parkedRequestCount } }
    public var parkedBufferCount: Int { state.withLock { $0.engine.parkedBufferCount } }

    /// Changes the injected faults.
    public func setFaults(_ faults: MemoryFaults) { state.withLock { $0.kernel.faults = faults } }
    /// The device answers every hung request now (into their parked buffers).
    public func completeHung() { state.withLock { $0.kernel.completeHung() } }
    /// Raw contents, bypassing the engine and its counters.
    public func contents(at offset: Int, length: Int) -> [UInt8] {
        state.withLock { $0.kernel.contents(at: offset, length: length) }
    }
    public func load(_ bytes: [UInt8], at offset: Int) { state.withLock { $0.kernel.load(bytes, at: offset) } }

    public func read(_ ranges: [IORange], timeout: Duration) throws(BlockIOError) -> [[UInt8]] {
        try state.withLock { (s: inout (engine: BatchEngine, kernel: MemoryKernel)) throws(BlockIOError) -> [[UInt8]] in
            try s.engine.read(ranges, timeout: timeout)
        }
    }

    public func write(_ writes: [SectorWrite], timeout: Duration) throws(BlockIOError) {
        try state.withLock { (s: inout (engine: BatchEngine, kernel: MemoryKernel)) throws(BlockIOError) in
            try s.engine.write(writes, timeout: timeout)
        }
    }

    @discardableResult
    public func reapParked(timeout: Duration) -> Int {
        state.withLock { $0.engine.reapParked(timeout: timeout) }
    }
}
