import CDirectIO

#if canImport(Glibc)
import Glibc
#endif

/// The production kernel: Linux AIO through libaio on one O_DIRECT file descriptor, which it
/// owns and closes.
/// iocb and event arrays are allocated once; the kernel copies iocbs at io_submit, so reusing
/// that memory is safe (data buffers are another matter, see `BatchEngine`).
final class LibAIOKernel: AIOKernel {
    let fd: Int32
    let capacity: Int
    private let context: io_context_t
    private let iocbs: UnsafeMutableRawPointer
    private let events: UnsafeMutableRawPointer

    init(fd: Int32, capacity: Int, path: String) throws(BlockIOError) {
        var ctx: io_context_t? = nil
        let rc = cdio_setup(UInt32(capacity), &ctx)
        guard rc == 0, let ctx else { throw .kernelFailed(path: path, call: "io_setup", errno: -rc) }
        self.fd = fd
        self.capacity = capacity
        self.context = ctx
        self.iocbs = UnsafeMutableRawPointer.allocate(byteCount: cdio_iocb_size() * capacity, alignment: 64)
        self.events = UnsafeMutableRawPointer.allocate(byteCount: cdio_event_size() * capacity, alignment: 64)
    }

    deinit {
        // io_destroy waits for requests still in flight, so parked buffers freed after this
        // point can no longer be written by the kernel.
        _ = cdio_destroy(context)
        _ = cdio_close(fd)
        iocbs.deallocate()
        events.deallocate()
    }

    func submit(_ requests: [KernelRequest]) -> Int {
        let n = min(requests.count, capacity)
        let size = cdio_iocb_size()
        for i in 0..<n {
            let r = requests[i]
            let cb = (iocbs + i * size).assumingMemoryBound(to: iocb.self)
            cdio_prep(cb, fd, r.isWrite ? 1 : 0, r.buffer, r.length, Int64(r.offset), r.tag)
        }
        return Int(cdio_submit(context, iocbs.assumingMemoryBound(to: iocb.self), Int32(n)))
    }

    func getEvents(minimum: Int, maximum: Int, timeoutNanoseconds: Int64) -> Result<[KernelCompletion], KernelErrno> {
        let maximum = min(maximum, capacity)
        let ev = events.assumingMemoryBound(to: io_event.self)
        let rc = cdio_getevents(context, Int32(minimum), Int32(maximum), ev, timeoutNanoseconds)
        if rc < 0 { return .failure(KernelErrno(-rc)) }
        var out: [KernelCompletion] = []
        out.reserveCapacity(Int(rc))
        for i in 0..<Int(rc) {
            out.append(KernelCompletion(tag: cdio_event_tag(ev + i), result: cdio_event_result(ev + i)))
        }
        return .success(out)
    }
}
