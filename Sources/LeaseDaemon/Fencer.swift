import Foundation
import HostCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Stops one lease holder when its lockspace fails: the kill hook first (it may stop a VM
/// cleanly, or fence its I/O), then SIGTERM, then SIGKILL, each after a grace period, as
/// sanlock's killpath, SIGTERM and SIGKILL escalation does. Every signal goes to the process
/// that held the lease (pid and start time, through a pidfd), never to a reused pid.
struct Fencer: Sendable {
    let killHook: String?
    let killGrace: Int
    let termGrace: Int
    let log: Logger

    /// Returns true once the process is confirmed gone and its connection closed; false if it
    /// outlived SIGKILL (stuck in uninterruptible I/O) or its connection is still held by a
    /// process it handed it to (a child): only the watchdog's reset will stop those.
    /// `connectionOpen` says whether the holder's connection to the daemon is still open.
    func stop(_ v: Victim, connectionOpen: () -> Bool) -> Bool {
        guard stopProcess(v) else { return false }
        // The process is gone; a child that inherited its connection may hold the lease on.
        // Its pid is not known to us (the connection's credentials name the parent), and a
        // pid guessed from the process tree could be reused: give it the grace to exit, then
        // leave it to the watchdog.
        let end = HostClocks.mono() + Int64(termGrace + 5) * 1_000_000_000
        while connectionOpen() && HostClocks.mono() < end { usleep(50_000) }
        guard !connectionOpen() else {
            log.critical(
                """
                holder exited but its connection is still held by another process (inherited by a child); \
                cannot confirm the lease unused: the watchdog must reset the host
                """,
                metadata: ["pid": "\(v.pid)", "lockspace": "\(v.lockspace)", "resource": "\(v.resource)"])
            return false
        }
        return true
    }

    /// Stops the process itself: true once it is confirmed gone.
    private func stopProcess(_ v: Victim) -> Bool {
        let p = v.process
        let meta: Logger.Metadata = ["pid": "\(v.pid)", "lockspace": "\(v.lockspace)", "resource": "\(v.resource)"]
        if !ProcessIdentity.alive(p) { return true }
        if let hook = killHook {
            log.warning("running kill hook", metadata: meta.merging(["hook": "\(hook)"]) { $1 })
            let h = Process()
            h.executableURL = URL(fileURLWithPath: hook)
            h.arguments = [String(v.pid), v.lockspace, v.resource]
            do {
                try h.run()
                if !waitGone(p, seconds: killGrace, hook: h) { log.warning("kill hook grace expired", metadata: meta) }
                if h.isRunning { h.terminate() }
            } catch {
                log.error("kill hook failed to start", metadata: meta.merging(["error": "\(error)"]) { $1 })
            }
        }
        if !ProcessIdentity.alive(p) { return done(meta) }
        log.warning("sending SIGTERM", metadata: meta)
        ProcessIdentity.signal(p, SIGTERM)
        if waitGone(p, seconds: termGrace, hook: nil) { return done(meta) }
        log.warning("sending SIGKILL", metadata: meta)
        ProcessIdentity.signal(p, SIGKILL)
        if waitGone(p, seconds: 5, hook: nil) { return done(meta) }
        log.critical("holder survived SIGKILL", metadata: meta)
        return false
    }

    private func done(_ meta: Logger.Metadata) -> Bool {
        log.notice("holder stopped", metadata: meta)
        return true
    }

    /// Waits up to `seconds` for `p` to be gone (and the hook too, when given).
    func waitGone(_ p: ProcessRef, seconds: Int, hook: Process?) -> Bool {
        let end = HostClocks.mono() + Int64(seconds) * 1_000_000_000
        while HostClocks.mono() < end {
            if !ProcessIdentity.alive(p) && !(hook?.isRunning ?? false) { return true }
            usleep(50_000)
        }
        return !ProcessIdentity.alive(p)
    }
}
