#if canImport(Glibc)
import Glibc
#endif

/// Runs batches against an `AIOKernel`: validates, plans, lays requests out in one reusable
/// aligned arena, submits (re-queuing after partial submits and EAGAIN), reaps against one
/// deadline, and parks the arena of a batch that times out until the kernel gives back every
/// request that could still write into it.
///
/// Not thread-safe: a device holds its engine inside a mutex.
struct BatchEngine {
    let kernel: any AIOKernel
    let path: String
    let sizeBytes: UInt64
    let alignment: Int
    /// Requests are laid out at multiples of this inside the arena (>= the memory alignment
    /// O_DIRECT needs; the kernel here does not check it, so we do).
    let memoryAlignment: Int
    /// A device with more parked requests than this refuses new batches.
    let maxParkedRequests: Int

    private(set) var counters = IOCounters()
    private var arena: AlignedBuffer?
    private var parked: [ParkedArena] = []
    private var nextBatch: UInt64 = 1

    /// An arena the kernel may still write into, and the tags of its unreaped requests, with
    /// the ranges of the writes among them (still able to land on disk).
    private struct ParkedArena {
        var buffer: AlignedBuffer
        var outstanding: Set<UInt64>
        var writes: [UInt64: IORange]
    }

    init(kernel: any AIOKernel, path: String, sizeBytes: UInt64, alignment: Int, memoryAlignment: Int) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment must be a power of two")
        self.kernel = kernel
        self.path = path
        self.sizeBytes = sizeBytes
        self.alignment = alignment
        self.memoryAlignment = max(alignment, memoryAlignment)
        self.maxParkedRequests = max(1, kernel.capacity / 2)
    }

    var parkedRequestCount: Int { parked.reduce(0) { $0 + $1.outstanding.count } }

    /// The offset of a parked (timed-out, unreaped) write overlapping `r`, if any.
    func parkedWriteOverlapping(_ r: IORange) -> UInt64? {
        for p in parked {
            for w in p.writes.values where w.offset < r.end && r.offset < w.end { return max(w.offset, r.offset) }
        }
        return nil
    }
    var parkedBufferCount: Int { parked.count }

    // MARK: - Public operations

    mutating func read(_ ranges: [IORange], timeout: Duration) throws(BlockIOError) -> [[UInt8]] {
        counters.batches += 1
        for r in ranges { try check(r) }
        let plan = BatchPlan.reads(ranges)
        let layout = try prepareArena(for: plan.requests)
        try execute(plan.requests, layout: layout, isWrite: false, timeout: timeout)
        let base = arena!.base
        return ranges.indices.map { i in
            let p = plan.placements[i]
            let src = base + layout[p.request] + p.offsetInRequest
            return [UInt8](UnsafeRawBufferPointer(start: src, count: ranges[i].length))
        }
    }

    mutating func write(_ writes: [SectorWrite], timeout: Duration) throws(BlockIOError) {
        counters.batches += 1
        for w in writes { try check(w.range) }
        guard let plan = BatchPlan.writes(writes.map(\.range)) else {
            let first = writes.map(\.offset).sorted().first ?? 0
            throw .overlappingWrites(path: path, offset: first)
        }
        // One sector's writes must land in the order we issue them (mbal and lver never go
        // back on disk): a timed-out write there must be reaped before another is issued.
        reapParkedNow()
        for w in writes {
            if let hit = parkedWriteOverlapping(w.range) { throw .writePending(path: path, offset: hit) }
        }
        let layout = try prepareArena(for: plan.requests)
        let base = arena!.base
        for (i, w) in writes.enumerated() {
            let p = plan.placements[i]
            w.bytes.withUnsafeBytes { src in
                (base + layout[p.request] + p.offsetInRequest).copyMemory(
                    from: src.baseAddress!, byteCount: w.bytes.count)
            }
        }
        try execute(plan.requests, layout: layout, isWrite: true, timeout: timeout)
    }

    /// Waits up to `timeout` for parked requests to come back; returns how many are left.
    mutating func reapParked(timeout: Duration) -> Int {
        let deadline = ContinuousClock.now + timeout
        while !parked.isEmpty {
            let remaining = Self.nanoseconds(deadline - ContinuousClock.now)
            switch kernel.getEvents(minimum: 1, maximum: kernel.capacity, timeoutNanoseconds: max(0, remaining)) {
            case .success(let events):
                if events.isEmpty { return parkedRequestCount }
                for e in events { retireParked(e.tag) }
            case .failure(let e):
                Self.trapIfBug(e.code, call: "io_getevents")
                // EINTR: go round again, but never past the deadline.
                if e.code != EINTR || remaining <= 0 { return parkedRequestCount }
            }
        }
        return parkedRequestCount
    }

    // MARK: - Steps

    private func check(_ r: IORange) throws(BlockIOError) {
        try r.check(path: path, alignment: alignment, deviceSize: sizeBytes)
    }

    /// Returns each request's byte offset in the arena, growing the arena if this batch needs
    /// more than it has (the common sizes are allocated once and reused).
    private mutating func prepareArena(for requests: [IORange]) throws(BlockIOError) -> [Int] {
        var layout: [Int] = []
        layout.reserveCapacity(requests.count)
        var cursor = 0
        for r in requests {
            layout.append(cursor)
            cursor += (r.length + memoryAlignment - 1) / memoryAlignment * memoryAlignment
        }
        if arena == nil || arena!.capacity < cursor {
            arena = try AlignedBuffer(capacity: max(cursor, 1 << 20))
        }
        return layout
    }

    private mutating func execute(
        _ requests: [IORange], layout: [Int], isWrite: Bool, timeout: Duration
    ) throws(BlockIOError) {
        reapParkedNow()
        if parkedRequestCount > maxParkedRequests {
            throw .degraded(path: path, parkedRequests: parkedRequestCount)
        }
        let buffer = arena!
        let batch = nextBatch
        nextBatch += 1
        let tagBase = batch << 24
        precondition(requests.count < 1 << 24, "too many requests in one batch")

        var pending: [KernelRequest] = requests.enumerated().map { i, r in
            let p = buffer.base + layout[i]
            // Pair assertion with the kernel's contract: memory, offset and length aligned.
            precondition(Int(bitPattern: p) % memoryAlignment == 0, "buffer not aligned for O_DIRECT")
            precondition(r.offset % UInt64(alignment) == 0 && r.length % alignment == 0)
            return KernelRequest(
                tag: tagBase | UInt64(i), isWrite: isWrite, offset: r.offset, length: r.length, buffer: p)
        }
        pending.reverse()  // pop from the end, submit in offset order
        var inFlight = Set<UInt64>()
        var failure: BlockIOError? = nil
        let deadline = ContinuousClock.now + timeout

        loop: while !pending.isEmpty || !inFlight.isEmpty {
            if !pending.isEmpty {
                switch submitSome(&pending, &inFlight, isWrite: isWrite, deadline: deadline, timeout: timeout) {
                case .submitted: continue  // submit the rest before waiting
                case .failed(let e):
                    failure = e
                    break loop
                case .wait: break
                }
            }
            let remaining = max(0, Self.nanoseconds(deadline - ContinuousClock.now))
            let events: [KernelCompletion]
            switch kernel.getEvents(minimum: 1, maximum: kernel.capacity, timeoutNanoseconds: remaining) {
            case .success(let e): events = e
            case .failure(let e) where e.code == EINTR: continue
            case .failure(let e):
                Self.trapIfBug(e.code, call: "io_getevents")
                failure = .kernelFailed(path: path, call: "io_getevents", errno: e.code)
                break loop
            }
            if events.isEmpty {
                let first = inFlight.min().map { requests[Int($0 & 0xFF_FFFF)].offset } ?? pending.last!.offset
                failure = .timeout(
                    path: path, offset: first, inFlight: inFlight.count + pending.count,
                    timeoutMilliseconds: Self.nanoseconds(timeout) / 1_000_000)
                counters.timeouts += 1
                break loop
            }
            absorb(events, batch: batch, requests: requests, isWrite: isWrite,
                   &pending, &inFlight, &failure)
        }
        if !inFlight.isEmpty {
            // The kernel may still DMA into this arena: it must outlive those requests.
            var parkedWrites: [UInt64: IORange] = [:]
            if isWrite { for t in inFlight { parkedWrites[t] = requests[Int(t & 0xFF_FFFF)] } }
            parked.append(ParkedArena(buffer: buffer, outstanding: inFlight, writes: parkedWrites))
            arena = nil
        }
        if let failure { throw failure }
    }

    enum SubmitOutcome {
        case submitted, wait
        case failed(BlockIOError)
    }

    /// Submits as much of `pending` as the queue has room for (popping from its end).
    /// `.wait`: nothing went in (queue full, EAGAIN); reap something first.
    private mutating func submitSome(
        _ pending: inout [KernelRequest], _ inFlight: inout Set<UInt64>, isWrite: Bool,
        deadline: ContinuousClock.Instant, timeout: Duration
    ) -> SubmitOutcome {
        let room = kernel.capacity - inFlight.count - parkedRequestCount
        if room > 0 {
            let chunk = Array(pending.suffix(room).reversed())
            let taken = kernel.submit(chunk)
            if taken > 0 {
                counters.submits += 1
                if isWrite { counters.writeRequests += taken } else { counters.readRequests += taken }
                for r in chunk.prefix(taken) { inFlight.insert(r.tag) }
                pending.removeLast(taken)
                return .submitted
            } else if taken < 0 && taken != -Int(EAGAIN) && taken != -Int(EINTR) {
                Self.trapIfBug(Int32(-taken), call: "io_submit")
                return .failed(.kernelFailed(path: path, call: "io_submit", errno: Int32(-taken)))
            }
        }
        if inFlight.isEmpty && parkedRequestCount == 0 {
            // Nothing of ours to wait for: EAGAIN here is a transient kernel shortage.
            if ContinuousClock.now < deadline { return .submitted }
            counters.timeouts += 1
            return .failed(.timeout(
                path: path, offset: pending.last!.offset, inFlight: pending.count,
                timeoutMilliseconds: Self.nanoseconds(timeout) / 1_000_000))
        }
        return .wait
    }

    /// Takes completions: ours are counted (the first error or short transfer is kept, and
    /// nothing more is submitted); others belong to parked arenas.
    private mutating func absorb(
        _ events: [KernelCompletion], batch: UInt64, requests: [IORange], isWrite: Bool,
        _ pending: inout [KernelRequest], _ inFlight: inout Set<UInt64>, _ failure: inout BlockIOError?
    ) {
        for e in events {
            guard e.tag >> 24 == batch, inFlight.remove(e.tag) != nil else {
                retireParked(e.tag)
                continue
            }
            let r = requests[Int(e.tag & 0xFF_FFFF)]
            if e.result < 0 {
                failure = failure ?? .ioError(path: path, offset: r.offset, length: r.length, errno: Int32(-e.result))
                pending.removeAll()  // submit nothing more; drain what is in flight
            } else if e.result != r.length {
                failure = failure
                    ?? .shortTransfer(path: path, offset: r.offset, expected: r.length, transferred: Int(e.result))
                pending.removeAll()
            } else if isWrite {
                counters.bytesWritten += r.length
            } else {
                counters.bytesRead += r.length
            }
        }
    }

    private mutating func reapParkedNow() {
        guard !parked.isEmpty else { return }
        if case let .success(events) = kernel.getEvents(minimum: 0, maximum: kernel.capacity, timeoutNanoseconds: 0) {
            for e in events { retireParked(e.tag) }
        }
    }

    private mutating func retireParked(_ tag: UInt64) {
        for i in parked.indices where parked[i].outstanding.remove(tag) != nil {
            parked[i].writes[tag] = nil
            if parked[i].outstanding.isEmpty { parked.remove(at: i) }
            return
        }
    }

    static func nanoseconds(_ d: Duration) -> Int64 { d.wholeNanoseconds }

    /// Errnos that mean our own bug, not a bad disk (swift-nio's rule): a bad fd or context,
    /// a bad pointer, or EINVAL after our alignment checks passed. Continuing would hide it.
    static func trapIfBug(_ code: Int32, call: String) {
        precondition(
            code != EBADF && code != EFAULT && code != EINVAL,
            "\(call) failed with errno \(code): a bug, not an I/O error")
    }
}

extension Duration {
    /// The duration in whole nanoseconds (deadlines and error messages use it).
    public var wholeNanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
