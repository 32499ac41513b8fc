import CDirectIO
import DeltaLease
import HostCore

/// State `S` that is reachable only while holding its lock, with a condition whose timed
/// waits run on CLOCK_MONOTONIC (a wall-clock step never changes how long anything waits).
/// The compiler enforces "only under the lock": the state is handed out to closures only.
///
/// Lock order: a `Monitor` is a leaf. No code holding one takes another lock, runs I/O, or
/// calls out (effects are carried out after `withLock` returns).
final class Monitor<S>: @unchecked Sendable {
    private let m: OpaquePointer
    private var state: S

    init(_ initial: S) {
        guard let m = cdio_monitor_create() else { fatalError("cannot allocate a mutex") }
        self.m = m
        state = initial
    }

    deinit { cdio_monitor_destroy(m) }

    func withLock<T>(_ body: (inout S) throws -> T) rethrows -> T {
        cdio_monitor_lock(m)
        defer { cdio_monitor_unlock(m) }
        return try body(&state)
    }

    /// Under the lock: waits until `done` holds (re-checked after every wake-up) or the
    /// monotonic `deadline` passes. Returns whether `done` holds.
    func wait(until deadline: Nanos? = nil, _ done: (inout S) -> Bool) -> Bool {
        cdio_monitor_lock(m)
        defer { cdio_monitor_unlock(m) }
        while !done(&state) {
            if let deadline, HostClocks.mono() >= deadline { return false }
            _ = cdio_monitor_wait(m, deadline ?? -1)
        }
        return true
    }

    /// Wakes every waiter (call after changing the state).
    func broadcast() {
        cdio_monitor_lock(m)
        cdio_monitor_broadcast(m)
        cdio_monitor_unlock(m)
    }
}

/// The daemon's clocks, read in one place.
enum HostClocks {
    static func mono() -> Nanos { cdio_monotonic_ns() }
    static func boot() -> Nanos { cdio_boottime_ns() }
    static func now() -> HostTime {
        let m = mono()
        return HostTime(mono: m, boot: max(boot(), m))
    }

    /// Sleeps on CLOCK_MONOTONIC until `t` (EINTR resumes the sleep).
    static func sleep(until t: Nanos) {
        while true {
            let left = t - mono()
            if left <= 0 { return }
            var ts = timespec(tv_sec: Int(left / Clock.nanosPerSecond), tv_nsec: Int(left % Clock.nanosPerSecond))
            _ = nanosleep(&ts, nil)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
