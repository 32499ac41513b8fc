import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A real sanlock daemon (host 2, its own SANLOCK_RUN_DIR) and diskleased (host 1) in one
/// lockspace, contending for one resource. A token file is the external check: each critical
/// section writes its name, sleeps, and must read its name back.
@Suite(.serialized) struct MixedClusterTests {
    @Test func sanlockDaemonAndDiskleasedNeverHoldTogether() throws {
        let path = Scratch.file(size: 2 << 20)
        #expect(
            Programs.run(Programs.disklease, ["init", "lockspace", "LS:0:\(path):0", "--io-timeout", "1"]).status == 0)
        #expect(
            Programs.run(Programs.disklease, ["init", "resource", "LS:vm1:\(path):1048576", "-n", "8"]).status == 0)
        let dir = Scratch.directory("mixed")
        let (sanlock, env) = try Self.startSanlock(dir, path: path)
        defer { kill(sanlock.processIdentifier, SIGKILL); sanlock.waitUntilExit() }
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        try a.waitJoined()

        let token = dir.appendingPathComponent("token").path
        let log = dir.appendingPathComponent("log").path
        let crit = dir.appendingPathComponent("crit.sh").path
        try """
        #!/bin/sh
        echo "$1" > \(token)
        sleep 0.3
        if [ "$(cat \(token))" != "$1" ]; then echo "VIOLATION $1" >> \(log); fi
        echo "$1" >> \(log)
        """.write(toFile: crit, atomically: true, encoding: .utf8)
        chmod(crit, 0o755)
        let rounds = 15
        let vm1 = "LS:vm1:\(path):1048576"
        // diskleased side: waiting acquires. sanlock side: its client fails while we hold
        // (our host is live to it), so it retries.
        let ours = Process()
        ours.executableURL = URL(fileURLWithPath: "/bin/sh")
        ours.arguments = [
            "-c",
            "for i in $(seq \(rounds)); do \(Programs.disklease) client command --run-dir \(a.runDir) -r \(vm1) -- "
                + "\(crit) disklease || exit 1; done",
        ]
        let theirs = Process()
        theirs.executableURL = URL(fileURLWithPath: "/bin/sh")
        theirs.arguments = [
            "-c",
            "for i in $(seq \(rounds)); do until \(Programs.which("sanlock")) client command -r \(vm1) "
                + "-c \(crit) sanlock >/dev/null 2>&1; do sleep 0.2; done; done",
        ]
        theirs.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        for p in [ours, theirs] {
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
        }
        #expect(eventually(240) { !ours.isRunning && !theirs.isRunning }, "contention did not finish: \(a.log)")
        for p in [ours, theirs] where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(!lines.contains { $0.hasPrefix("VIOLATION") }, "two owners at once: \(lines)")
        #expect(lines.filter { $0 == "disklease" }.count == rounds)
        #expect(lines.filter { $0 == "sanlock" }.count == rounds)

        // Each sees the other host live; we fell back to full reads on seeing a sanlock host.
        #expect(
            eventually(20) { a.client(["host-status", "LS"]).stdout.contains("host_id 2 LIVE") },
            "\(a.client(["host-status", "LS"]))")
        #expect(a.client(["status"]).stdout.contains("reads=full"))
        var theirView = ""
        #expect(
            eventually(20) {
                theirView =
                    Programs.run(
                        Programs.which("sanlock"), ["client", "host_status", "-s", "LS", "-D"], environment: env
                    ).stdout
                return theirView.contains("1 timestamp") && theirView.contains("owner_name=dl:h1")
            }, "\(theirView)")
        print("mixed cluster: \(rounds) + \(rounds) critical sections, sanlock view:\n\(theirView)")
    }

    /// A sanlock daemon in its own run directory, joined to LS as host 2.
    static func startSanlock(_ dir: URL, path: String) throws -> (Process, [String: String]) {
        let srun = dir.appendingPathComponent("sanlock-run").path
        try FileManager.default.createDirectory(atPath: srun, withIntermediateDirectories: true)
        let env = ["SANLOCK_RUN_DIR": srun, "SANLOCK_PRIVILEGED": "0"]
        let sanlock = Process()
        sanlock.executableURL = URL(fileURLWithPath: Programs.which("sanlock"))
        sanlock.arguments = ["daemon", "-D", "-w", "0", "-U", "root", "-G", "root", "-o", "1"]
        sanlock.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        sanlock.standardOutput = FileHandle.nullDevice
        sanlock.standardError = FileHandle.nullDevice
        try sanlock.run()
        #expect(
            eventually(10) {
                Programs.run(Programs.which("sanlock"), ["client", "status"], environment: env).status == 0
            })
        let added = Programs.run(
            Programs.which("sanlock"), ["client", "add_lockspace", "-s", "LS:2:\(path):0", "-o", "1"], environment: env)
        #expect(added.stdout.contains("done 0"), "\(added)")
        return (sanlock, env)
    }
}
