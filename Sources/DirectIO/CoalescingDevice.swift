#if canImport(Glibc)
import Glibc
#endif

/// A device shared by many threads whose concurrent batches go to the kernel together: while
/// one batch is in flight, the batches other threads ask for wait in a queue, and the next
/// submission takes every queued batch of one kind (all reads, or all writes that do not
/// overlap) as one batch of the inner device. It is group commit at the I/O level: a daemon
/// running a thousand ballots at once (a failover) costs a few submits per ballot phase, not
/// a thousand, and a lone caller pays nothing extra.
///
/// Guarantees, on top of the inner device's: each caller gets exactly the bytes of its own
/// ranges, in its order, and its writes are on disk when it returns; no two overlapping
/// writes share a submission (the later one waits for the next); callers are served oldest
/// first. A caller's own request is checked (alignment, bounds) before it joins a batch, so a
/// bad one fails alone. A batch that fails (a timeout, EIO) fails every caller in it, each
/// with the inner device's error.
public final class CoalescingDevice: SectorDevice, @unchecked Sendable {
    public let inner: any SectorDevice
    public var path: String { inner.path }
    public var sizeBytes: UInt64 { inner.sizeBytes }
    public var alignment: Int { inner.alignment }
    public var counters: IOCounters { inner.counters }

    private let signal = ConditionLock()
    // Guarded by `signal`.
    private var queue: [Waiter] = []
    private var submitting = false

    /// One caller's batch, waiting for (or holding) its result.
    private final class Waiter {
        enum Work {
            case read([IORange])
            case write([SectorWrite])
        }
        let work: Work
        let timeout: Duration
        var result: Result<[[UInt8]], BlockIOError>?
        init(_ work: Work, _ timeout: Duration) {
            self.work = work
            self.timeout = timeout
        }
        var isRead: Bool { if case .read = work { true } else { false } }
        var readRanges: [IORange] { if case .read(let r) = work { r } else { [] } }
        var writeRanges: [IORange] { if case .write(let w) = work { w.map(\.range) } else { [] } }
    }

    public init(_ inner: any SectorDevice) {
        self.inner = inner
    }

    /// Inner submissions made so far (each one inner `read` or `write` call).
    public var innerBatches: Int { inner.counters.batches }

    /// Callers waiting for a submission to take their batch (tests use it to line callers up).
    var queuedCount: Int {
        signal.lock()
        defer { signal.unlock() }
        return queue.count
    }

    public func read(_ ranges: [IORange], timeout: Duration) throws(BlockIOError) -> [[UInt8]] {
        for r in ranges { try check(r) }
        return try wait(for: Waiter(.read(ranges), timeout)).get()
    }

    public func write(_ writes: [SectorWrite], timeout: Duration) throws(BlockIOError) {
        for w in writes { try check(w.range) }
        _ = try wait(for: Waiter(.write(writes), timeout)).get()
    }

    public func reapParked(timeout: Duration) -> Int { inner.reapParked(timeout: timeout) }

    private func check(_ r: IORange) throws(BlockIOError) {
        try r.check(path: path, alignment: alignment, deviceSize: sizeBytes)
    }

    /// Queues `w`; whichever waiting thread finds no submission in flight submits the next
    /// group (which need not hold its own request: it keeps going until its own is done).
    private func wait(for w: Waiter) -> Result<[[UInt8]], BlockIOError> {
        signal.lock()
        queue.append(w)
        while w.result == nil {
            if submitting {
                signal.wait()
                continue
            }
            submitting = true
            let group = takeGroup()
            signal.unlock()
            submit(group)
            signal.lock()
            submitting = false
            signal.broadcast()
        }
        signal.unlock()
        return w.result!
    }

    /// The oldest waiter's kind decides; every queued waiter of that kind joins, except
    /// writes that overlap one already taken. Lock held.
    private func takeGroup() -> [Waiter] {
        let reads = queue[0].isRead
        var group: [Waiter] = []
        var rest: [Waiter] = []
        // Sectors already written by the group: a set, since a storm queues a thousand writes.
        var taken = Set<UInt64>()
        let unit = UInt64(alignment)
        for w in queue {
            guard w.isRead == reads else { rest.append(w); continue }
            if !reads {
                let sectors = w.writeRanges.flatMap { stride(from: $0.offset, to: $0.end, by: Int(unit)) }
                if sectors.contains(where: taken.contains) {
                    rest.append(w)
                    continue
                }
                taken.formUnion(sectors)
            }
            group.append(w)
        }
        queue = rest
        return group
    }

    /// One inner batch for the whole group; results are handed back per waiter. Lock not held.
    private func submit(_ group: [Waiter]) {
        let timeout = group.map(\.timeout).min()!
        var results: [Result<[[UInt8]], BlockIOError>] = []
        switch group[0].work {
        case .read:
            let groups = group.map(\.readRanges)
            do {
                results = try inner.read(groups: groups, timeout: timeout).map { .success($0) }
            } catch {
                results = group.map { _ in .failure(error) }
            }
        case .write:
            var all: [SectorWrite] = []
            for w in group { if case .write(let ws) = w.work { all += ws } }
            do {
                try inner.write(all, timeout: timeout)
                results = group.map { _ in .success([]) }
            } catch {
                results = group.map { _ in .failure(error) }
            }
        }
        signal.lock()
        for (w, r) in zip(group, results) { w.result = r }
        signal.unlock()
    }
}

/// A pthread mutex and condition variable, heap-allocated so they never move.
final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    func wait() { pthread_cond_wait(cond, mutex) }
    func broadcast() { pthread_cond_broadcast(cond) }
}
