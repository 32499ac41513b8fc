import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Issue 12: a lease holder hands its connection to a child and exits, and an unrelated
/// process then gets the holder's pid. When the lockspace fails, the fencer must not signal
/// the unrelated process (it checks pid and start time), and must not confirm the lease
/// unused while the child still holds the connection: the victim stays unconfirmed, so the
/// watchdog is not fed and the host would reset.
@Suite(.serialized) struct InheritedConnectionTests {
    /// Starts `sleep` with pid `pid`, by setting the kernel's last pid just below it (root
    /// only), from a shell so that nothing else forks in between; returns whether it got it.
    func stranger(withPID pid: Int32) -> Bool {
        for _ in 0..<20 {
            let r = Programs.run(
                "/bin/bash",
                [
                    "-c",
                    Self.closeAbove(2) + "echo \(pid - 1) > /proc/sys/kernel/ns_last_pid; "
                        + "sleep 1801 </dev/null >/dev/null 2>&1 & echo $!",
                ])
            if Int32(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == pid { return true }
            _ = Programs.run("pkill", ["-KILL", "-f", "sleep 1801"])
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    /// Whether `pid` is a running `sleep 1801`.
    func strangerRuns(_ pid: Int32) -> Bool {
        let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
        return cmd.contains("1801")
    }

    /// A shell line closing every descriptor above `n` that the shell inherited from the test
    /// runner (Foundation's own among them: while a child holds one, waiting for its parent
    /// never ends).
    static func closeAbove(_ n: Int) -> String {
        "for f in /proc/$$/fd/*; do n=${f##*/}; if [ \"$n\" -gt \(n) ]; then eval \"exec $n>&-\"; fi; done; "
    }

    /// The holder's program: it keeps only the daemon connection (fd 3, the first descriptor
    /// `client command` opened), leaves a child that inherits it, and exits at once.
    static let script = closeAbove(3) + "sleep 1717 </dev/null >/dev/null 2>&1 & exit 0"

    /// Runs the holder to its exit and returns its pid and status. It is started from a shell,
    /// not as a process-group leader: a pid that is still some process group's id (as the
    /// first process Foundation starts would be, for the child it leaves) is never reused.
    func runHolder(_ d: DaemonProcess, _ path: String) -> (Int32, Int32) {
        let command = [
            Programs.disklease, "client", "command", "--run-dir", d.runDir, "-r", "LS:vm1:\(path):1048576", "--",
            "/bin/bash", "-c", Self.script,
        ].map { "'\($0.replacingOccurrences(of: "'", with: "'\\''"))'" }.joined(separator: " ")
        let r = Programs.run(
            "/bin/bash",
            ["-c", Self.closeAbove(2) + command + " </dev/null >/dev/null 2>&1 & p=$!; wait $p; echo $p $?"])
        let f = r.stdout.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        return f.count == 2 ? (f[0], f[1]) : (-1, -1)
    }

    @Test func aChildHoldingTheConnectionKeepsTheVictimUnconfirmedAndAReusedPidIsSpared() throws {
        let path = leaseFile()
        let dir = Scratch.directory("inherit")
        let fault = dir.appendingPathComponent("lost").path
        let d = try DaemonProcess(hostID: 1, lease: path, dir: dir, extra: ["--fault-file", fault])
        try d.waitJoined()
        // `client command` execs the shell with the connection; the shell leaves a child that
        // inherits it and exits at once.
        let (holderPID, holderStatus) = runHolder(d, path)
        defer { _ = Programs.run("pkill", ["-KILL", "-f", "sleep 1717"]) }
        #expect(holderStatus == 0)
        #expect(
            eventually(10) { d.client(["status"]).stdout.contains("lease LS:vm1") },
            "the child's open connection keeps the lease")
        // The daemon starts threads all the time, and thread ids take pids too: stop it for the
        // moment the stranger is started.
        d.kill(SIGSTOP)
        let reused = stranger(withPID: holderPID)
        d.kill(SIGCONT)
        #expect(reused, "could not start a process with pid \(holderPID)")
        #expect(FileManager.default.createFile(atPath: fault, contents: nil))
        #expect(
            eventually(40) { d.log.contains("connection is still held by another process") },
            "the fencer confirmed a victim whose connection a child still holds: \(d.log)")
        #expect(strangerRuns(holderPID), "the process that reused the holder's pid was signalled: \(d.log)")
        #expect(!d.log.contains("holder stopped"), "\(d.log)")
        _ = Programs.run("pkill", ["-KILL", "-f", "sleep 1717"])
        _ = Programs.run("pkill", ["-KILL", "-f", "sleep 1801"])
        d.kill(SIGKILL)
    }
}
