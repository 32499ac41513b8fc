import DeltaLease
import HostCore

/// Faults injected at a host's ticks: power loss, daemon crash, SIGSTOP of the daemon, a
/// suspended host, storage and lockspace-path loss, rem_lockspace at any moment.
extension Simulation {
    func injectFaults(_ host: SimHost) {
        let f = config.faults
        if chance(f.hostCrash) { return crashHost(host, why: "injected power loss") }
        if host.daemonUp && chance(f.daemonCrash) { crashDaemon(host, why: "SIGKILL") }
        if host.daemonRuns(at: now) && chance(f.daemonPause) {
            stats.pauses += 1
            let secs =
                rng.next() % 5 == 0
                ? host.timeouts.hostDeadSeconds + 1 + Int(rng.next() % 5)
                : 1 + Int(rng.next() % UInt64(3 * host.timeouts.ioTimeoutSeconds))
            host.pausedUntil = now + Clock.seconds(secs)
            debug("host \(host.id) daemon SIGSTOP for \(secs)s")
        }
        if chance(f.suspend) {
            stats.suspends += 1
            let secs =
                rng.next() % 4 == 0
                ? host.timeouts.hostDeadSeconds + 1 + Int(rng.next() % 5)
                : 1 + Int(rng.next() % UInt64(3 * host.timeouts.ioTimeoutSeconds))
            let d = Clock.seconds(secs)
            host.suspendedUntil = now + d
            host.suspendedTotal += d
            host.resumePending = true
            debug("host \(host.id) suspended for \(secs)s")
        }
        if chance(f.lockspacePathLoss) {
            host.lockspaceLostUntil =
                now
                + Nanos(rng.next() % UInt64(Clock.seconds(f.lockspaceLossMaxSeconds * host.timeouts.ioTimeoutSeconds)))
        }
        if chance(f.storageLoss) {
            stats.storageLosses += 1
            host.storageLostUntil =
                now + Clock.seconds(1 + Int(rng.next() % UInt64(12 * host.timeouts.ioTimeoutSeconds)))
        }
        if chance(f.leave) { leaveLockspace(host) }
    }
}
