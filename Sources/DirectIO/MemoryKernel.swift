#if canImport(Glibc)
import Glibc
#endif

/// Faults a `MemoryKernel` injects. Ranges are byte ranges on the device; a request that
/// overlaps one is affected.
public struct MemoryFaults: Sendable {
    /// Requests here are accepted but never complete until `completeHung()`.
    public var hang: [IORange] = []
    /// Requests here complete with -EIO.
    public var eio: [IORange] = []
    /// The kernel takes at most this many requests per submit (a partial submit).
    public var acceptPerSubmit: Int = .max
    /// The next N submits return -EAGAIN before anything is taken.
    public var eagainSubmits = 0

    public init() {}
}

/// An in-memory kernel with libaio's contract: requests complete into the caller's buffer,
/// hung requests keep a pointer to that buffer and write into it whenever they are released,
/// exactly as a late real completion would. That is what makes parking testable without a disk.
public final class MemoryKernel: AIOKernel {
    public let capacity: Int
    public var faults = MemoryFaults()
    private(set) var bytes: [UInt8]
    private var ready: [KernelCompletion] = []
    private var hung: [KernelRequest] = []
    private var inFlight = 0

    public init(size: Int, capacity: Int = 256) {
        self.bytes = [UInt8](repeating: 0, count: size)
        self.capacity = capacity
    }

    public var hungCount: Int { hung.count }

    public func submit(_ requests: [KernelRequest]) -> Int {
        if faults.eagainSubmits > 0 {
            faults.eagainSubmits -= 1
            return -Int(EAGAIN)
        }
        let room = capacity - inFlight
        if room <= 0 { return -Int(EAGAIN) }
        let n = min(requests.count, faults.acceptPerSubmit, room)
        for r in requests.prefix(n) {
            inFlight += 1
            if faults.hang.contains(where: { overlaps($0, r) }) {
                hung.append(r)
            } else {
                ready.append(perform(r))
            }
        }
        return n
    }

    public func getEvents(
        minimum: Int, maximum: Int, timeoutNanoseconds: Int64
    ) -> Result<[KernelCompletion], KernelErrno> {
        // Nothing here ever arrives later on its own, so "wait until the timeout" returns at once
        // with what is ready; an empty answer is the timeout.
        let n = min(maximum, ready.count)
        let out = Array(ready.prefix(n))
        ready.removeFirst(n)
        inFlight -= n
        return .success(out)
    }

    /// The device finally answers every hung request: data lands in their (parked) buffers.
    public func completeHung() {
        for r in hung { ready.append(perform(r)) }
        hung.removeAll()
    }

    /// Direct access for tests and for seeding contents.
    public func load(_ data: [UInt8], at offset: Int) {
        bytes.replaceSubrange(offset..<offset + data.count, with: data)
    }

    public func contents(at offset: Int, length: Int) -> [UInt8] {
        Array(bytes[offset..<offset + length])
    }

    private func overlaps(_ a: IORange, _ r: KernelRequest) -> Bool {
        a.offset < r.offset + UInt64(r.length) && r.offset < a.end
    }

    private func perform(_ r: KernelRequest) -> KernelCompletion {
        if faults.eio.contains(where: { overlaps($0, r) }) {
            return KernelCompletion(tag: r.tag, result: -Int64(EIO))
        }
        let start = Int(r.offset)
        let available = max(0, min(r.length, bytes.count - start))
        if available > 0 {
            if r.isWrite {
                bytes.withUnsafeMutableBytes { dst in
                    (dst.baseAddress! + start).copyMemory(from: r.buffer, byteCount: available)
                }
            } else {
                bytes.withUnsafeBytes { src in
                    r.buffer.copyMemory(from: src.baseAddress! + start, byteCount: available)
                }
            }
        }
        return KernelCompletion(tag: r.tag, result: Int64(available))
    }
}
