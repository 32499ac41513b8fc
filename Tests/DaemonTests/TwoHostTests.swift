import DiskLeaseClient
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Two real daemons (hosts 1 and 2) on one lease file. What is asserted are lease states,
/// fencing tokens and on-disk timestamps; wall time only bounds the waiting.
@Suite(.serialized) struct TwoHostTests {
    @Test func heldRefusedReleasedOnExitAndTakenOverOnlyAfterHostDead() throws {
        let path = leaseFile()
        let dir = Scratch.directory("two-hosts")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        let b = try DaemonProcess(hostID: 2, lease: path, dir: dir)
        try a.waitJoined()
        try b.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576"

        // A process on host A holds vm1; host B's try-acquire is refused at once.
        let holder = a.holder(vm1)
        #expect(
            eventually(10) {
                a.client(["status"]).stdout.contains("lease LS:vm1 lver 1 pid \(holder.processIdentifier) EX")
            }, "\(a.log)")
        let refused = b.client(["acquire", "-r", vm1, "--no-wait"])
        #expect(refused.status == 75, "\(refused)")
        #expect(refused.stderr.contains("held by host_id 1"), "\(refused)")
        // Each host sees the other live (members' slots are read every third renewal: a host
        // is LIVE once two reads saw its timestamp move).
        #expect(eventually(20) { b.client(["host-status", "LS"]).stdout.contains("host_id 1 LIVE") })
        #expect(eventually(20) { a.client(["host-status", "LS"]).stdout.contains("host_id 2 LIVE") })

        // The holder exits: its lease is released on disk at once (leader timestamp 0).
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        #expect(eventually(5) { leaderField(path, "vm1", "timestamp") == "0" }, "\(a.log)")
        let got = b.client(["acquire", "-r", vm1, "--no-wait"])
        #expect(got.status == 0 && got.stdout.contains("lver 2"), "\(got)")  // released again as the command exits

        // A holds it again; A's daemon is SIGKILLed (no release, no leave). B, waiting,
        // gets it only once A's host id is DEAD: host_dead_seconds (8·1 + 4) after A's
        // last renewal, both measured on this machine's monotonic clock.
        let holder2 = a.holder(vm1)
        #expect(eventually(10) { a.client(["status"]).stdout.contains("lease LS:vm1 lver 3") }, "\(a.log)")
        a.kill(SIGKILL)
        let lastRenewal = deltaTimestamp(path, host: 1)
        let waiter = b.holder(vm1)
        #expect(
            eventually(40) { leaderField(path, "vm1", "owner_id") == "2" && leaderField(path, "vm1", "lver") == "4" },
            "\(b.log)")
        let takenAt = UInt64(leaderField(path, "vm1", "timestamp") ?? "0") ?? 0
        #expect(deltaTimestamp(path, host: 1) == lastRenewal, "A's delta lease changed after its daemon died")
        #expect(takenAt >= lastRenewal + 12, "taken over at \(takenAt), A last renewed at \(lastRenewal)")
        #expect(b.client(["host-status", "LS"]).stdout.contains("host_id 1 DEAD"))
        kill(waiter.processIdentifier, SIGKILL)
        kill(holder2.processIdentifier, SIGKILL)
        waiter.waitUntilExit()
        holder2.waitUntilExit()
        b.kill(SIGTERM)
        #expect(b.process.terminationStatus == 0, "\(b.log)")
        #expect(b.log.contains("left lockspace"))
    }

    /// Waiters on one host are served in arrival order, each as soon as the previous releases.
    @Test func localWaitersAreServedInArrivalOrder() throws {
        let path = leaseFile()
        let dir = Scratch.directory("fifo")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        try a.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576"
        let order = dir.appendingPathComponent("order").path
        func waiter(_ n: Int) -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Programs.disklease)
            p.arguments = [
                "client", "command", "--run-dir", a.runDir, "-r", vm1, "--",
                "sh", "-c", "echo \(n) $DISKLEASE_LVER >> \(order); sleep 0.3",
            ]
            p.standardOutput = FileHandle.nullDevice
            try! p.run()
            return p
        }
        var ps: [Process] = []
        for n in 1...5 {
            ps.append(waiter(n))
            // Arrival order is what the daemon sees: wait until this one is queued or holding.
            Thread.sleep(forTimeInterval: 0.15)
        }
        for p in ps { p.waitUntilExit() }
        let lines = (try String(contentsOfFile: order, encoding: .utf8)).split(separator: "\n")
        #expect(lines.map { $0.split(separator: " ")[0] } == ["1", "2", "3", "4", "5"], "\(lines)")
        let tokens = lines.compactMap { UInt64($0.split(separator: " ")[1]) }
        #expect(tokens == tokens.sorted() && Set(tokens).count == 5, "fencing tokens \(tokens)")
    }
}

@Suite(.serialized) struct ConvertAndRequestTests {
    /// SH holders on two hosts; EX refused while a live SH holder exists; convert SH→EX once
    /// alone; a request from host B marks host A's lease release-requested.
    @Test func sharedConvertAndRequestThroughTheDaemons() throws {
        let path = leaseFile()
        let dir = Scratch.directory("convert")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        let b = try DaemonProcess(hostID: 2, lease: path, dir: dir)
        try a.waitJoined()
        try b.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576"
        let sharedA = a.holder(vm1 + ":SH")
        let sharedB = b.holder(vm1 + ":SH")
        #expect(
            eventually(10) { a.client(["status"]).stdout.contains("SH") && b.client(["status"]).stdout.contains("SH") })
        let local = b.client(["acquire", "-r", vm1, "--no-wait"])
        #expect(local.status == 75 && local.stderr.contains("held on this host"), "\(local)")
        kill(sharedB.processIdentifier, SIGKILL)
        sharedB.waitUntilExit()
        let remote = b.client(["acquire", "-r", vm1, "--no-wait"])
        #expect(remote.status == 75 && remote.stderr.contains("held shared by live host_id(s) 1"), "\(remote)")

        // Host A converts its SH lease to EX over the wire (one connection holds and converts).
        let client = try DiskLeaseClient(runDir: a.runDir)
        kill(sharedA.processIdentifier, SIGKILL)
        sharedA.waitUntilExit()
        let ref = ResourceRef(lockspace: "LS", name: "vm1", path: path, offset: 1 << 20)
        let shToken = try client.acquire(ref, shared: true)
        var conv = client.request(.convert, ref)
        conv.shared = false
        let converted = try client.checked(conv)
        #expect((converted.lver ?? 0) > shToken, "convert to EX commits a new version")
        #expect(leaderField(path, "vm1", "owner_id") == "1" && leaderField(path, "vm1", "timestamp") != "0")

        // Host B asks for it: A's daemon notices at a renewal and flags the lease.
        let asked = b.client(["request", "-r", vm1])
        #expect(asked.status == 0, "\(asked)")
        #expect(eventually(15) { a.client(["status"]).stdout.contains("release-requested") }, "\(a.log)")
        try client.release(ref)

        // Root releases another process's lease (sanlock's client release -p).
        let vm2 = "LS:vm2:\(path):2097152"
        let holder = a.holder(vm2)
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        #expect(eventually(10) { a.client(["status"]).stdout.contains("lease LS:vm2") })
        let freed = a.client(["release", "-r", vm2, "--pid", "\(holder.processIdentifier)"])
        #expect(freed.status == 0, "\(freed)")
        #expect(leaderField(path, "vm2", "timestamp") == "0")
        #expect(holder.isRunning)
    }
}
