import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Stops one lease holder when its lockspace fails: the kill hook first (it may stop a VM
/// cleanly, or fence its I/O), then SIGTERM, then SIGKILL, each after a grace period, as
/// sanlock's killpath, SIGTERM and SIGKILL escalation does.
struct Fencer {
    let killHook: String?
    let killGrace: Int
    let termGrace: Int
    let log: Logger

    func stop(pid: Int32, lockspace: String, resource: String) {
        let meta: Logger.Metadata = ["pid": "\(pid)", "lockspace": "\(lockspace)", "resource": "\(resource)"]
        if let hook = killHook {
            log.warning("running kill hook", metadata: meta.merging(["hook": "\(hook)"]) { $1 })
            let p = Process()
            p.executableURL = URL(fileURLWithPath: hook)
            p.arguments = [String(pid), lockspace, resource]
            do {
                try p.run()
                if !waitExit(pid, seconds: killGrace, hook: p) { log.warning("kill hook grace expired", metadata: meta) }
                if p.isRunning { p.terminate() }
            } catch {
                log.error("kill hook failed to start", metadata: meta.merging(["error": "\(error)"]) { $1 })
            }
        }
        if !alive(pid) { return log.notice("holder stopped", metadata: meta) }
        log.warning("sending SIGTERM", metadata: meta)
        kill(pid, SIGTERM)
        if waitExit(pid, seconds: termGrace, hook: nil) { return log.notice("holder stopped", metadata: meta) }
        log.warning("sending SIGKILL", metadata: meta)
        kill(pid, SIGKILL)
        _ = waitExit(pid, seconds: 5, hook: nil)
        log.notice("holder killed", metadata: meta)
    }

    /// Waits up to `seconds` for `pid` to exit (and the hook too, when given).
    func waitExit(_ pid: Int32, seconds: Int, hook: Process?) -> Bool {
        let end = Date().addingTimeInterval(Double(seconds))
        while Date() < end {
            if !alive(pid) && !(hook?.isRunning ?? false) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return !alive(pid)
    }

    /// Whether `pid` still runs (a zombie counts as exited).
    func alive(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }
}
