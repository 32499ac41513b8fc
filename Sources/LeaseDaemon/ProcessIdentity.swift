import CDirectIO
import Foundation
import HostCore

#if canImport(Glibc)
import Glibc
#endif

/// Processes as the kernel knows them: a pid plus its start time (field 22 of
/// /proc/PID/stat, clock ticks since boot), so a reused pid is never taken for the process
/// that held a lease; signals go through a pidfd opened after that check, so the pid cannot
/// be reused between the check and the signal either.
enum ProcessIdentity {
    /// The start time of `pid`, or nil if no such process (or a zombie: it has exited).
    static func startTime(_ pid: Int32) -> UInt64? {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm) ": state is field 3; starttime is field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return UInt64(fields[19])
    }

    /// Whether the process `p` (pid and start time) still runs.
    static func alive(_ p: ProcessRef) -> Bool {
        guard let t = startTime(p.pid) else { return false }
        return p.startTime == 0 || t == p.startTime
    }

    /// A pidfd for `p` if it is still that process, else nil.
    static func open(_ p: ProcessRef) -> Int32? {
        let fd = cdio_pidfd_open(p.pid)
        guard fd >= 0 else { return nil }
        guard alive(p) else {
            Glibc.close(fd)
            return nil
        }
        return fd
    }

    /// Sends `signal` to `p` only if it is still that process. Returns false if it is gone.
    @discardableResult
    static func signal(_ p: ProcessRef, _ signal: Int32) -> Bool {
        guard let fd = open(p) else { return false }
        defer { Glibc.close(fd) }
        return cdio_pidfd_send_signal(fd, signal) == 0
    }
}
