import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Many client processes asking one daemon for many leases at once, as a host taking over
/// its VMs after a failover does: ballots on different resources run side by side (their
/// I/O shares submits), several `-r` in one command are all or none.
@Suite(.serialized) struct ConcurrentClientsTests {
    static let resources = 24

    /// A lockspace and `resources` resource areas r0, r1, ... at 1 MiB steps.
    func manyLeases() -> String {
        let path = Scratch.file(size: (Self.resources + 1) << 20)
        precondition(
            Programs.run(Programs.disklease, ["init", "lockspace", "LS:0:\(path):0", "--io-timeout", "1"]).status == 0)
        for i in 0..<Self.resources {
            precondition(
                Programs.run(Programs.disklease, ["init", "resource", "LS:r\(i):\(path):\((i + 1) << 20)"]).status == 0)
        }
        return path
    }

    func spec(_ path: String, _ i: Int) -> String { "LS:r\(i):\(path):\((i + 1) << 20)" }

    @Test func clientsOfEightLeasesEachAllGetThemAndReleaseOnExit() throws {
        let path = manyLeases()
        let dir = Scratch.directory("concurrent")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        try a.waitJoined()

        // Three clients of eight leases each, started together; each records its tokens.
        var clients: [(Process, String)] = []
        for c in 0..<3 {
            let out = dir.appendingPathComponent("tokens\(c)").path
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Programs.disklease)
            p.arguments =
                ["client", "command", "--run-dir", a.runDir]
                + (0..<8).flatMap { ["-r", spec(path, c * 8 + $0)] }
                + ["--", "sh", "-c", "echo \"$DISKLEASE_LVER\" > \(out)"]
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            clients.append((p, out))
        }
        for (p, out) in clients {
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(a.log)")
            let tokens = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            #expect(tokens == "1 1 1 1 1 1 1 1\n", "one fencing token per -r, in order")
        }
        // Each exit released its leases on disk.
        for i in 0..<Self.resources {
            #expect(
                eventually(10) { leaderField(path, "r\(i)", "timestamp", offset: UInt64(i + 1) << 20) == "0" },
                "r\(i): \(a.log)")
            #expect(leaderField(path, "r\(i)", "lver", offset: UInt64(i + 1) << 20) == "1")
        }
        #expect(a.log.components(separatedBy: "[LeaseDaemon] acquired").count - 1 == Self.resources)

        // All or none: r3 is held elsewhere, so a client asking for r0...r7 gets none of them.
        let holder = a.holder(spec(path, 3))
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        #expect(eventually(10) { a.client(["status"]).stdout.contains("lease LS:r3 lver 2") }, "\(a.log)")
        let all = a.client(["command"] + (0..<8).flatMap { ["-r", spec(path, $0)] } + ["--no-wait", "--", "true"])
        #expect(all.status == 75, "\(all)")
        #expect(
            eventually(10) {
                let status = a.client(["status"]).stdout
                return status.components(separatedBy: "\nlease ").count - 1 == 1 && status.contains("lease LS:r3 ")
            }, "\(a.client(["status"]).stdout)")
        for i in [0, 1, 2] {
            #expect(
                eventually(10) { leaderField(path, "r\(i)", "timestamp", offset: UInt64(i + 1) << 20) == "0" },
                "r\(i) kept")
        }
    }
}
