/// A byte range on a device. Offsets and lengths are in bytes and must be multiples of the
/// device's `alignment` (its logical sector size).
public struct IORange: Sendable, Hashable, CustomStringConvertible {
    public var offset: UInt64
    public var length: Int

    public init(offset: UInt64, length: Int) {
        self.offset = offset
        self.length = length
    }

    public var end: UInt64 { offset + UInt64(length) }
    public var description: String { "[\(offset), +\(length))" }

    /// Throws unless the range is non-empty, whole sectors at a sector boundary, and inside
    /// the device: what every device checks before anything is submitted.
    func check(path: String, alignment: Int, deviceSize: UInt64) throws(BlockIOError) {
        guard length > 0, offset % UInt64(alignment) == 0, length % alignment == 0 else {
            throw .misaligned(path: path, offset: offset, length: length, alignment: alignment)
        }
        guard end <= deviceSize else {
            throw .outOfRange(path: path, offset: offset, length: length, deviceSize: deviceSize)
        }
    }
}

/// One write in a batch: whole sectors of bytes at an aligned offset.
public struct SectorWrite: Sendable, Hashable {
    public var offset: UInt64
    public var bytes: [UInt8]

    public init(offset: UInt64, bytes: [UInt8]) {
        self.offset = offset
        self.bytes = bytes
    }

    public var range: IORange { IORange(offset: offset, length: bytes.count) }
}

/// Exact I/O figures for one device since it was opened. Tests and benchmarks assert on these.
public struct IOCounters: Sendable, Hashable, CustomStringConvertible {
    /// Calls to the device API (`read` or `write`), each one batch.
    public var batches = 0
    /// io_submit calls that handed at least one request to the kernel.
    public var submits = 0
    /// Requests (iocbs) handed to the kernel, after merging contiguous ranges.
    public var readRequests = 0
    public var writeRequests = 0
    public var bytesRead = 0
    public var bytesWritten = 0
    /// Batches that ran past their deadline.
    public var timeouts = 0

    public init() {}

    public var description: String {
        "batches=\(batches) submits=\(submits) reads=\(readRequests) writes=\(writeRequests) bytesRead=\(bytesRead) "
            + "bytesWritten=\(bytesWritten) timeouts=\(timeouts)"
    }
}

/// The storage port: what every layer above uses to reach the disk.
///
/// Guarantees of every implementation:
/// * one call is one batch: all its ranges go to the kernel together (one `io_submit` unless
///   the kernel takes fewer), and contiguous ranges are merged into one request;
/// * offsets and lengths are checked against `alignment` and the device size before anything
///   is submitted, so a bad request never reaches the disk;
/// * the whole batch shares one deadline, `timeout`; a request still in flight at the deadline
///   keeps its buffer parked until the kernel completes it, and is never reused before;
/// * a failed batch throws, and a read never returns partial data.
public protocol SectorDevice: Sendable {
    /// The path the device was opened from (used in every error).
    var path: String { get }
    /// Size in bytes.
    var sizeBytes: UInt64 { get }
    /// The logical sector size: offsets and lengths must be multiples of it.
    var alignment: Int { get }
    /// Counters since open.
    var counters: IOCounters { get }

    /// Reads every range in one batch and returns their bytes, in the order asked.
    func read(_ ranges: [IORange], timeout: Duration) throws(BlockIOError) -> [[UInt8]]
    /// Writes every range in one batch; returns once all are on disk.
    func write(_ writes: [SectorWrite], timeout: Duration) throws(BlockIOError)
    /// Waits up to `timeout` for requests that timed out earlier (and may still reach the
    /// disk) to complete; returns how many are still outstanding.
    func reapParked(timeout: Duration) -> Int
}

extension SectorDevice {
    /// Reads one range.
    public func read(offset: UInt64, length: Int, timeout: Duration) throws(BlockIOError) -> [UInt8] {
        try read([IORange(offset: offset, length: length)], timeout: timeout)[0]
    }

    /// Reads several callers' ranges as one batch and hands each its own bytes, in its order:
    /// how batches of many operations share a submit (`CoalescingDevice`, `BatchRunner`).
    public func read(groups: [[IORange]], timeout: Duration) throws(BlockIOError) -> [[[UInt8]]] {
        let bytes = try read(groups.flatMap { $0 }, timeout: timeout)
        var at = 0
        return groups.map { g in
            defer { at += g.count }
            return Array(bytes[at..<at + g.count])
        }
    }

    /// Writes one range.
    public func write(offset: UInt64, bytes: [UInt8], timeout: Duration) throws(BlockIOError) {
        try write([SectorWrite(offset: offset, bytes: bytes)], timeout: timeout)
    }
}
