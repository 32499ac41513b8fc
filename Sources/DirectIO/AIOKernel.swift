/// One request as handed to the kernel. `buffer` stays valid until the request's completion
/// has been reaped; that is the whole point of parking.
public struct KernelRequest: Sendable {
    public var tag: UInt64
    public var isWrite: Bool
    public var offset: UInt64
    public var length: Int
    nonisolated(unsafe) public var buffer: UnsafeMutableRawPointer

    public init(tag: UInt64, isWrite: Bool, offset: UInt64, length: Int, buffer: UnsafeMutableRawPointer) {
        self.tag = tag
        self.isWrite = isWrite
        self.offset = offset
        self.length = length
        self.buffer = buffer
    }
}

/// A completion: the request's tag and its result (bytes transferred, or -errno).
public struct KernelCompletion: Sendable, Hashable {
    public var tag: UInt64
    public var result: Int64

    public init(tag: UInt64, result: Int64) {
        self.tag = tag
        self.result = result
    }
}

/// The syscall seam under the batch engine: libaio in production, memory in tests. It speaks
/// libaio's conventions (counts, or -errno) so the engine's retry and parking logic is the same
/// code whichever kernel is underneath, and tests can force EAGAIN, partial submits and hangs.
public protocol AIOKernel: AnyObject {
    /// How many requests may be in flight at once (io_setup's nr_events).
    var capacity: Int { get }
    /// Hands requests to the kernel; returns how many it took, or -errno (-EAGAIN when full).
    func submit(_ requests: [KernelRequest]) -> Int
    /// Waits up to `timeoutNanoseconds` (negative: forever) for at least `minimum` completions.
    /// Returns what arrived (possibly fewer on timeout), or -errno in `.failure`.
    func getEvents(minimum: Int, maximum: Int, timeoutNanoseconds: Int64) -> Result<[KernelCompletion], KernelErrno>
}

/// A raw errno from the kernel seam.
public struct KernelErrno: Error, Equatable, Sendable {
    public var code: Int32
    public init(_ code: Int32) { self.code = code }
}
