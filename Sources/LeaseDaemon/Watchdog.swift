import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The Linux watchdog device, fed while every lockspace renews in time. If a lockspace's
/// renewals fail, feeding stops and the host resets `watchdog_fire_timeout` later unless the
/// daemon stops cleanly (which disarms it with the magic close). Without a device the daemon
/// relies on self-fencing only, and says so.
final class Watchdog: @unchecked Sendable {
    private var fd: Int32 = -1
    let log: Logger

    init(device: String, log: Logger) {
        self.log = log
        guard device != "none" else {
            log.critical("no watchdog device configured: relying on self-fencing only (kill hook, SIGTERM, SIGKILL); a hung host cannot be reset")
            return
        }
        guard FileManager.default.fileExists(atPath: device) else {
            log.critical("watchdog device missing: relying on self-fencing only (kill hook, SIGTERM, SIGKILL); a hung host cannot be reset",
                         metadata: ["device": "\(device)"])
            return
        }
        fd = open(device, O_WRONLY | O_CLOEXEC)
        if fd < 0 {
            log.critical("cannot open the watchdog device: relying on self-fencing only",
                         metadata: ["device": "\(device)", "error": "\(String(cString: strerror(errno)))"])
        } else {
            log.notice("watchdog armed", metadata: ["device": "\(device)"])
        }
    }

    var armed: Bool { fd >= 0 }

    func feed() {
        guard fd >= 0 else { return }
        var b: UInt8 = 0
        _ = write(fd, &b, 1)
    }

    /// Magic close: a clean stop must not reset the host.
    func disarm() {
        guard fd >= 0 else { return }
        var v = UInt8(ascii: "V")
        _ = write(fd, &v, 1)
        close(fd)
        fd = -1
    }
}
