import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Fencing that cannot leave two writers (issue 11), with real daemons: each case has a
/// second diskleased waiting for the lease and a token-writing holder on each side; a
/// VIOLATION line in the log means two holders wrote at once.
@Suite(.serialized) struct HostFencingTests {
    func lines(_ log: String) -> [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func noViolation(_ log: String) -> Bool { !lines(log).contains { $0.hasPrefix("VIOLATION") } }

    struct Pair {
        let path: String, dir: URL, token: String, log: String, vm1: String
        let a: DaemonProcess, b: DaemonProcess
    }

    func pair(_ label: String, aEnvironment: [String: String] = [:], aExtra: [String] = []) throws -> Pair {
        let path = leaseFile()
        let dir = Scratch.directory(label)
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir, extra: aExtra, environment: aEnvironment)
        let b = try DaemonProcess(hostID: 2, lease: path, dir: dir)
        try a.waitJoined()
        try b.waitJoined()
        return Pair(
            path: path, dir: dir, token: dir.appendingPathComponent("token").path,
            log: dir.appendingPathComponent("log").path,
            vm1: "LS:vm1:\(path):1048576", a: a, b: b)
    }

    /// kill -9 of the daemon and an immediate restart under the same name: the new incarnation
    /// stops the leftover holder before it rejoins (which would let B take over at once).
    @Test func aRestartAfterKillStopsTheLeftoverHolderBeforeTheTakeover() throws {
        let p = try pair("restart")
        let holder = p.a.tokenHolder(p.vm1, token: p.token, log: p.log)
        #expect(eventually(10) { p.a.client(["status"]).stdout.contains("lease LS:vm1") })
        let waiter = p.b.tokenHolder(p.vm1, token: p.token, log: p.log)
        p.a.kill(SIGKILL)
        let a2 = try DaemonProcess(hostID: 1, lease: p.path, dir: p.dir, reuseRunDir: true)
        holder.waitUntilExit()
        #expect(holder.terminationReason == .uncaughtSignal, "the leftover holder must be stopped")
        #expect(eventually(40) { lines(p.log).count >= 2 }, "B never took over: \(p.b.log)")
        Thread.sleep(forTimeInterval: 0.5)
        kill(waiter.processIdentifier, SIGKILL)
        waiter.waitUntilExit()
        #expect(noViolation(p.log), "\(lines(p.log))")
        #expect(a2.log.contains("previous incarnation's holders may still run"), "\(a2.log)")
        a2.kill(SIGKILL)
    }

    /// SIGSTOP of the daemon past host_dead: the guard process stops the holder at our
    /// lease's expiry (8·io_timeout) though the daemon cannot; B takes over only later; after
    /// SIGCONT the daemon fences before anything else and rejoins.
    @Test func aStoppedDaemonsHolderIsStoppedByTheGuardBeforeTheTakeover() throws {
        let p = try pair("sigstop")
        let holder = p.a.tokenHolder(p.vm1, token: p.token, log: p.log)
        #expect(eventually(10) { p.a.client(["status"]).stdout.contains("lease LS:vm1") })
        let waiter = p.b.tokenHolder(p.vm1, token: p.token, log: p.log)
        p.a.kill(SIGSTOP)
        holder.waitUntilExit()
        #expect(eventually(40) { lines(p.log).count >= 2 }, "B never took over: \(p.b.log)")
        Thread.sleep(forTimeInterval: 1)
        p.a.kill(SIGCONT)
        #expect(eventually(20) { p.a.log.contains("lockspace failed") }, "\(p.a.log)")
        #expect(
            eventually(30) { p.a.client(["status"]).stdout.contains("joined") }, "rejoined after the gap: \(p.a.log)")
        kill(waiter.processIdentifier, SIGKILL)
        waiter.waitUntilExit()
        #expect(noViolation(p.log), "\(lines(p.log))")
    }

    /// A renewal's io_submit hangs (the faultio shim blocks it): the deadline is checked apart
    /// from the renewal thread, so the holder is fenced at 8·io_timeout all the same.
    @Test func aHungSubmitIsFencedOnTheDeadline() throws {
        let hang = Scratch.directory("hang").appendingPathComponent("hang").path
        let p = try pair("hung", aEnvironment: FaultIO.environment(["FAULTIO_HANG_FILE": hang]))
        let holder = p.a.tokenHolder(p.vm1, token: p.token, log: p.log)
        #expect(eventually(10) { p.a.client(["status"]).stdout.contains("lease LS:vm1") })
        let waiter = p.b.tokenHolder(p.vm1, token: p.token, log: p.log)
        #expect(FileManager.default.createFile(atPath: hang, contents: nil))
        holder.waitUntilExit()
        #expect(eventually(40) { lines(p.log).count >= 2 }, "B never took over: \(p.b.log)")
        Thread.sleep(forTimeInterval: 0.5)
        kill(waiter.processIdentifier, SIGKILL)
        waiter.waitUntilExit()
        #expect(noViolation(p.log), "\(lines(p.log))")
        #expect(p.a.log.contains("lockspace failed"), "\(p.a.log)")
        unlink(hang)
        p.a.kill(SIGKILL)
    }

    /// The wall clock steps back an hour inside the daemon (the faultio shim shifts
    /// CLOCK_REALTIME): nothing waits on it, so renewals go on, and when storage is lost the
    /// holder is still fenced on time.
    @Test func aWallClockStepBackChangesNothing() throws {
        let shift = Scratch.directory("clock").appendingPathComponent("shift").path
        let dir = Scratch.directory("clock-fault")
        let fault = dir.appendingPathComponent("lost").path
        let p = try pair(
            "clock", aEnvironment: FaultIO.environment(["FAULTIO_REALTIME_SHIFT_FILE": shift]),
            aExtra: ["--fault-file", fault])
        let holder = p.a.tokenHolder(p.vm1, token: p.token, log: p.log)
        #expect(eventually(10) { p.a.client(["status"]).stdout.contains("lease LS:vm1") })
        try "-3600\n".write(toFile: shift + ".tmp", atomically: false, encoding: .utf8)
        rename(shift + ".tmp", shift)
        // Renewals continue: B is refused for longer than host_dead_seconds.
        let waiter = p.b.tokenHolder(p.vm1, token: p.token, log: p.log)
        Thread.sleep(forTimeInterval: 14)
        #expect(lines(p.log).count == 1, "B took over while A renewed: \(lines(p.log))")
        #expect(holder.isRunning)
        // Storage lost: fenced at 8·io_timeout on the monotonic/boot clocks, before B's takeover.
        #expect(FileManager.default.createFile(atPath: fault, contents: nil))
        holder.waitUntilExit()
        #expect(eventually(40) { lines(p.log).count >= 2 }, "B never took over: \(p.b.log)")
        Thread.sleep(forTimeInterval: 0.5)
        kill(waiter.processIdentifier, SIGKILL)
        waiter.waitUntilExit()
        #expect(noViolation(p.log), "\(lines(p.log))")
        p.a.kill(SIGKILL)
    }
}
