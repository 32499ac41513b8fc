import CDirectIO
import DiskLeaseClient
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The Linux watchdog device, fed while the host core says it may be (every lockspace renews
/// in time, or every holder of a failed one is confirmed gone). If feeding stops the host
/// resets `watchdog-fire-timeout` later unless the daemon stops cleanly (magic close).
///
/// Guarantees: the device's own timeout is set to watchdog-fire-timeout and read back, since
/// host_dead_seconds (what other hosts wait before taking our leases over) assumes exactly
/// that; a configured device that cannot be opened or set is a start error, as sanlock fails
/// add_lockspace. Only `watchdog-device = none` runs without one, and says so loudly.
public final class Watchdog: @unchecked Sendable {
    private let lock = NSLock()
    private var fd: Int32 = -1
    private let device: String?
    private let timeoutSeconds: Int
    let log: Logger

    /// Checks the device now; it is opened at the first feed the host core allows, since
    /// opening it starts (or restarts) its countdown: a daemon restarted while a holder of its
    /// previous incarnation may still run must not extend the reset that would stop it.
    init(device: String, timeoutSeconds: Int, log: Logger) throws(WireError) {
        self.log = log
        self.timeoutSeconds = timeoutSeconds
        guard device != "none" else {
            self.device = nil
            let note = "no watchdog device (watchdog-device = none): relying on the kill hook, SIGTERM, SIGKILL "
                + "and the guard process only; a hung host cannot be reset"
            log.critical("\(note)")
            return
        }
        guard access(device, W_OK) == 0 else {
            throw WireError(
                .io,
                "watchdog device \(device): cannot open: \(String(cString: strerror(errno))) (set watchdog-device = "
                    + "none to run without one)"
            )
        }
        self.device = device
    }

    var armed: Bool { lock.withLock { fd >= 0 } }

    /// Opens, sets the timeout and reads it back on first use; afterwards a keepalive.
    func feed() {
        lock.withLock {
            guard let device else { return }
            if fd < 0 {
                let f = open(device, O_WRONLY | O_CLOEXEC)
                guard f >= 0 else {
                    log.critical(
                        "watchdog device cannot be opened: not fed",
                        metadata: ["device": "\(device)", "error": "\(String(cString: strerror(errno)))"])
                    return
                }
                var actual: Int32 = 0
                let set = cdio_watchdog_set_timeout(f, Int32(timeoutSeconds))
                let got = cdio_watchdog_get_timeout(f, &actual)
                if set != 0 || got != 0 || Int(actual) != timeoutSeconds {
                    log.critical(
                        "watchdog timeout differs from watchdog-fire-timeout: other hosts' host_dead_seconds assume it",
                        metadata: [
                            "device": "\(device)", "timeout_s": "\(actual)", "configured_s": "\(timeoutSeconds)",
                        ])
                }
                fd = f
                log.notice("watchdog armed", metadata: ["device": "\(device)", "timeout_s": "\(actual)"])
            }
            if cdio_watchdog_keepalive(fd) != 0 {
                var b: UInt8 = 0
                _ = write(fd, &b, 1)
            }
        }
    }

    /// Magic close: a clean stop must not reset the host.
    public func disarm() {
        lock.withLock {
            guard fd >= 0 else { return }
            var v = UInt8(ascii: "V")
            _ = write(fd, &v, 1)
            close(fd)
            fd = -1
        }
    }
}
