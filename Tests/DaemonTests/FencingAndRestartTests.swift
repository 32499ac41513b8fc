import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct FencingAndRestartTests {
    /// Host A loses its storage (the fault file makes every I/O of its daemon time out): its
    /// holder gets the kill hook, then SIGTERM/SIGKILL, all before host B may take over; A
    /// writes nothing after the loss.
    @Test func storageLossFencesHoldersBeforeTakeover() throws {
        let path = leaseFile()
        let dir = Scratch.directory("fence")
        let fault = dir.appendingPathComponent("storage-lost").path
        let hookLog = dir.appendingPathComponent("hook.log").path
        let hook = dir.appendingPathComponent("hook.sh").path
        // The hook records its arguments and the time, and leaves the holder running, so the
        // daemon has to escalate to signals.
        try "#!/bin/sh\necho \"$1 $2 $3 $(date +%s.%N)\" >> \(hookLog)\n".write(
            toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let a = try DaemonProcess(
            hostID: 1, lease: path, dir: dir, extra: ["--fault-file", fault, "--kill-hook", hook])
        let b = try DaemonProcess(hostID: 2, lease: path, dir: dir)
        try a.waitJoined()
        try b.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576"
        let holder = a.holder(vm1)
        #expect(eventually(10) { a.client(["status"]).stdout.contains("lease LS:vm1") }, "\(a.log)")

        #expect(FileManager.default.createFile(atPath: fault, contents: nil))
        let lostAt = Date()
        let stamp = deltaTimestamp(path, host: 1)
        let waiter = b.holder(vm1)
        // Renewals fail for 8 s, then: hook, SIGTERM, and the holder is gone.
        holder.waitUntilExit()
        let holderGone = Date()
        #expect(holder.terminationReason == .uncaughtSignal, "holder exited by itself")
        let hookLine = try String(contentsOfFile: hookLog, encoding: .utf8)
        #expect(hookLine.hasPrefix("\(holder.processIdentifier) LS vm1 "), "hook got: \(hookLine)")
        #expect(a.log.contains("sending SIGTERM"), "\(a.log)")
        #expect(holderGone.timeIntervalSince(lostAt) >= 7, "fenced before renewal_fail_seconds")
        // B takes over only after that, and A has written nothing since the loss.
        #expect(leaderField(path, "vm1", "owner_id") == "1")
        #expect(eventually(40) { leaderField(path, "vm1", "owner_id") == "2" }, "\(b.log)")
        #expect(deltaTimestamp(path, host: 1) == stamp, "host A wrote its delta lease after losing storage")
        // After the fence the lockspace starts a fresh join (which cannot finish without
        // storage); the lease is no longer listed as held.
        let status = a.client(["status"]).stdout
        #expect(
            !status.contains("lease LS:vm1") && (status.contains("failed") || status.contains("joining")), "\(status)")
        kill(waiter.processIdentifier, SIGKILL)
        waiter.waitUntilExit()
    }

    /// A restarted daemon finds the leases its previous incarnation held (leases.json):
    /// with orphans=adopt it re-acquires them as orphans, and the next local acquire adopts
    /// one without a ballot; with orphans=release they end free on disk.
    @Test func restartAdoptsOrReleasesThePreviousIncarnationsLeases() throws {
        let path = leaseFile()
        let dir = Scratch.directory("restart")
        var a: DaemonProcess? = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        try a!.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576", vm2 = "LS:vm2:\(path):2097152"
        let h1 = a!.holder(vm1), h2 = a!.holder(vm2)
        #expect(
            eventually(10) { a!.client(["status"]).stdout.components(separatedBy: "lease LS:").count == 3 }, "\(a!.log)"
        )
        a!.kill(SIGKILL)
        kill(h1.processIdentifier, SIGKILL)
        kill(h2.processIdentifier, SIGKILL)
        h1.waitUntilExit()
        h2.waitUntilExit()
        let runDir = a!.runDir
        a = nil
        #expect(FileManager.default.fileExists(atPath: runDir + "/leases.json"))

        // Same run directory, adopt: both come back as orphans at the next lver.
        let a2 = try DaemonProcess(hostID: 1, lease: path, dir: dir, reuseRunDir: true, extra: ["--orphans", "adopt"])
        try a2.waitJoined()
        #expect(
            eventually(15) { a2.client(["status"]).stdout.components(separatedBy: "orphan").count == 3 }, "\(a2.log)")
        #expect(leaderField(path, "vm1", "lver") == "2" && leaderField(path, "vm1", "owner_generation") == "2")
        let adopted = a2.client(["acquire", "-r", vm1])
        #expect(adopted.status == 0 && adopted.stdout.contains("lver 2"), "\(adopted)")
        a2.kill(SIGKILL)

        // Restart again, release: whatever was held ends free on disk.
        let a3 = try DaemonProcess(
            hostID: 1, lease: path, dir: dir, reuseRunDir: true, extra: ["--orphans", "release"])
        try a3.waitJoined()
        #expect(
            eventually(15) {
                leaderField(path, "vm2", "timestamp") == "0" && leaderField(path, "vm2", "owner_generation") == "3"
            }, "\(a3.log)")
        #expect(a3.log.contains("previous incarnation's lease released"))
        a3.kill(SIGTERM)
    }
}
